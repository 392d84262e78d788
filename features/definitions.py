"""The feature repository, as documentation: who the entities are, what each feature view holds and where it
comes from, and which versioned feature service training and serving read.

Sources are parquet files under ``AOI_HOME/feast/data`` (the file offline store), written by
``features/camera_params.py`` (the team's CSV), ``features/tone_stats.py`` and ``features/calibration.py`` (from
the catalog). Feature views are built by functions because the file
source needs the absolute folder of the AOI_HOME in use; their schemas are fixed here.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, Project, ValueType
from feast.types import Float32, Int64, String

from features.tone_stats import TONE_COLUMNS

PROJECT = "aoi"
project = Project(name=PROJECT, description="AOI defect classification: camera parameters, tone and calibration.")

# A VRS or AOI machine on the line: the same camera settings give it its own colours (docs/domain.md#tone-per-machine).
machine = Entity(
    name="machine",
    join_keys=["machine_id"],
    value_type=ValueType.STRING,
    description="An AOI or VRS machine on the line, as line software names it (machine_id).",
)

# A board part number: the VRS settings are chosen per part (the per-part camera parameters of
# docs/domain.md#tone-per-machine).
part = Entity(
    name="part", join_keys=["part_no"], value_type=ValueType.STRING, description="A board part number (part_no)."
)

# What a VRS should be set to for a part: light, exposure and the three channel gains. Rows are versioned by
# `effective_from`; a lookup at a time gets the row in force then. The team keeps the table as a CSV
# (`aoi machines import FILE`). The ttl is long: a setting stays in force until a newer row replaces it.
CAMERA_PARAMS_SCHEMA = [
    Field(name="light", dtype=Int64, description="Light level, in the VRS's own units (example: 48)."),
    Field(name="exposure", dtype=Int64, description="Exposure, in the VRS's own units (example: 13)."),
    Field(name="gain_r", dtype=Float32, description="Red channel gain (example: 9)."),
    Field(name="gain_g", dtype=Float32, description="Green channel gain (example: 6)."),
    Field(name="gain_b", dtype=Float32, description="Blue channel gain (example: 13)."),
]
CAMERA_PARAMS_TTL = timedelta(days=3650)


def camera_params_source(data_dir: Path) -> FileSource:
    """The parquet written from the team's CSV: one row per machine, part and `effective_from`."""
    return FileSource(
        name="camera_params_source",
        path=str(data_dir / "camera_params.parquet"),
        timestamp_field="effective_from",
        created_timestamp_column="imported_at",
        description="aoi machines import FILE: the team's part-number -> camera-parameter table.",
    )


def camera_params_view(data_dir: Path) -> FeatureView:
    """Camera parameters per machine and part: what Auto VRS reads (GET /machine_params)."""
    return FeatureView(
        name="camera_params",
        entities=[machine, part],
        ttl=CAMERA_PARAMS_TTL,
        schema=CAMERA_PARAMS_SCHEMA,
        source=camera_params_source(data_dir),
        online=True,
        description="VRS light, exposure and RGB gains per machine and part number.",
        tags={"owner": "vrs-team", "fact": "2"},
    )


# How each machine's images looked lately: the mean and spread of brightness and of every channel difference
# (docs/domain.md#joint-tone: tone is judged jointly). Computed from the catalog by the `features` flow; drift
# shows here first when a lamp ages. The ttl is the rolling window's reach: older statistics are stale.
TONE_STATS_SCHEMA = [
    Field(name="images", dtype=Int64, description="Images of the machine inside the window."),
    *(
        Field(name=f"{metric}_{stat}", dtype=Float32, description=f"{label} of the window's per-image {metric}.")
        for metric in TONE_COLUMNS
        for stat, label in (("mean", "Mean"), ("std", "Standard deviation"))
    ),
]
TONE_STATS_TTL = timedelta(days=30)


