"""How often the drift check cries wolf, and how often it misses a dim lamp (``aoi drift-study``).

From a real dataset version and its production model: the reference is the monitor's own (``steps.reference``:
what the line sent, uncleaned, less the blind sets). Requests are drawn from what the line sends and the model
never saw: every labelled held-out image of the source (the blind sets: PKU boards 11 and 12 in the demo) as
stored, whatever a spec said of it (no cleaning filtered them), shot by no simulated machine. They are spread
over 4 simulated machines. Each trial draws one window:

- undrifted: every machine's images as stored; any drift verdict is a false alarm;
- drifted: the same draw, one machine's images darker by ``light`` (all channels, re-encoded at the image's
  own JPEG quality, measured by the one metrics function and classified again); found when the check flags
  that machine.

Repeated for each window size (answers per machine). The policy, thresholds and Evidently tests are the
monitor's own (``compare_scopes``, without HTML). ``reference="dataset"`` measures the reference the monitor
used before (the cleaned dataset version, answers on its valid split) on the same traffic, for comparison.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image
from sqlalchemy import select
from tqdm import tqdm

from aoi.image_metrics import TONE_FIELDS, measure
from aoi.settings import Settings
from monitoring import check, frames, steps
from monitoring.drift import distinct_answers

MACHINES = ("VRS-01", "VRS-02", "VRS-03", "VRS-04")
GOAL = {"false_alarm_rate_max": 0.05, "detection_rate_min": 0.95}  # what a window size must meet, in both studies


def study_row(size: int, windows: int, alarms: int, found: int) -> dict:
    """One window size's result: false alarms on unchanged machines and changes found, over ``windows`` trials."""
    return {
        "per_machine": size,
        "window": size * len(MACHINES),
        "windows": windows,
        "false_alarms": alarms,
        "false_alarm_rate": round(alarms / windows, 3),
        "found": found,
        "detection_rate": round(found / windows, 3),
    }


def smallest_meeting_goals(rows: list[dict]) -> int | None:
    """The smallest window size (answers per machine) that meets both goals; None when none does."""
    good = [
        r
        for r in rows
        if r["false_alarm_rate"] <= GOAL["false_alarm_rate_max"] and r["detection_rate"] >= GOAL["detection_rate_min"]
    ]
    return good[0]["per_machine"] if good else None


DIMMED = "VRS-02"


def dim(light: float):
    def change(image: Image.Image) -> Image.Image:
        arr = np.asarray(image, dtype=np.float32) * light
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), image.mode)

    return change


def _dimmed_metrics(
    settings: Settings, shas: list[str], images: list, light: float, quality: dict[str, int | None]
) -> pd.DataFrame:
    """Metrics of each image as the dimmer lamp would have stored it (same format and JPEG quality)."""
    rows, change = [], dim(light)
    for sha, image in zip(shas, images):
        out = io.BytesIO()
        q = quality.get(sha)
        change(image).save(out, format="JPEG", quality=q) if q else change(image).save(out, format="PNG")
        m = measure(out.getvalue(), min_side=settings.metrics_min_side)
        rows.append({"sha256": sha, **{c: getattr(m, c) for c in frames.INPUTS}})
    return pd.DataFrame(rows).fillna({"jpeg_quality": frames.LOSSLESS_QUALITY})


def held_out(settings: Settings, source: str) -> list[str]:
    """sha256 of every labelled held-out image of ``source`` as the line stores it: in a blind set, whatever its
    validation status, not a calibration shot, from no machine or the reference machine (raw crops)."""

    from aoi.catalog import db
    from aoi.catalog.models import HashClaim, Image, IngestBatch, table_of

    i, b, h = table_of(Image).c, table_of(IngestBatch).c, table_of(HashClaim).c
    query = (
        select(i.sha256)
        .join(table_of(IngestBatch), b.id == i.batch_id)
        .join(table_of(HashClaim), h.sha256 == i.sha256)
        .where(
            i.source == source,
            i.label.is_not(None),
            h.role == "blind",
            b.reference.is_(False),
            i.machine_id.is_(None) | (i.machine_id == settings.features.reference_machine),
        )
        .order_by(i.id)
    )
    with db.get_engine(settings.catalog_url).connect() as connection:
        return [row[0] for row in connection.execute(query)]


