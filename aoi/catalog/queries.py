"""Read-side queries: the image gallery, the quarantine, batches, label counts, store consistency."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Image, IngestBatch, KeptAnswer, KeptAnswerStatus, QuarantineEntry
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
        # lower() on both sides: LIKE ignores case on SQLite but not on PostgreSQL. autoescape: % and _ are
        # literal characters of a file name here, not wildcards.
        query = query.where(func.lower(Image.file_name).contains(f.name_contains.lower(), autoescape=True))
    if f.since:
        query = query.where(Image.ingested_at >= f.since)
    if f.until:
        query = query.where(Image.ingested_at < f.until)
    if f.min_width:
        query = query.where(Image.width >= f.min_width)
    if f.min_height:
        query = query.where(Image.height >= f.min_height)
    query = query.order_by(col(Image.id)).offset(f.offset)
    if f.limit:
        query = query.limit(f.limit)
    with db.session(url) as s:
        return [_plain(row) for row in s.exec(query).all()]


def quarantine(url: str, batch_id: int | None = None) -> list[dict]:
    query = select(QuarantineEntry).order_by(col(QuarantineEntry.id))
    if batch_id is not None:
        query = query.where(QuarantineEntry.batch_id == batch_id)
    with db.session(url) as s:
        return [_plain(row) for row in s.exec(query).all()]


def batches(url: str) -> list[dict]:
    with db.session(url) as s:
        return [_plain(row) for row in s.exec(select(IngestBatch).order_by(col(IngestBatch.id))).all()]


def label_counts(url: str) -> list[dict]:
    """Images per source, label and status: the per-class table people check after an ingest."""
    query = (
        select(Image.source, Image.label, Image.status, func.count())
        .group_by(col(Image.source), col(Image.label), col(Image.status))
        .order_by(col(Image.source), col(Image.label), col(Image.status))
    )
    with db.session(url) as s:
        return [
            {"source": source, "label": label, "status": status, "images": n}
            for source, label, status, n in s.exec(query).all()
        ]


def store_check(settings: Settings, fix: bool = False, grace_s: float = 900.0) -> dict:
    """Image store and quarantine store vs catalog: files without a row (orphans), rows without a file
    (missing), temporary files of crashed writers. The images of kept answers (the review queue, not dropped) are
    the store's too: in use, never orphans.

    ``fix`` deletes orphans older than ``grace_s`` only: a running ingest stores a chunk's files a moment
    before it commits their rows, and those young files must not be taken for orphans.
    """
    with db.session(settings.catalog_url) as s:
        catalogued = set(s.exec(select(Image.sha256)).all())
        answers = set(s.exec(select(KeptAnswer.sha256).where(KeptAnswer.status != KeptAnswerStatus.dropped)).all())
        kept = set(s.exec(select(QuarantineEntry.fingerprint).where(QuarantineEntry.kept)).all())
    images = _compare(ImageStore(settings.store_dir), catalogued | answers, fix, grace_s)
    quarantined = _compare(ImageStore(settings.quarantine_dir), kept, fix, grace_s)
    report = {
        "images": len(catalogued),
        "kept_answer_images": len(answers - catalogued),
        "files": images["files"],
        "orphans": images["orphans"],
        "missing": images["missing"],
        "quarantine_orphans": quarantined["orphans"],
        "quarantine_missing": quarantined["missing"],
        "temp_files": images["temp_files"] + quarantined["temp_files"],
        "fixed": images["fixed"] + quarantined["fixed"],
    }
    report["ok"] = not any(report[k] for k in ("orphans", "missing", "quarantine_orphans", "quarantine_missing"))
    return report


def _compare(store: ImageStore, expected: set[str], fix: bool, grace_s: float) -> dict:
    held = set(store.digests())
    orphans, fixed = sorted(held - expected), 0
    if fix:
        cutoff = time.time() - grace_s
        for digest in orphans:
            if store.path_for(digest).stat().st_mtime < cutoff:
                store.delete(digest)
                fixed += 1
        fixed += store.sweep_temp()
    return {
        "files": len(held),
        "orphans": orphans,
        "missing": sorted(expected - held),
        "fixed": fixed,
        "temp_files": store.temp_count(),
    }


def measure_quality(settings: Settings, chunk: int = 500) -> dict:
    """Fill sharpness and smear of images stored before they existed (NULL), from their stored bytes.

    Images too small to judge stay NULL (``too_small``); a row whose file is missing from the store is counted,
    not touched (``aoi store check`` reports it). Answers in the prediction log cannot be filled: their bytes are
    not kept.
    """
    from aoi.image_metrics import BadImage, measure

    store = ImageStore(settings.store_dir)
    report = {"measured": 0, "too_small": 0, "missing": 0, "unreadable": 0}
    last_id = 0
    while True:
        with db.session(settings.catalog_url) as s:
            rows = s.exec(
                select(Image)
                .where(col(Image.sharpness).is_(None), col(Image.id) > last_id)
                .order_by(col(Image.id))
                .limit(chunk)
            ).all()
            if not rows:
                break
            for row in rows:
                last_id = row.id or 0
                if not store.has(row.sha256):
                    report["missing"] += 1
                    continue
                try:
                    metrics = measure(
                        store.get(row.sha256),
                        max_pixels=settings.ingest.max_pixels,
                        allowed_modes=settings.ingest.allowed_modes,
                        min_side=settings.metrics_min_side,
                    )
                except BadImage:
                    report["unreadable"] += 1
                    continue
                if metrics.sharpness is None:
                    report["too_small"] += 1
                    continue
                row.sharpness, row.smear = metrics.sharpness, metrics.smear
                s.add(row)
                report["measured"] += 1
            s.commit()
    return report
