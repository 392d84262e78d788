"""SIMULATION of an ageing lamp on one simulated VRS machine (the demo's drift).

Every simulated machine (``demo.simulated_line.MACHINES``) shoots the same crops: what the line sends and the
production colour model never saw, as stored (``line_images``: the held-out boards' crops, whatever a spec said
of them), so that only what the simulation changes can drift, and the line's ordinary images show that they do
not. One machine's lamp loses light step by step while it shoots (its gains scaled by the lamp's light,
``demo.simulated_line.aged``). The requests go to the running service in shooting order with their machine ids;
the service applies each machine's colour calibration, fitted while the lamp was new.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

from PIL import Image
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Image as CatalogImage
from aoi.settings import Settings
from aoi.store import ImageStore
from demo import simulated_line
from serving.loadgen import run_load

AGEING_MACHINE = "VRS-02"
LIGHT_STEPS = (1.0, 0.94, 0.88, 0.82, 0.76)  # the lamp's light, one step per fifth of the machine's shots


def line_images(settings: Settings, kind: str = "color", limit: int = 300) -> list[str]:
    """At most ``limit`` held-out images of ``kind`` as stored (``monitoring.study.held_out``), evenly drawn."""
    from monitoring.study import held_out

    shas = held_out(settings, kind)
    return shas[:: max(1, -(-len(shas) // limit))] if shas else []


def requests(settings: Settings, shas: list[str], machine_id: str = AGEING_MACHINE, steps=LIGHT_STEPS) -> list[dict]:
    """Each machine shoots every image of ``shas``, in turn; the ageing machine's lamp dims as it goes."""
    machines = {m.machine_id: m for m in simulated_line.MACHINES}
    if machine_id not in machines:
        raise ValueError(f"{machine_id} is not a simulated machine ({', '.join(machines)})")
    store = ImageStore(settings.store_dir)
    out = []
    for k, sha in enumerate(shas):
        with Image.open(io.BytesIO(store.get(sha))) as image:
            image.load()
            for machine in simulated_line.MACHINES:
                light = steps[k * len(steps) // len(shas)] if machine.machine_id == machine_id else 1.0
                shooter = simulated_line.aged(machine, light) if light != 1.0 else machine
                out.append(
                    {"machine_id": machine.machine_id, "light": light, "image": shooter.capture(image), "source": sha}
                )
    return out


def true_labels(settings: Settings, shas: list[str]) -> dict[str, str | None]:
    """The catalogued class of each source image: what every shot of it truly shows (the simulation's truth)."""
    with db.session(settings.catalog_url) as s:
        rows = s.exec(select(CatalogImage.sha256, CatalogImage.label).where(col(CatalogImage.sha256).in_(shas))).all()
    return dict(rows)


def write_truth(settings: Settings, path: Path, sent: list[dict], answers: dict[int, dict]) -> int:
    """SIMULATION's record, one JSON line per answered shot: its request id, machine, the sent bytes' digest, the
    true class and the model's answer (``demo.line_loop`` labels and confirms from it); returns the lines."""
    truth = true_labels(settings, sorted({r["source"] for r in sent}))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i, answer in sorted(answers.items()):
            row = sent[i]
            line = {
                "request_id": answer["request_id"],
                "kind": answer["kind"],
                "machine_id": row["machine_id"],
                "light": row["light"],
                "sha256": hashlib.sha256(row["image"]).hexdigest(),
                "true_label": truth.get(row["source"]),
                "model_label": answer["model_label"],
                "unknown": answer["unknown"],
                "route": answer["route"],
                "runner_up": [c["label"] for c in answer["top3"][1:]],
            }
            f.write(json.dumps(line) + "\n")
    return len(answers)


def send(
    settings: Settings,
    url: str,
    shas: list[str],
    machine_id: str = AGEING_MACHINE,
    steps=LIGHT_STEPS,
    concurrency: int = 4,
    truth_file: Path | None = None,
) -> dict:
    """Classify every shot over HTTP as colour images from their machines; what was sent and answered. With
    ``truth_file``, the simulation's record of every answer goes there (``write_truth``)."""
    sent = requests(settings, shas, machine_id, steps)
    token = settings.api_key.get_secret_value() if settings.api_key else None
    result = run_load(
        url,
        [r["image"] for r in sent],
        len(sent),
        concurrency,
        "color",
        token,
        machine_ids=[r["machine_id"] for r in sent],
    )
    if truth_file is not None:
        write_truth(settings, truth_file, sent, result.answers)
    return {
        "simulation": "an ageing lamp on one simulated machine (SIMULATION)",
        "ageing_machine": machine_id,
        "light_steps": list(steps),
        "sent": len(sent),
        "answered": len(result.answers),
        "by_machine": dict(Counter(r["machine_id"] for r in sent)),
        "errors": result.errors[:5],
        "calibrated_answers": sum(bool(a.get("calibrated")) for a in result.answers.values()),
        **({"truth": str(truth_file)} if truth_file is not None else {}),
    }