def _stored(settings: Settings, shas: list[str]) -> pd.DataFrame:

    from aoi.catalog import db
    from aoi.catalog.models import Image, table_of

    i = table_of(Image).c
    with db.get_engine(settings.catalog_url).connect() as connection:
        frame = pd.read_sql(
            select(i.sha256, i.label, *(i[c] for c in (*TONE_FIELDS, *frames.COMPRESSION))).where(i.sha256.in_(shas)),
            connection,
        )
    return frame.fillna({"jpeg_quality": frames.LOSSLESS_QUALITY})


def dataset_reference(settings: Settings, loaded) -> pd.DataFrame:
    """The reference the monitor used before: the cleaned dataset version's images, answers on its valid split."""
    inputs = frames.dataset_inputs(settings, loaded.row.dataset)
    return inputs.merge(
        frames.answers_for(settings, loaded, inputs.loc[inputs["split"] == "valid", "sha256"].tolist()),
        on="sha256",
        how="left",
    )


def pools(
    settings: Settings, version: str, light: float, reference: str = "line"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(the reference, the held-out images' answers as stored, the same answers under the dimmer lamp)."""
    from aoi.store import ImageStore
    from evaluation.predict import load_images
    from training.registry import load_model_version

    loaded = load_model_version(settings, version)
    shas = held_out(settings, loaded.row.kind)
    if not shas:
        raise ValueError(f"no held-out {loaded.row.kind} images to draw from: register a blind set (aoi dataset blind)")
    stored = _stored(settings, shas).set_index("sha256").loc[shas].reset_index()
    plain = frames.answers_for(settings, loaded, shas).merge(stored, on="sha256")
    # saved as stored: lossless stays lossless (a JPEG at quality 100 is saved lossless too, a negligible change)
    quality = {
        s: (None if q >= frames.LOSSLESS_QUALITY else int(q)) for s, q in zip(stored["sha256"], stored["jpeg_quality"])
    }
    images = load_images(ImageStore(settings.store_dir), shas, loaded.prep.channels)
    darker = frames.answers_for(settings, loaded, shas, change=dim(light)).merge(
        _dimmed_metrics(settings, shas, images, light, quality).assign(label=stored["label"].to_numpy()), on="sha256"
    )
    frame = steps.reference(settings, version) if reference == "line" else dataset_reference(settings, loaded)
    return frame, plain, darker.set_index("sha256").loc[plain["sha256"]].reset_index()


def run(
    settings: Settings,
    version: str,
    kind: str,
    windows: int = 50,
    sizes=(50, 100, 200),
    light: float = 0.9,
    seed: int = 0,
    progress: bool = True,
    reference_kind: str = "line",
) -> dict:
    if reference_kind not in ("line", "dataset"):
        raise ValueError(f"reference must be line or dataset, not {reference_kind!r}")
    reference, plain, darker = pools(settings, version, light, reference_kind)
    rng = np.random.default_rng(seed)
    rows = []
    bar = tqdm(total=windows * len(sizes) * 2, desc="drift study", unit="check", disable=not progress)
    for size in sizes:
        alarms = found = 0
        for _ in range(windows):
            picks = [rng.integers(0, len(plain), size) for _ in MACHINES]
            clean = pd.concat([plain.iloc[p].assign(machine_id=m) for m, p in zip(MACHINES, picks)], ignore_index=True)
            drifted = pd.concat(
                [(darker if m == DIMMED else plain).iloc[p].assign(machine_id=m) for m, p in zip(MACHINES, picks)],
                ignore_index=True,
            )
            alarms += bool(check.verdict_of(steps.compare_scopes(settings, kind, reference, clean, html=False)))
            scopes = steps.compare_scopes(settings, kind, reference, drifted, html=False)
            found += bool(scopes["machines"].get(DIMMED, {}).get("drift"))
            bar.update(2)
        rows.append(study_row(size, windows, alarms, found))
    bar.close()
    return {
        "model_version": version,
        "kind": kind,
        "reference": reference_kind,
        "reference_samples": len(reference),
        "reference_answers": distinct_answers(reference),
        "pool": len(plain),
        "pool_labels": {str(k): int(v) for k, v in plain["label"].value_counts().sort_index().items()},
        "light": light,
        "dimmed_machine": DIMMED,
        "rows": rows,
        "smallest_window_meeting_goals": smallest_meeting_goals(rows),
        "goal": GOAL,
    }
