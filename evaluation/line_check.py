"""Checks of the colour calibration on the SIMULATED line (demo/simulated_line.py), machine by machine and, within
each machine, part number by part number (each part has its own tone on each machine; the calibration is per
machine, fitted on the reference board, so what it leaves of a part's tone shows in the part's rows):

- tone: each machine's mean R, G, B over its captures, as captured and after its calibration, against the same
  crops as the reference machine shoots them ("unshifted"); goal: within 2 gray levels after calibration;
- accuracy: a colour model's accuracy on each machine's captures without calibration, with it (as serving
  applies it) and on the unshifted crops; goal: with calibration within 1 point of unshifted.

The calibration comes from Feast point in time, by the same function training uses.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from aoi.preprocess import ToneCalibration
from aoi.settings import Settings
from demo import simulated_line

TONE_GOAL = 2.0  # gray levels
ACCURACY_GOAL = 0.01  # one point


def _rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def _means(data: bytes, calibration: ToneCalibration | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean R, G, B of an image as captured and after ``calibration`` (as captured again when there is none)."""
    arr = _rgb(data)
    calibrated = arr if calibration is None else calibration.apply(arr)
    return arr.reshape(-1, 3).mean(axis=0), calibrated.reshape(-1, 3).mean(axis=0)


def captures_by_machine(settings: Settings, folder: Path) -> dict[str, list[dict]]:
    """machine_id -> its captures from line.json, each with sha256, bytes, unshifted bytes and calibration."""
    from features.calibration import for_images

    line = simulated_line.load(folder)
    out: dict[str, list[dict]] = {}
    for capture in line["captures"]:
        data = (folder / capture["path"]).read_bytes()
        out.setdefault(capture["machine_id"], []).append(
            {
                **capture,
                "sha256": hashlib.sha256(data).hexdigest(),
                "data": data,
                "unshifted": simulated_line.unshifted(line, capture),
            }
        )
    calibrations = for_images(settings, [c["sha256"] for items in out.values() for c in items])
    for items in out.values():
        for c in items:
            c["calibration"] = calibrations.get(c["sha256"])
    return out


def _tone_row(items: list[dict]) -> dict:
    reference = np.mean([_rgb(c["unshifted"]).reshape(-1, 3).mean(axis=0) for c in items], axis=0)
    raw, calibrated = np.mean([_means(c["data"], c["calibration"]) for c in items], axis=0)
    error = float(np.abs(calibrated - reference).max())
    return {
        "images": len(items),
        "calibrated_images": sum(c["calibration"] is not None for c in items),
        "reference_rgb": [round(float(v), 2) for v in reference],
        "captured_rgb": [round(float(v), 2) for v in raw],
        "calibrated_rgb": [round(float(v), 2) for v in calibrated],
        "max_error_captured": round(float(np.abs(raw - reference).max()), 2),
        "max_error_calibrated": round(error, 2),
        "within_goal": error <= TONE_GOAL,
    }


def _by_part(items: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in items:
        out.setdefault(c.get("part_no") or "(none)", []).append(c)
    return dict(sorted(out.items()))


def tone_check(by_machine: dict[str, list[dict]]) -> list[dict]:
    """One row per machine over all its captures."""
    return [{"machine_id": machine_id, **_tone_row(items)} for machine_id, items in sorted(by_machine.items())]


def tone_by_part(by_machine: dict[str, list[dict]]) -> list[dict]:
    """One row per machine and part number."""
    return [
        {"machine_id": machine_id, "part_no": part, **_tone_row(group)}
        for machine_id, items in sorted(by_machine.items())
        for part, group in _by_part(items).items()
    ]


def accuracy_table(
    settings: Settings, version: str, by_machine: dict[str, list[dict]]
) -> tuple[list[dict], list[dict]]:
    """(one row per machine, one row per machine and part number)."""
    from aoi.preprocess import decode
    from evaluation.predict import probabilities
    from training.registry import load_model_version

    loaded = load_model_version(settings, version)
    rows, part_rows = [], []
    for machine_id, items in sorted(by_machine.items()):
        true = np.array([loaded.taxonomy.index(_label(settings, c["label"])) for c in items])
        captured = [decode(c["data"], loaded.prep.channels) for c in items]

        def right(images, calibrations=None, true=true) -> np.ndarray:
            probs = probabilities(loaded.model, loaded.prep, images, None, settings.evaluation.batch_size, calibrations)
            return probs.argmax(axis=1) == true

        hits = {
            "unshifted": right([decode(c["unshifted"], loaded.prep.channels) for c in items]),
            "without_calibration": right(captured),
            "with_calibration": right(captured, [c["calibration"] for c in items]),
        }
        rows.append({"machine_id": machine_id, **_accuracy_row(hits, np.arange(len(items)))})
        parts = np.array([c.get("part_no") or "(none)" for c in items])
        part_rows += [
            {"machine_id": machine_id, "part_no": part, **_accuracy_row(hits, np.flatnonzero(parts == part))}
            for part in sorted(set(parts))
        ]
    return rows, part_rows


def _accuracy_row(hits: dict[str, np.ndarray], index: np.ndarray) -> dict:
    row = {"images": len(index), **{k: float(v[index].mean()) for k, v in hits.items()}}
    row["gap_with_calibration"] = round(row["unshifted"] - row["with_calibration"], 4)
    row["within_goal"] = row["gap_with_calibration"] <= ACCURACY_GOAL + 1e-9
    return row


def _label(settings: Settings, folder_label: str) -> str:
    from aoi.labels import LabelMap

    return LabelMap.load(settings.ingest.label_map).resolve(folder_label)  # the class folder's name, as ingest maps it


def check(settings: Settings, folder: Path, version: str | None) -> dict:
    """The tone check, and the accuracy table when a colour model version is given; each per machine and per
    machine and part number."""
    by_machine = captures_by_machine(settings, folder)
    out = {
        "simulation": simulated_line.NOTICE,
        "tone_goal": TONE_GOAL,
        "tone": tone_check(by_machine),
        "tone_by_part": tone_by_part(by_machine),
    }
    if version:
        accuracy, by_part = accuracy_table(settings, version, by_machine)
        out.update(model_version=version, accuracy_goal=ACCURACY_GOAL, accuracy=accuracy, accuracy_by_part=by_part)
    return out
