"""The two sides of a drift check as data frames, with the same columns:

- the **window**: answers of the production model in the prediction log, one row per request, with the
  machine and part number the request named;
- the **reference**: what the line sends, as the model's dataset version was built from it: every labelled
  image of the version's source catalogued by the time the version was frozen, *uncleaned* (images a tone
  spec excluded and images a per-class cap left out count too), less reference samples (calibration shots)
  and blind-set images (held out: the study draws its undrifted traffic from them). Each row has tone and
  compression (from the catalog), its machine and part number, and its split in the version ("outside" when
  a rule left it out). Every row that is not in the version's train split also has the model's answer
  (confidence, label, Unknown). Computed once per model version and cached under
  ``AOI_HOME/monitoring/reference/``.

Why uncleaned: a spec derived blind to what an image shows (mean ± 1.5σ over all crops) removed 90% of the
PKU MISSING_HOLE crops; against the cleaned version the line's ordinary images looked foreign (9 of 13 columns
drifted on 300 unchanged crops from a new machine). The line sends every class, every board, uncleaned: so
does the reference. A camera that leaves the spec still drifts: a lamp at 90% light moves the tone columns by
more than the reference's own spread (``aoi drift-study`` measures both, README).

Why every image for the inputs: tone differs by board and part number (docs/domain.md#tone-per-machine), and a valid
split of
a few boards is a narrow picture of it. The answers come from every image outside the train split: on its
training images a model is more confident than on anything new, and the images a spec excluded are exactly
the ones whose answers the line sees too.

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
from aoi.catalog.models import DatasetMember, DatasetVersion, HashClaim, Image, IngestBatch, Prediction, table_of
from aoi.image_metrics import QUALITY_FIELDS, TONE_FIELDS
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
REFERENCE_FORMAT = 4  # in the cache's file name: a reference cached in an older shape is built anew
OUTSIDE = "outside"  # split of a reference image that the dataset version left out (a spec, a cap)


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
    t = table_of(Prediction).c
    query = select(t.machine_id, t.part_no, t.at, *(t[c] for c in MONITORED)).where(
        t.kind == kind, t.model_version == model_version, t.at >= start, t.at < end
    )
    with db.get_engine(settings.catalog_url).connect() as connection:
        frame = pd.read_sql(query, connection)
    return _tidy(frame)


def reference_path(settings: Settings, model_version: str):
    return settings.home / "monitoring" / "reference" / f"{model_version}.v{REFERENCE_FORMAT}.parquet"


def with_class_answers(inputs: pd.DataFrame, answered: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every reference image with an answer: its own where the model did not train on it, else the answer to
    another unseen image of the same class (drawn at random, seeded). So the label share and the Unknown rate
    follow the line's mix of classes, not the mix the split left over (a spec's exclusions are nearly all of one
    class; the train split took most of the rest). A class with no unseen image keeps no answer."""
    frame = inputs.merge(answered, on="sha256", how="left")
    frame["answer_of"] = np.where(frame["confidence"].notna(), frame["sha256"], None)
    rng = np.random.default_rng(seed)
    for _label, rows in frame.groupby("label"):
        missing = rows.index[rows["confidence"].isna()]
        donors = rows.index[rows["confidence"].notna()]
        if len(missing) and len(donors):
            picked = donors[rng.integers(0, len(donors), len(missing))]
            for column in (*ANSWER, "answer_of"):
                frame.loc[missing, column] = frame.loc[picked, column].to_numpy()
    return frame


INPUT_COLUMNS = ("sha256", "label", "machine_id", "part_no", *INPUTS)
ANSWER = ("confidence", "model_label", "unknown")


def line_inputs(settings: Settings, dataset: str) -> pd.DataFrame:
    """sha256, split, machine, part number, tone and compression of every image the line sent of the dataset
    version's source up to its freezing (see the module's docstring), as measured at ingest; a calibrated
    machine's tone mapped through its calibration, as training and evaluation apply it."""
    i, b, m, d = (table_of(T).c for T in (Image, IngestBatch, DatasetMember, DatasetVersion))
    with db.get_engine(settings.catalog_url).connect() as connection:
        version = connection.execute(select(d.id, d.source, d.created_at).where(d.name == dataset)).first()
        if version is None:
            raise ValueError(f"no dataset version {dataset}")
        blind = select(table_of(HashClaim).c.sha256).where(table_of(HashClaim).c.role == "blind")
        query = (
            select(*(i[c] for c in INPUT_COLUMNS), m.split)
            .join(table_of(IngestBatch), b.id == i.batch_id)
            .outerjoin(table_of(DatasetMember), (m.image_id == i.id) & (m.dataset_id == version.id))
            .where(
                i.source == version.source,
                i.label.is_not(None),
                b.reference.is_(False),
                i.ingested_at <= version.created_at,
                i.sha256.not_in(blind),
            )
            .order_by(i.id)
        )
        frame = _tidy(pd.read_sql(query, connection))
    frame["split"] = frame["split"].fillna(OUTSIDE)
    return _calibrated_inputs(settings, frame)


