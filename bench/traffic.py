"""Synthetic prediction-log traffic: tone frames like a line's and answers logged from several machines.

Shared by bench/monitor.py and the monitoring tests (which import it from here: bench/ imports nothing from tests/).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from aoi.catalog import db
from aoi.catalog.models import Prediction, table_of
from aoi.image_metrics import QUALITY_FIELDS, TONE_FIELDS
from monitoring import frames

ANSWER = ("confidence", "model_label", "unknown")


T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def dimmed(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Tone of the same scenes under a lamp giving ``factor`` of its light: every channel mean scales."""
    out = frame.copy()
    for column in ("brightness", "mean_r", "mean_g", "mean_b"):
        out[column] = frame[column] * factor
    return frames.with_differences(out)


def log_answers(
    settings,
    version: str,
    kind: str,
    reference: pd.DataFrame,
    per_machine: int,
    start: datetime,
    machines=("m1", "m2", "m3"),
    dim: dict | None = None,
    seed: int = 0,
) -> None:
    """``per_machine`` answers from each machine, resampled from the reference (the inputs from all its images,
    the answers from its answered ones), logged over one hour from ``start``; ``dim``: machine -> lamp factor."""
    rng = np.random.default_rng(seed)
    answered = reference.dropna(subset=["confidence"])
    rows = []
    for m, machine in enumerate(machines):
        drawn = reference.iloc[rng.integers(0, len(reference), per_machine)].reset_index(drop=True)
        answer = answered.iloc[rng.integers(0, len(answered), per_machine)].reset_index(drop=True)
        drawn[list(ANSWER)] = answer[list(ANSWER)]
        if dim and machine in dim:
            drawn = dimmed(drawn, dim[machine])
        for i, r in enumerate(drawn.to_dict("records")):
            rows.append(
                {
                    "request_id": uuid.uuid4().hex,
                    "at": start + timedelta(seconds=(i * len(machines) + m) * 3600 / (per_machine * len(machines))),
                    "latency_ms": 5.0,
                    "kind": kind,
                    "model_version": version,
                    "machine_id": machine,
                    "sha256": "0" * 64,
                    "label": "UNKNOWN" if r["unknown"] else r["model_label"],
                    "coarse_label": "X",
                    "model_label": r["model_label"],
                    "confidence": r["confidence"],
                    "unknown": bool(r["unknown"]),
                    "route": "auto",
                    "format": "PNG",
                    "jpeg_quality": None if r["jpeg_quality"] >= frames.LOSSLESS_QUALITY else int(r["jpeg_quality"]),
                    "bytes_per_pixel": r["bytes_per_pixel"],
                    "width": 32,
                    "height": 32,
                    **{c: float(r[c]) for c in TONE_FIELDS},
                    **{c: None if pd.isna(r.get(c)) else float(r[c]) for c in QUALITY_FIELDS},
                }
            )
    with db.get_engine(settings.catalog_url).begin() as connection:
        connection.execute(table_of(Prediction).insert(), rows)


def synthetic(n: int, seed: int, brightness: float = 150.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r, g, b = (rng.normal(m, 8, n) for m in (brightness + 10, brightness, brightness - 25))
    frame = pd.DataFrame(
        {
            "mean_r": r,
            "mean_g": g,
            "mean_b": b,
            "brightness": 0.299 * r + 0.587 * g + 0.114 * b,
            "jpeg_quality": 95.0,
            "bytes_per_pixel": rng.normal(0.5, 0.05, n),
            "confidence": rng.beta(30, 1, n),
            "model_label": rng.choice(["SHORT", "OPEN", "SPUR"], n),
            "unknown": rng.random(n) < 0.05,
            "sharpness": rng.lognormal(np.log(5000), 0.6, n),
            "smear": rng.beta(1, 60, n),
        }
    )
    return dimmed(frame, 1.0)
