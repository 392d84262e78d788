"""Read-side queries: the image gallery, the quarantine, batches, label counts, store consistency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import Image, IngestBatch, QuarantineEntry
from aoi.settings import Settings
from aoi.store import ImageStore


@dataclass(frozen=True)
class GalleryFilter:
    """The gallery's filters (name, label, status, upload time, resolution), all optional."""

    label: str | None = None
    status: str | None = None
    source: str | None = None
    machine_id: str | None = None
    part_no: str | None = None
    batch_id: int | None = None
    name_contains: str | None = None
    since: datetime | None = None  # ingested at or after
    until: datetime | None = None  # ingested before
    min_width: int | None = None
    min_height: int | None = None
    limit: int | None = None
    offset: int = 0


def _plain(row) -> dict:
    data = row.model_dump()
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return data


def images(url: str, f: GalleryFilter = GalleryFilter()) -> list[dict]:
    query = select(Image)
    conditions = {
        Image.label: f.label,
        Image.status: f.status,
        Image.source: f.source,
        Image.machine_id: f.machine_id,
        Image.part_no: f.part_no,
        Image.batch_id: f.batch_id,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if f.name_contains:
        query = query.where(Image.file_name.contains(f.name_contains))
    if f.since:
        query = query.where(Image.ingested_at >= f.since)
    if f.until:
        query = query.where(Image.ingested_at < f.until)
    if f.min_width:
        query = query.where(Image.width >= f.min_width)
    if f.min_height:
        query = query.where(Image.height >= f.min_height)
    query = query.order_by(Image.id).offset(f.offset)
    if f.limit:
        query = query.limit(f.limit)
    with db.session(url) as s:
        return [_plain(row) for row in s.exec(query).all()]


def quarantine(url: str, batch_id: int | None = None) -> list[dict]:
    query = select(QuarantineEntry).order_by(QuarantineEntry.id)
    if batch_id is not None:
        query = query.where(QuarantineEntry.batch_id == batch_id)
    with db.session(url) as s:
        return [_plain(row) for row in s.exec(query).all()]


def batches(url: str) -> list[dict]:
    with db.session(url) as s:
        return [_plain(row) for row in s.exec(select(IngestBatch).order_by(IngestBatch.id)).all()]


def label_counts(url: str) -> list[dict]:
    """Images per source, label and status: the per-class table people check after an ingest."""
    query = (
        select(Image.source, Image.label, Image.status, func.count())
        .group_by(Image.source, Image.label, Image.status)
        .order_by(Image.source, Image.label, Image.status)
    )
    with db.session(url) as s:
        return [
            {"source": source, "label": label, "status": status, "images": n}
            for source, label, status, n in s.exec(query).all()
        ]


def store_check(settings: Settings, fix: bool = False) -> dict:
    """Image store vs catalog: files without a row (orphans), rows without a file (missing)."""
    url = settings.catalog_url
    with db.session(url) as s:
        catalogued = set(s.exec(select(Image.sha256)).all())
        kept = set(s.exec(select(QuarantineEntry.fingerprint).where(QuarantineEntry.kept)).all())
    store = ImageStore(settings.store_dir)
    held = set(store.digests())
    quarantine_store = ImageStore(settings.quarantine_dir)
    quarantine_held = set(quarantine_store.digests())
    temp = sum(1 for p in (settings.store_dir / "tmp").glob("*")) if (settings.store_dir / "tmp").is_dir() else 0
    report = {
        "images": len(catalogued),
        "files": len(held),
        "orphans": sorted(held - catalogued),
        "missing": sorted(catalogued - held),
        "quarantine_orphans": sorted(quarantine_held - kept),
        "quarantine_missing": sorted(kept - quarantine_held),
        "temp_files": temp,
        "fixed": 0,
    }
    if fix:
        for digest in report["orphans"]:
            store.delete(digest)
        for digest in report["quarantine_orphans"]:
            quarantine_store.delete(digest)
        report["fixed"] = len(report["orphans"]) + len(report["quarantine_orphans"]) + store.sweep_temp(0)
    report["ok"] = not (report["orphans"] or report["missing"] or report["quarantine_orphans"]
                        or report["quarantine_missing"])  # fmt: skip
    return report
