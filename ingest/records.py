"""Catalog writes of the ingest path: batches, image rows and quarantine entries.

Inserts ignore conflicts on the content hash (images) and on batch + origin + fingerprint (quarantine), so a chunk
retried after a failure, a resumed batch, or two ingests racing on the same file never make a duplicate row.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from aoi.catalog import db
from aoi.catalog.models import BatchStatus, Image, ImageStatus, IngestBatch, QuarantineEntry, table_of, utcnow
from aoi.store import sha256_of
from ingest.pipeline import Measured, Rejected, source_of

QUARANTINE_KEY = ["batch_id", "origin_key", "fingerprint"]


def batch_key(fmt: str, input_path: str, options: dict[str, Any]) -> str:
    blob = json.dumps({"format": fmt, "input": input_path, **options}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def open_batch(url: str, fmt: str, input_path: str, options: dict[str, Any], flow_run_id: str | None = None) -> int:
    """A new batch, or the unfinished one for the same input and options (a re-run resumes it)."""
    key = batch_key(fmt, input_path, options)
    with db.session(url) as s:
        unfinished = s.exec(
            select(IngestBatch)
            .where(IngestBatch.key == key, IngestBatch.status != BatchStatus.succeeded)
            .order_by(col(IngestBatch.id).desc())
        ).first()
        batch = unfinished or IngestBatch(
            key=key,
            format=fmt,
            input_path=input_path,
            source=options.get("source"),
            machine_id=options.get("machine_id"),
            part_no=options.get("part_no"),
            reference=bool(options.get("reference")),
            options=options,
        )
        batch.status, batch.error, batch.finished_at = BatchStatus.running, None, None
        batch.flow_run_id = flow_run_id
        s.add(batch)
        s.commit()
        return db.saved_id(batch)


def get_batch(url: str, batch_id: int) -> IngestBatch | None:
    with db.session(url) as s:
        return s.get(IngestBatch, batch_id)


def known_labels(url: str, digests: list[str]) -> dict[str, str | None]:
    """Digest -> label of the given digests that are already catalogued."""
    if not digests:
        return {}
    with db.session(url) as s:
        return dict(s.exec(select(Image.sha256, Image.label).where(col(Image.sha256).in_(digests))).all())


def _insert_ignore(s: Session, model, rows: list[dict], conflict: list[str], key: str) -> set:
    """Insert ``rows`` in one statement, skipping conflicts; returns the ``key`` values that went in.

    One compiled statement for the whole chunk (SQLAlchemy's insertmanyvalues): compiling an INSERT per row
    cost more than everything else in the ingest path.
    """
    if not rows:
        return set()
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = table_of(model)
    statement = insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c[key])
    return set(s.connection().execute(statement, rows).scalars().all())


def image_row(item: Measured, batch: IngestBatch, layout_source: str | None) -> dict:
    c = item.candidate
    label = None if batch.reference else c.label  # reference samples calibrate; they never train
    row = {
        "sha256": item.sha256,
        "file_name": c.file_name,
        "origin": c.origin,
        "source": source_of(item, batch.source, layout_source),
        "label": label,
        "status": ImageStatus.labeled if label else ImageStatus.unlabeled,
        "captured_at": c.captured_at,
        "ingested_at": utcnow(),
        "machine_id": c.machine_id or batch.machine_id,
        "part_no": c.part_no or batch.part_no,
        "upstream_code": c.upstream_code,
        "batch_id": batch.id,
        "group_key": c.group_key,
        "parent_file": c.parent_file,
        "parent_sha256": c.parent_sha256,
        "bbox": c.bbox,
        **item.metrics.as_dict(),
    }
    return row


def record_chunk(
    url: str, batch_id: int, measured: list[Measured], rejected: list[Rejected], layout_source: str | None
) -> dict:
    """Write one chunk in one transaction; returns what this chunk added, by label."""
    with db.session(url) as s:
        batch = db.get_row(s, IngestBatch, batch_id)
        rows = [image_row(item, batch, layout_source) for item in measured]
        inserted = _insert_ignore(s, Image, rows, ["sha256"], "sha256")
        entries = [quarantine_row(batch_id, item) for item in rejected]
        _insert_ignore(s, QuarantineEntry, entries, QUARANTINE_KEY, "id")
        s.commit()
    added = Counter(item.candidate.label or "(unlabeled)" for item in measured if item.sha256 in inserted)
    return {"added": sum(added.values()), "by_label": dict(added)}


def quarantine_row(batch_id: int, item: Rejected) -> dict:
    return _entry(batch_id, item.candidate.file, item.candidate.origin, item.reason, item.data)


def _entry(batch_id: int, file: str, origin: str, reason: str, data: bytes | None) -> dict:
    return {
        "batch_id": batch_id,
        "file": file,
        "origin": origin,
        "origin_key": hashlib.sha256(origin.encode("utf-8")).hexdigest(),
        "fingerprint": sha256_of(data) if data is not None else "",
        "reason": reason,
        "byte_size": len(data) if data is not None else None,
        "kept": bool(data),
        "created_at": utcnow(),
    }


def close_batch(url: str, batch_id: int, run: dict, error: str | None = None) -> IngestBatch:
    """Finish the batch with its totals from the catalog (so a resumed batch counts every attempt)."""
    with db.session(url) as s:
        batch = db.get_row(s, IngestBatch, batch_id)
        batch.added = s.exec(select(func.count()).select_from(Image).where(Image.batch_id == batch_id)).one()
        batch.quarantined = s.exec(
            select(func.count()).select_from(QuarantineEntry).where(QuarantineEntry.batch_id == batch_id)
        ).one()
        rows = s.exec(select(Image.label, func.count()).where(Image.batch_id == batch_id).group_by(Image.label)).all()
        batch.by_label = {label or "(unlabeled)": n for label, n in rows}
        batch.discovered = run.get("discovered", 0)
        batch.duplicates = run.get("duplicates", 0)
        batch.status = BatchStatus.failed if error else BatchStatus.succeeded
        batch.error = error
        batch.finished_at = utcnow()
        s.add(batch)
        s.commit()
        return batch


def label_totals(url: str, batch_id: int) -> dict[str, int]:
    """Catalogued images (not excluded) of every label this batch holds, in the batch's source(s)."""
    with db.session(url) as s:
        pairs = s.exec(
            select(Image.source, Image.label)
            .where(Image.batch_id == batch_id, col(Image.label).is_not(None))
            .distinct()
        ).all()
        totals: dict[str, int] = {}
        for source, label in pairs:
            if label is None:  # excluded by the query; narrows the type
                continue
            n = s.exec(
                select(func.count())
                .select_from(Image)
                .where(Image.source == source, Image.label == label, Image.status != ImageStatus.excluded)
            ).one()
            totals[label] = totals.get(label, 0) + n
        return totals


def refuse_input(url: str, batch_id: int, file: str, origin: str, reason: str) -> None:
    """A whole input refused (zip bomb, unreadable manifest): one quarantine entry, the batch failed."""
    with db.session(url) as s:
        _insert_ignore(s, QuarantineEntry, [_entry(batch_id, file, origin, reason, None)], QUARANTINE_KEY, "id")
        s.commit()
