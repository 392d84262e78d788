"""The two sides of a drift check as data frames, with the same columns:

- the **window**: answers of the production model in the prediction log, one row per request;
- the **reference**: the production model's training dataset version: every image's tone and compression
  (from the catalog), and on its valid split the model's own answers (confidence, label, Unknown). Rows of
  the other splits have no answer; Evidently compares each column on the rows that have a value. Computed
  once per model version and cached under ``AOI_HOME/monitoring/reference/``.

Why every image for the inputs: tone differs by board and part number (domain fact 2), and a valid split of
a few boards is a narrow picture of it. Against the valid split alone, undrifted windows from other boards of
the same line raised false alarms; the whole dataset version is what the model was built from. The answers
come from the valid split only: on its training images a model is more confident than on anything new.

Tone of a calibrated machine is compared after its colour calibration (the calibration in force when the
image came in): calibration exists to remove known machine differences, so what is left is unexplained
change, such as an ageing lamp.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from aoi.catalog import db
from aoi.catalog.models import DatasetMember, DatasetVersion, Image, Prediction
from aoi.metrics import QUALITY_FIELDS, TONE_FIELDS
from aoi.settings import Settings

COMPRESSION = ("jpeg_quality", "bytes_per_pixel")
# A blurred camera (sharpness) or a smeared lens or window (smear) is drift even when the tone holds. Rows
# measured before these existed have no value (NaN); Evidently compares each column on the rows that have one.
QUALITY = QUALITY_FIELDS
INPUTS = (*TONE_FIELDS, *QUALITY, *COMPRESSION)
NUMERIC = (*TONE_FIELDS, *QUALITY, *COMPRESSION, "confidence")
CATEGORICAL = ("model_label", "unknown")  # the predicted-label share and the Unknown rate
MONITORED = (*NUMERIC, *CATEGORICAL)
# A lossless image has no JPEG quality; it counts as 100 (no loss), so a switch of format shows as drift.
LOSSLESS_QUALITY = 100
REFERENCE_FORMAT = 3  # in the cache's file name: a reference cached in an older shape is built anew


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    frame["jpeg_quality"] = pd.to_numeric(frame["jpeg_quality"], errors="coerce").astype(float).fillna(LOSSLESS_QUALITY)
    for column in QUALITY:  # NULL (not measured) stays missing, never zero
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    if "unknown" in frame:
        frame["unknown"] = frame["unknown"].astype(bool)
    return frame


def window(settings: Settings, kind: str, model_version: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The production model's answers for ``kind`` logged in [start, end), with machine_id and time."""
    t = Prediction.__table__.c
    query = (select(t.machine_id, t.at, *(t[c] for c in MONITORED))
             .where(t.kind == kind, t.model_version == model_version, t.at >= start, t.at < end))  # fmt: skip
    with db.get_engine(settings.catalog_url).connect() as connection:
        frame = pd.read_sql(query, connection)
    return _tidy(frame)


def reference_path(settings: Settings, model_version: str):
    return settings.home / "monitoring" / "reference" / f"{model_version}.v{REFERENCE_FORMAT}.parquet"


def reference(settings: Settings, model_version: str) -> pd.DataFrame:
    """The model's reference frame (cached: a model version and its dataset version never change)."""
    path = reference_path(settings, model_version)
    if path.exists():
        return pd.read_parquet(path)
    from evaluation import service as evaluation
    from features.store import write_parquet

    loaded = evaluation.load(settings, model_version)
    selected = evaluation.images_of(settings, loaded, loaded.row.dataset, "valid")
    outputs = answers(settings, loaded, selected, evaluation.predict(settings, loaded, selected))
    frame = dataset_inputs(settings, loaded.row.dataset).merge(outputs, on="sha256", how="left")
    write_parquet(frame, path)
    return frame


def dataset_inputs(settings: Settings, dataset: str) -> pd.DataFrame:
    """sha256, split, tone and compression of every image of a dataset version as measured at ingest; a
    calibrated machine's tone mapped through its calibration, as training and evaluation apply it."""
    from features.calibration import for_images

    m, i, d = DatasetMember.__table__.c, Image.__table__.c, DatasetVersion.__table__.c
    query = (select(m.sha256, m.split, *(i[c] for c in INPUTS))
             .join(Image.__table__, i.id == m.image_id).join(DatasetVersion.__table__, d.id == m.dataset_id)
             .where(d.name == dataset).order_by(m.split, m.sha256))  # fmt: skip
    with db.get_engine(settings.catalog_url).connect() as connection:
        frame = _tidy(pd.read_sql(query, connection))
    by_sha = for_images(settings, frame["sha256"].tolist())
    return calibrated(frame, [by_sha.get(sha) for sha in frame["sha256"]])


def answers(settings: Settings, loaded, selected, predicted) -> pd.DataFrame:
    """A model's answers on selected images as the monitor reads them: sha256, confidence, label, Unknown."""
    from evaluation.service import threshold_of

    threshold = threshold_of(settings, loaded.row, None)
    return pd.DataFrame({"sha256": [sha for sha, _ in selected.rows], "confidence": predicted.confidence.astype(float),
                         "model_label": np.asarray(loaded.taxonomy.fine)[predicted.pred],
                         "unknown": predicted.confidence < threshold})  # fmt: skip


def calibrated(frame: pd.DataFrame, calibrations: list) -> pd.DataFrame:
    """Tone columns mapped through each row's ToneCalibration (None: unchanged). Channel means map linearly
    (mean(g·x + o) = g·mean(x) + o), up to the clipping at 0 and 255 that real pixels near the ends see."""
    if not any(calibrations):
        return frame
    out = frame.copy()
    ident = (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 1.0, 0.0
    parts = [(c.gains, c.offsets, c.gray_gain, c.gray_offset) if c is not None else ident for c in calibrations]
    gains = np.array([p[0] for p in parts]), np.array([p[1] for p in parts])
    for i, channel in enumerate(("mean_r", "mean_g", "mean_b")):
        out[channel] = frame[channel].to_numpy() * gains[0][:, i] + gains[1][:, i]
    out["brightness"] = frame["brightness"].to_numpy() * np.array([p[2] for p in parts]) + np.array([p[3] for p in parts])
    return with_differences(out)


def with_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """The channel differences recomputed from the channel means (aoi.metrics defines them so)."""
    frame["r_minus_g"] = frame["mean_r"] - frame["mean_g"]
    frame["r_minus_b"] = frame["mean_r"] - frame["mean_b"]
    frame["g_minus_b"] = frame["mean_g"] - frame["mean_b"]
    frame["b_diff"] = (frame["mean_r"] + frame["mean_g"]) / 2 - frame["mean_b"]
    return frame


def calibrate_window(settings: Settings, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The window with each calibrated machine's tone mapped through the calibration in force at each answer's
    time; returns it and how many rows were mapped."""
    from features.calibration import in_force

    if frame.empty or frame["machine_id"].isna().all():
        return frame, 0
    calibrations = in_force(settings, frame["machine_id"].tolist(), frame["at"].tolist())
    return calibrated(frame, calibrations), sum(c is not None for c in calibrations)