def dataset_inputs(settings: Settings, dataset: str) -> pd.DataFrame:
    """sha256, split, machine, part number, tone and compression of the images of a dataset version (its
    members only: what cleaning kept); a calibrated machine's tone mapped through its calibration."""
    m, i, d = table_of(DatasetMember).c, table_of(Image).c, table_of(DatasetVersion).c
    query = (
        select(m.split, *(i[c] for c in INPUT_COLUMNS))
        .join(table_of(Image), i.id == m.image_id)
        .join(table_of(DatasetVersion), d.id == m.dataset_id)
        .where(d.name == dataset)
        .order_by(m.split, m.sha256)
    )
    with db.get_engine(settings.catalog_url).connect() as connection:
        frame = _tidy(pd.read_sql(query, connection))
    return _calibrated_inputs(settings, frame)


def _calibrated_inputs(settings: Settings, frame: pd.DataFrame) -> pd.DataFrame:
    from features.calibration import for_images

    by_sha = for_images(settings, frame["sha256"].tolist())
    return calibrated(frame, [by_sha.get(sha) for sha in frame["sha256"]])


def answers_for(settings: Settings, loaded, shas: list[str], change=None) -> pd.DataFrame:
    """The model's answers on stored images (each with its machine's calibration, as serving applies it)."""
    from aoi.store import ImageStore
    from evaluation.predict import load_images, probabilities
    from features.calibration import for_images

    if not shas:
        return pd.DataFrame({"sha256": [], "confidence": [], "model_label": [], "unknown": []})
    by_sha = for_images(settings, shas)
    images = load_images(ImageStore(settings.store_dir), shas, loaded.prep.channels)
    probs = probabilities(
        loaded.model, loaded.prep, images, change, settings.evaluation.batch_size, [by_sha.get(sha) for sha in shas]
    )
    return _answer_frame(settings, loaded, shas, probs.max(axis=1), probs.argmax(axis=1))


def _answer_frame(settings: Settings, loaded, shas, confidence, pred) -> pd.DataFrame:
    from training.registry import threshold_of

    threshold = threshold_of(settings, loaded.row, None)
    return pd.DataFrame(
        {
            "sha256": list(shas),
            "confidence": np.asarray(confidence, dtype=float),
            "model_label": np.asarray(loaded.taxonomy.fine)[np.asarray(pred)],
            "unknown": np.asarray(confidence) < threshold,
        }
    )


def answers(settings: Settings, loaded, selected, predicted) -> pd.DataFrame:
    """A model's answers on selected images as the monitor reads them: sha256, confidence, label, Unknown."""
    return _answer_frame(settings, loaded, [sha for sha, _ in selected.rows], predicted.confidence, predicted.pred)


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
    out["brightness"] = frame["brightness"].to_numpy() * np.array([p[2] for p in parts]) + np.array(
        [p[3] for p in parts]
    )
    return with_differences(out)


def with_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """The channel differences recomputed from the channel means (aoi.image_metrics defines them so)."""
    frame["r_minus_g"] = frame["mean_r"] - frame["mean_g"]
    frame["r_minus_b"] = frame["mean_r"] - frame["mean_b"]
    frame["g_minus_b"] = frame["mean_g"] - frame["mean_b"]
    frame["b_diff"] = (frame["mean_r"] + frame["mean_g"]) / 2 - frame["mean_b"]
    return frame


def calibrate_window(settings: Settings, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The window with each calibrated machine's tone mapped through the calibration in force at each answer's
    time (column ``calibrated``: whether a calibration was); returns it and how many rows were mapped."""
    from features.calibration import in_force

    if frame.empty or frame["machine_id"].isna().all():
        return frame.assign(calibrated=False), 0
    calibrations = in_force(settings, frame["machine_id"].tolist(), frame["at"].tolist())
    return calibrated(frame, calibrations).assign(calibrated=[c is not None for c in calibrations]), sum(
        c is not None for c in calibrations
    )
