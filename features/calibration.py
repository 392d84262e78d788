"""Colour calibration per machine: the per-channel gain and offset that map a machine's tone to the reference
tone, fitted from its reference samples (docs/domain.md#tone-per-machine: the same settings give other colours on other
machines).

Reference samples are ingest batches marked ``--reference``: a machine's shots of the reference board, the board
named by the images' ``part_no``. One batch holds one shooting session per machine (it may hold several
machines). The reference tone is the reference machine's (``AOI_FEATURES__REFERENCE_MACHINE``) shots of the same
board. Both shots show the same board, so for every channel the machine's pixels are
``a * reference + b``; matching the mean and spread of all pixels inverts that map:
``gain = std_ref / std_machine`` and ``offset = mean_ref - gain * mean_machine``.

One row per reference batch, in force from the batch's capture time: training reads the row in force when an
image was captured (point in time), serving the latest (online). Both apply it with
``aoi.preprocess.preprocess``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from sqlalchemy import func
from sqlmodel import col, select

from aoi.preprocess import ToneCalibration
from aoi.settings import Settings

CHANNELS = ("r", "g", "b", "gray")
VALUES = [*(f"gain_{c}" for c in CHANNELS), *(f"offset_{c}" for c in CHANNELS)]
COLUMNS = ["machine_id", "effective_from", "computed_at", "reference_board", "reference_images", "batch_id", *VALUES]


class CalibrationError(ValueError):
    """Reference samples that cannot calibrate a machine: the message says which and why."""


@dataclass(frozen=True)
class Moments:
    """Mean and standard deviation of all pixels of a set of images, per channel (r, g, b, gray)."""

    mean: dict[str, float]
    std: dict[str, float]
    images: int


def moments(images: list[bytes]) -> Moments:
    """Pixel moments over every pixel of every image (decoded as RGB; gray as the L conversion)."""

    sums = {c: 0.0 for c in CHANNELS}
    squares = {c: 0.0 for c in CHANNELS}
    pixels = 0
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
            planes = dict(zip("rgb", np.asarray(rgb, dtype=np.float64).reshape(-1, 3).T))
            planes["gray"] = np.asarray(rgb.convert("L"), dtype=np.float64).ravel()
        for c in CHANNELS:
            sums[c] += planes[c].sum()
            squares[c] += np.square(planes[c]).sum()
        pixels += planes["gray"].size
    if not pixels:
        raise CalibrationError("no reference images")
    mean = {c: sums[c] / pixels for c in CHANNELS}
    std = {c: math.sqrt(max(squares[c] / pixels - mean[c] ** 2, 0.0)) for c in CHANNELS}
    return Moments(mean, std, len(images))


def fit(machine: Moments, reference: Moments, max_gain: float) -> dict[str, float]:
    """gain_<c>, offset_<c> for every channel; CalibrationError when a gain is out of bounds or undefined."""
    out = {}
    for c in CHANNELS:
        if machine.std[c] < 1e-6:
            raise CalibrationError(f"channel {c} of the reference samples is flat: nothing to calibrate against")
        gain = reference.std[c] / machine.std[c]
        if not 1 / max_gain <= gain <= max_gain:
            raise CalibrationError(
                f"channel {c} needs a gain of {gain:.2f}, outside 1/{max_gain:g}..{max_gain:g}: "
                "are these shots of the reference board?"
            )
        out[f"gain_{c}"] = gain
        out[f"offset_{c}"] = reference.mean[c] - gain * machine.mean[c]
    return out


def reference_batches(settings: Settings) -> pd.DataFrame:
    """One row per reference image: batch_id, machine_id, board (part_no), sha256, at (capture, else ingest time)."""

    from aoi.catalog import db
    from aoi.catalog.models import Image, IngestBatch

    at = func.coalesce(Image.captured_at, Image.ingested_at)
    query = (
        select(Image.batch_id, Image.machine_id, Image.part_no, Image.sha256, at)
        .join(IngestBatch, IngestBatch.id == Image.batch_id)
        .where(IngestBatch.reference)
    )
    with db.session(settings.catalog_url) as s:
        rows = s.exec(query).all()
    frame = pd.DataFrame(rows, columns=["batch_id", "machine_id", "board", "sha256", "at"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def calibration_table(settings: Settings) -> tuple[pd.DataFrame, list[str]]:
    """(one calibration row per machine reference batch, problems). The reference machine's latest shots of a
    board are the target for that board; a batch without a target, or that fails to fit, is a problem."""
    from aoi.catalog.models import utcnow
    from aoi.store import ImageStore

    refs = reference_batches(settings)
    store = ImageStore(settings.store_dir)
    target_machine = settings.features.reference_machine
    targets: dict[str, Moments] = {}
    for board, group in refs[refs["machine_id"] == target_machine].groupby("board"):
        latest = group[group["batch_id"] == group["batch_id"].max()]
        targets[board] = moments([store.get(sha) for sha in latest["sha256"]])
    rows, problems = [], []
    now = pd.Timestamp(utcnow())
    for (batch_id, machine_id, board), group in refs.groupby(["batch_id", "machine_id", "board"], dropna=False):
        label = f"batch {batch_id} ({machine_id}, board {board})"
        if board not in targets:
            problems.append(
                f"{label}: no reference tone for board {board}: ingest {target_machine}'s shots of it "
                f"with --reference --machine {target_machine} --part {board}"
            )
            continue
        try:
            values = fit(
                moments([store.get(sha) for sha in group["sha256"]]),
                targets[board],
                settings.features.max_calibration_gain,
            )
        except CalibrationError as err:
            problems.append(f"{label}: {err}")
            continue
        rows.append(
            {
                "machine_id": machine_id,
                "effective_from": group["at"].max(),
                "computed_at": now,
                "reference_board": board,
                "reference_images": len(group),
                "batch_id": int(batch_id),
                **values,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in VALUES:
        table[column] = table[column].astype("float32")
    table["reference_images"] = table["reference_images"].astype("int64")
    table["batch_id"] = table["batch_id"].astype("int64")
    return table, problems


def source_path(settings: Settings):
    from features.store import data_dir

    return data_dir(settings) / "machine_calibration.parquet"


def write_source(settings: Settings) -> dict:
    """Recompute every machine's calibration from the catalog (idempotent) and replace the parquet source."""
    from features.store import write_parquet

    table, problems = calibration_table(settings)
    if table.empty and not source_path(settings).exists():
        return {"rows": 0, "machines": 0, "problems": problems, "table": None}
    write_parquet(table, source_path(settings))
    return {
        "rows": len(table),
        "machines": int(table["machine_id"].nunique()),
        "problems": problems,
        "table": str(source_path(settings)),
    }


