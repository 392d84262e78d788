"""The gallery's query: filters from the page's query parameters, keyset paging, counts per label.

Paging is by keyset, never OFFSET: a page is the next ``size`` rows by id (newest first) below ``after`` (or
above ``before``, going back), so the cost of a page does not grow with how deep it is. Every single-column
index of ``image`` (source, label, status, machine, part, batch) serves ``col = ? AND id < ? ORDER BY id DESC``
directly on SQLite (its indexes end with the rowid) and the primary key does on PostgreSQL.

Quarantined files are no images of the catalog: they are listed from ``quarantine`` with their reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import Session, and_, col, exists, select

from aoi.catalog.models import EvaluationImage, Image, ImageSource, ImageStatus, IngestBatch, QuarantineEntry

QUARANTINED = "quarantined"
STATUSES = (*(s.value for s in ImageStatus), QUARANTINED)
# The words people use for a status, and the ones the catalog stores.
STATUS_ALIASES = {"labelled": ImageStatus.labeled.value, "unlabelled": ImageStatus.unlabeled.value}
MAX_TEXT = 128


class FilterError(ValueError):
    """A filter value the gallery cannot use; the message names the parameter (the page answers 400)."""


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    label: str | None = None
    status: str | None = None
    machine: str | None = None
    part: str | None = None
    batch: int | None = None
    since: datetime | None = None  # captured (else ingested) at or after
    until: datetime | None = None  # ... before
    min_size: int | None = None  # neither side shorter than this (pixels)
    max_size: int | None = None  # neither side longer than this
    name: str | None = None  # file name contains (case-insensitive)
    true: str | None = None  # an evaluation's true label (with predicted: one confusion cell)
    predicted: str | None = None  # an evaluation's predicted label (top-1, before the Unknown filter)
    evaluation: int | None = None  # narrows true/predicted to one evaluation

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (unset ones left out), with ``changes`` applied."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = changes.get(f.name, getattr(self, f.name))
            if value is None or value == "":
                continue
            out[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out

    def query(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))


def _text(params: Mapping[str, str], key: str) -> str | None:
    value = params.get(key)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise FilterError(f"{key} is longer than {MAX_TEXT} characters")
    return value


def _int(params: Mapping[str, str], key: str, minimum: int = 0) -> int | None:
    text = _text(params, key)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise FilterError(f"{key} must be a whole number, not {text!r}") from None
    if value < minimum or value > 2**62:
        raise FilterError(f"{key} must be at least {minimum}, not {value}")
    return value


def _time(params: Mapping[str, str], key: str) -> datetime | None:
    text = _text(params, key)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{key} must be a date or time (ISO 8601, e.g. 2026-11-22), not {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_filters(params: Mapping[str, str]) -> Filters:
    """Filters from query parameters; an invalid value is a FilterError naming it."""
    source = _text(params, "source")
    if source is not None and source not in {s.value for s in ImageSource}:
        raise FilterError(f"source must be one of {', '.join(s.value for s in ImageSource)}, not {source!r}")
    status = _text(params, "status")
    if status is not None:
        status = STATUS_ALIASES.get(status.lower(), status.lower())
        if status not in STATUSES:
            raise FilterError(f"status must be one of {', '.join(STATUSES)}, not {params.get('status')!r}")
    f = Filters(
        source=source,
        label=_text(params, "label"),
        status=status,
        machine=_text(params, "machine"),
        part=_text(params, "part"),
        batch=_int(params, "batch", 1),
        since=_time(params, "since"),
        until=_time(params, "until"),
        min_size=_int(params, "min_size", 1),
        max_size=_int(params, "max_size", 1),
        name=_text(params, "name"),
        true=_text(params, "true"),
        predicted=_text(params, "predicted"),
        evaluation=_int(params, "evaluation", 1),
    )
    if f.since is not None and f.until is not None and f.since >= f.until:
        raise FilterError(f"since ({f.since:%Y-%m-%d %H:%M}) must be before until ({f.until:%Y-%m-%d %H:%M})")
    if f.min_size is not None and f.max_size is not None and f.min_size > f.max_size:
        raise FilterError(f"min_size ({f.min_size}) must not exceed max_size ({f.max_size})")
    return f


def parse_page(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    """(after, before): the keyset of the page asked for (at most one of them)."""
    after, before = _int(params, "after", 1), _int(params, "before", 1)
    if after is not None and before is not None:
        raise FilterError("give after or before, not both")
    return after, before


def _image_conditions(f: Filters, with_label: bool = True) -> list[Any]:
    conditions: list[Any] = []
    equal = {
        Image.source: f.source,
        Image.status: f.status,
        Image.machine_id: f.machine,
        Image.part_no: f.part,
        Image.batch_id: f.batch,
    }
    if with_label:
        equal[Image.label] = f.label
    conditions += [column == value for column, value in equal.items() if value is not None]
    when = func.coalesce(Image.captured_at, Image.ingested_at)
    if f.since is not None:
        conditions.append(when >= f.since)
    if f.until is not None:
        conditions.append(when < f.until)
    if f.min_size is not None:
        conditions += [col(Image.width) >= f.min_size, col(Image.height) >= f.min_size]
    if f.max_size is not None:
        conditions += [col(Image.width) <= f.max_size, col(Image.height) <= f.max_size]
    if f.name is not None:
        # lower() on both sides: LIKE ignores case on SQLite, not on PostgreSQL; % and _ are literal here.
        conditions.append(func.lower(Image.file_name).contains(f.name.lower(), autoescape=True))
    if f.true is not None or f.predicted is not None or f.evaluation is not None:
        answer = [col(EvaluationImage.image_id) == Image.id]
        if f.true is not None:
            answer.append(col(EvaluationImage.true_label) == f.true)
        if f.predicted is not None:
            answer.append(col(EvaluationImage.predicted) == f.predicted)
        if f.evaluation is not None:
            answer.append(col(EvaluationImage.evaluation_id) == f.evaluation)
        conditions.append(exists().where(and_(*answer)))
    return conditions


@dataclass
class Page:
    rows: list[dict]
    next_after: int | None  # the keyset of the next page, None on the last
    prev_before: int | None  # the keyset of the page before, None on the first


def _keyset(query, id_column, after: int | None, before: int | None, size: int):
    if before is not None:
        return query.where(id_column > before).order_by(id_column.asc()).limit(size + 1)
    if after is not None:
        query = query.where(id_column < after)
    return query.order_by(id_column.desc()).limit(size + 1)


def _page(rows: list[dict], after: int | None, before: int | None, size: int) -> Page:
    more = len(rows) > size
    rows = rows[:size]
    if before is not None:
        rows.reverse()  # fetched upwards from ``before``: show newest first like every page
        return Page(rows, next_after=rows[-1]["id"] if rows else before, prev_before=rows[0]["id"] if more else None)
    return Page(
        rows, next_after=rows[-1]["id"] if more else None, prev_before=rows[0]["id"] if after and rows else None
    )


IMAGE_COLUMNS = tuple(
    col(c)
    for c in (
        Image.id,
        Image.sha256,
        Image.file_name,
        Image.source,
        Image.label,
        Image.status,
        Image.status_reason,
        Image.machine_id,
        Image.part_no,
        Image.batch_id,
        Image.width,
        Image.height,
        Image.captured_at,
        Image.ingested_at,
    )
)


def images_page(s: Session, f: Filters, after: int | None, before: int | None, size: int) -> Page:
    if f.status == QUARANTINED:
        return quarantine_page(s, f, after, before, size)
    query = select_columns(*IMAGE_COLUMNS).where(*_image_conditions(f))
    query = _keyset(query, col(Image.id), after, before, size)
    rows = [{**row._asdict(), "kind": "image"} for row in s.connection().execute(query).all()]
    return _page(rows, after, before, size)


def _quarantine_conditions(f: Filters) -> list[Any] | None:
    """Conditions on quarantine entries, or None when a filter excludes them all (they have no label, size,
    evaluation answer, and their status is quarantined)."""
    if f.label or f.min_size or f.max_size or f.true or f.predicted or f.evaluation:
        return None
    if f.status not in (None, QUARANTINED):
        return None
    conditions: list[Any] = []
    if f.batch is not None:
        conditions.append(col(QuarantineEntry.batch_id) == f.batch)
    if f.source is not None:
        conditions.append(col(IngestBatch.source) == f.source)
    if f.machine is not None:
        conditions.append(col(IngestBatch.machine_id) == f.machine)
    if f.part is not None:
        conditions.append(col(IngestBatch.part_no) == f.part)
    if f.since is not None:
        conditions.append(col(QuarantineEntry.created_at) >= f.since)
    if f.until is not None:
        conditions.append(col(QuarantineEntry.created_at) < f.until)
    if f.name is not None:
        conditions.append(func.lower(QuarantineEntry.file).contains(f.name.lower(), autoescape=True))
    return conditions


def quarantine_page(s: Session, f: Filters, after: int | None, before: int | None, size: int) -> Page:
    conditions = _quarantine_conditions(f)
    if conditions is None:
        return Page([], None, None)
    query = (
        select_columns(
            col(QuarantineEntry.id),
            col(QuarantineEntry.file),
            col(QuarantineEntry.reason),
            col(QuarantineEntry.batch_id),
            col(QuarantineEntry.byte_size),
            col(QuarantineEntry.created_at),
            col(IngestBatch.source),
            col(IngestBatch.machine_id),
            col(IngestBatch.part_no),
        )
        .join(IngestBatch, col(IngestBatch.id) == QuarantineEntry.batch_id)
        .where(*conditions)
    )
    query = _keyset(query, col(QuarantineEntry.id), after, before, size)
    rows = []
    for qid, file, reason, batch_id, byte_size, created_at, source, machine, part in s.connection().execute(query):
        rows.append(
            {
                "kind": "quarantine",
                "id": qid,
                "file_name": file,
                "status": QUARANTINED,
                "status_reason": reason,
                "batch_id": batch_id,
                "byte_size": byte_size,
                "ingested_at": created_at,
                "source": source,
                "machine_id": machine,
                "part_no": part,
                "label": None,
            }
        )
    return _page(rows, after, before, size)


def label_counts(s: Session, f: Filters) -> list[tuple[str | None, int]]:
    """Images per label under every filter but the label itself (so each count links to a narrower view)."""
    if f.status == QUARANTINED:
        return []
    query = (
        select(Image.label, func.count())
        .where(*_image_conditions(f, with_label=False))
        .group_by(col(Image.label))
        .order_by(col(Image.label))
    )
    return [(label, int(n)) for label, n in s.exec(query).all()]


def quarantine_count(s: Session, f: Filters) -> int:
    conditions = _quarantine_conditions(replace(f, status=QUARANTINED))
    if conditions is None:
        return 0
    query = (
        select(func.count())
        .select_from(QuarantineEntry)
        .join(IngestBatch, col(IngestBatch.id) == QuarantineEntry.batch_id)
        .where(*conditions)
    )
    return int(s.exec(query).one())
