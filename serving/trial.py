"""A line trial: blind-set images sent to the running service the way line software sends them, and the
answers compared with the labels. The demo runs one per kind after promotion; it proves the served model is
the promoted one and that answers, routes and the prediction log work end to end over HTTP."""

from __future__ import annotations

import random
from collections import Counter

from aoi.settings import Settings
from aoi.store import ImageStore
from evaluation.evaluate import members
from serving.loadgen import run_load


def line_trial(settings: Settings, url: str, kind: str, blind_set: str, n: int = 100, concurrency: int = 8) -> dict:
    """``n`` images drawn (seeded) from ``blind_set``, classified over HTTP; figures on the answers."""
    _, rows = members(settings, blind_set, None, kind)
    rows = random.Random(0).sample(rows, min(n, len(rows)))
    store = ImageStore(settings.store_dir)
    images = [store.path_for(sha).read_bytes() for sha, _ in rows]
    token = settings.api_key.get_secret_value() if settings.api_key else None
    result = run_load(url, images, len(images), concurrency, kind, token)
    answers = result.answers
    accepted = [i for i, a in answers.items() if not a["unknown"]]
    right = sum(answers[i]["model_label"] == rows[i][1] for i in accepted)
    return {
        "kind": kind,
        "blind_set": blind_set,
        "sent": len(images),
        "answered": len(answers),
        "errors": result.errors[:5],
        "model_versions": dict(result.versions),
        "unknown_rate": round(1 - len(accepted) / len(answers), 3) if answers else None,
        "accepted_accuracy": round(right / len(accepted), 3) if accepted else None,
        "routes": dict(Counter(a["route"] for a in answers.values())),
        "labels": dict(Counter(a["label"] for a in answers.values()).most_common()),
        **{k: v for k, v in result.figures().items() if k in ("req_per_s", "p50_ms", "p99_ms")},
    }