def from_row(row: dict | pd.Series | None) -> ToneCalibration | None:
    """The ToneCalibration of a feature row; None when the machine had no calibration in force."""
    if row is None or any(row[v] is None or (isinstance(row[v], float) and math.isnan(row[v])) for v in VALUES):
        return None
    return ToneCalibration(
        gains=(float(row["gain_r"]), float(row["gain_g"]), float(row["gain_b"])),
        offsets=(float(row["offset_r"]), float(row["offset_g"]), float(row["offset_b"])),
        gray_gain=float(row["gain_gray"]),
        gray_offset=float(row["offset_gray"]),
    )


def online(store, machine_id: str) -> ToneCalibration | None:
    """Serving: the machine's latest calibration from the online store."""
    from features.definitions import CALIBRATION_SERVICE
    from features.store import service_row

    return from_row(service_row(store, CALIBRATION_SERVICE, "machine_calibration", {"machine_id": machine_id}))


def at(store, rows: list[dict]) -> list[ToneCalibration | None]:
    """Training: the calibration in force for each (machine_id, at) row, point in time, in the rows' order."""
    from features.definitions import TRAINING_SERVICE
    from features.store import historical

    if not rows:
        return []
    found = historical(store, TRAINING_SERVICE, "machine_calibration", rows)
    return [from_row(r) for r in found.to_dict("records")]


def for_images(settings: Settings, shas: list[str], store=None) -> dict[str, ToneCalibration]:
    """sha256 -> calibration in force when the image was captured, for the images of a machine that had one.

    Feast is opened only when the catalog's images have machines and a calibration source exists."""

    from aoi.catalog import db
    from aoi.catalog.models import Image

    if not source_path(settings).exists() or not shas:
        return {}
    when = func.coalesce(Image.captured_at, Image.ingested_at)
    with db.session(settings.catalog_url) as s:
        found = []
        for start in range(0, len(shas), 5000):  # bounded IN lists
            chunk = shas[start : start + 5000]
            found += s.exec(
                select(Image.sha256, Image.machine_id, when).where(
                    col(Image.sha256).in_(chunk), col(Image.machine_id).is_not(None)
                )
            ).all()
    if not found:
        return {}
    from features.store import open_store

    store = store or open_store(settings)
    calibrations = at(store, [{"machine_id": m, "at": t} for _, m, t in found])
    return {sha: c for (sha, _, _), c in zip(found, calibrations) if c is not None}


def in_force(settings: Settings, machines: list[str | None], times: list) -> list[ToneCalibration | None]:
    """Monitoring: the calibration in force for each (machine, time), read from the source table itself.

    The same point-in-time rule as Feast's historical join (latest row with effective_from <= time), done
    as one pandas as-of merge: a drift check reads up to 100k logged answers and needs no feature server."""
    if not source_path(settings).exists() or not machines:
        return [None] * len(machines)
    table = pd.read_parquet(source_path(settings), columns=["machine_id", "effective_from", *VALUES])
    rows = pd.DataFrame(
        {
            "row": range(len(machines)),
            "machine_id": machines,
            "at": pd.to_datetime(pd.Series(times), utc=True).astype("datetime64[ns, UTC]"),
        }
    )
    table["effective_from"] = pd.to_datetime(table["effective_from"], utc=True).astype("datetime64[ns, UTC]")
    known = rows.dropna(subset=["machine_id"]).sort_values("at")
    merged = pd.merge_asof(
        known,
        table.sort_values("effective_from"),
        left_on="at",
        right_on="effective_from",
        by="machine_id",
        direction="backward",
    )
    found: list[ToneCalibration | None] = [None] * len(machines)
    for record in merged.to_dict("records"):
        found[record["row"]] = from_row(record)
    return found