def machine_tone_stats_view(data_dir: Path) -> FeatureView:
    """Rolling tone statistics per machine, one row per machine and day with images."""
    source = FileSource(
        name="machine_tone_stats_source",
        path=str(data_dir / "machine_tone_stats.parquet"),
        timestamp_field="event_timestamp",
        description="features/tone_stats.py: rolling statistics over the catalog's images.",
    )
    return FeatureView(
        name="machine_tone_stats",
        entities=[machine],
        ttl=TONE_STATS_TTL,
        schema=TONE_STATS_SCHEMA,
        source=source,
        online=True,
        tags={"owner": "aoi", "fact": "3"},
        description="Rolling mean and std of brightness and channel differences per machine.",
    )


# How to bring a machine's colours to the reference tone: per channel (R, G, B and gray) `value * gain + offset`,
# fitted from the machine's shots of the reference board against the reference machine's shots of the same
# board (features/calibration.py). One row per reference batch, in force from its capture time until the next;
# training and serving apply it with the one preprocessing function (train/serve parity).
CALIBRATION_SCHEMA = [
    *(
        Field(name=f"gain_{c}", dtype=Float32, description=f"{name} gain: reference spread / machine spread.")
        for c, name in (("r", "Red"), ("g", "Green"), ("b", "Blue"), ("gray", "Gray"))
    ),
    *(
        Field(name=f"offset_{c}", dtype=Float32, description=f"{name} offset, in gray levels, after the gain.")
        for c, name in (("r", "Red"), ("g", "Green"), ("b", "Blue"), ("gray", "Gray"))
    ),
    Field(name="reference_board", dtype=String, description="Part number of the reference board shot."),
    Field(name="reference_images", dtype=Int64, description="Reference samples the fit used."),
]
CALIBRATION_TTL = timedelta(days=3650)  # in force until the next reference shots, however long that takes


def machine_calibration_view(data_dir: Path) -> FeatureView:
    """Per-machine colour calibration to the reference tone."""
    source = FileSource(
        name="machine_calibration_source",
        path=str(data_dir / "machine_calibration.parquet"),
        timestamp_field="effective_from",
        created_timestamp_column="computed_at",
        description="features/calibration.py: fits from the catalog's reference-sample batches.",
    )
    return FeatureView(
        name="machine_calibration",
        entities=[machine],
        ttl=CALIBRATION_TTL,
        schema=CALIBRATION_SCHEMA,
        source=source,
        online=True,
        tags={"owner": "aoi", "fact": "2"},
        description="Per-channel gain and offset mapping the machine's tone to the reference tone.",
    )


# Versioned feature services: a new version is added beside the old one, never edited in place, so a caller
# pinned to a version keeps reading the same features. The pipeline reads features only through these.
CAMERA_PARAMS_SERVICE = "serving_v1"  # GET /machine_params
CALIBRATION_SERVICE = "serving_v2"  # /classify's colour calibration (by machine_id alone: part_no may be unknown)
TRAINING_SERVICE = "training_v1"  # the training dataset's calibration, point in time


def serving_v1(views: dict[str, FeatureView]) -> FeatureService:
    """v1, online per request: the camera parameters of the request's machine and part (GET /machine_params)."""
    return FeatureService(
        name="serving_v1", features=[views["camera_params"]], description="Online, per /machine_params request."
    )


def serving_v2(views: dict[str, FeatureView]) -> FeatureService:
    """v2, online per request: v1 plus the machine's colour calibration, which /classify applies."""
    return FeatureService(
        name="serving_v2",
        features=[views["camera_params"], views["machine_calibration"]],
        description="Online, per /classify or /machine_params request.",
    )


def training_v1(views: dict[str, FeatureView]) -> FeatureService:
    """v1, point in time per training image: the calibration of the image's machine when it was captured."""
    return FeatureService(
        name="training_v1",
        features=[views["machine_calibration"]],
        description="get_historical_features by machine_id and captured_at, per training image.",
    )


def repo_objects(data_dir: Path) -> list:
    """Everything `apply` registers, in the order a reader meets it above."""
    views = {
        "camera_params": camera_params_view(data_dir),
        "machine_tone_stats": machine_tone_stats_view(data_dir),
        "machine_calibration": machine_calibration_view(data_dir),
    }
    return [machine, part, *views.values(), serving_v1(views), serving_v2(views), training_v1(views)]
