"""Per-machine tone statistics: rolling mean and standard deviation of brightness and channel differences over
each machine's recent images, from the catalog (the metrics ingest measured with ``aoi.image_metrics``).

One row per machine and day that had images: the statistics over the window ending with that day's last
image, stamped with its time. A point-in-time read at time t therefore sees what was known at t (domain
docs/domain.md#joint-tone: one channel alone says little, so every difference is kept, not just brightness).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func
from sqlmodel import col, select

from aoi.image_metrics import JOINT_TONE_FIELDS
from aoi.settings import Settings

TONE_COLUMNS = JOINT_TONE_FIELDS


def machine_images(settings: Settings) -> pd.DataFrame:
    """Every catalogued image with a machine: machine_id, at (capture time, else ingest time), tone metrics.
    Reference samples are left out: they show the reference board, not the line's boards."""

    from aoi.catalog import db
    from aoi.catalog.models import Image, IngestBatch

    at = func.coalesce(Image.captured_at, Image.ingested_at).label("at")
    columns = [Image.machine_id, at, *(getattr(Image, c) for c in TONE_COLUMNS)]
    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(*columns)
            .join(IngestBatch, IngestBatch.id == Image.batch_id)
            .where(col(Image.machine_id).is_not(None), col(IngestBatch.reference).is_(False))
        ).all()
    frame = pd.DataFrame(rows, columns=["machine_id", "at", *TONE_COLUMNS])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def rolling_stats(images: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """machine_id, event_timestamp, images, <metric>_mean, <metric>_std: one row per machine and day."""
    columns = ["machine_id", "event_timestamp", "images", *(f"{c}_{s}" for c in TONE_COLUMNS for s in ("mean", "std"))]
    if images.empty:
        return pd.DataFrame(columns=columns)
    ordered = images.sort_values(["machine_id", "at"]).set_index("at")
    rolling = ordered.groupby("machine_id")[list(TONE_COLUMNS)].rolling(f"{window_days}D")
    means, stds = rolling.mean(), rolling.std(ddof=0)  # ddof 0: one image gives 0, not NaN
    counts = ordered.groupby("machine_id")["brightness"].rolling(f"{window_days}D").count()
    out = pd.DataFrame({"images": counts.astype("int64")})
    for c in TONE_COLUMNS:
        out[f"{c}_mean"], out[f"{c}_std"] = means[c].astype("float32"), stds[c].astype("float32")
    out = out.reset_index().rename(columns={"at": "event_timestamp"})
    out["day"] = out["event_timestamp"].dt.floor("D")
    return out.groupby(["machine_id", "day"]).tail(1)[columns].reset_index(drop=True)


def write_source(settings: Settings, window_days: int) -> dict:
    """Recompute the whole table from the catalog (idempotent) and replace the parquet source atomically."""
    from features.store import data_dir, write_parquet

    table = rolling_stats(machine_images(settings), window_days)
    target = data_dir(settings) / "machine_tone_stats.parquet"
    write_parquet(table, target)
    return {
        "rows": len(table),
        "machines": int(table["machine_id"].nunique()) if len(table) else 0,
        "table": str(target),
    }
