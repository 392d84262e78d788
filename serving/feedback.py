"""Confirmed truth from the line: one ``line_feedback`` row per answer, whoever reports it (``POST /feedback``,
``aoi feedback import``, the workbench's review queue).

One report per request id: the same label again is the same row (idempotent); another label for an answer already
confirmed is a conflict and changes nothing (the first confirmation stands; correcting one is a curation decision,
not a report). A label is a fine class of the answer's kind (the shipped taxonomy, ``training/taxonomies``), by
any name the label mapping knows (``aoi/labels.py``: ``Mouse_bite`` is ``NICK``), or ``NOT_DEFECT``.
"""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from aoi.catalog.models import KeptAnswer, LineFeedback, Prediction, table_of
from aoi.labels import LabelMap, UnknownLabel
from serving.upload import text_problem
from training.taxonomy import Taxonomy, TaxonomyError

NOT_DEFECT = "NOT_DEFECT"
NO_DEFECT_CLASS = "PASS"  # the taxonomy's class for "no defect" (gray has it; the colour crops have none)
SOURCES = ("api", "import", "review")
REQUEST_ID_MAX, LABEL_MAX, BY_MAX = 32, 64, 128  # the columns' lengths
_CHUNK = 500  # ids per IN query


class Outcome(StrEnum):
    created = "created"  # a new confirmation
    same = "same"  # this answer was already confirmed with this label: nothing written
    conflict = "conflict"  # already confirmed with another label: nothing written, the first stands


class FeedbackError(ValueError):
    """A report that cannot be recorded; ``status`` is the HTTP status that says why."""

    status = 400


class UnknownAnswer(FeedbackError):
    status = 404


class BadLabel(FeedbackError):
    status = 422


@dataclass(frozen=True)
class Confirmation:
    outcome: Outcome
    request_id: str
    label: str  # the label on record (for a conflict: the first one, which stands)
    by: str
    source: str
    at: datetime
    kind: str

    def as_dict(self) -> dict:
        return {
            "outcome": str(self.outcome),
            "request_id": self.request_id,
            "label": self.label,
            "by": self.by,
            "source": self.source,
            "at": self.at.isoformat(),
            "kind": self.kind,
        }


@lru_cache(maxsize=8)
def fine_classes(kind: str) -> frozenset[str]:
    try:
        return frozenset(Taxonomy.load(kind).fine)
    except TaxonomyError:
        return frozenset()


def resolve_label(raw: str, kind: str, labels: LabelMap) -> str:
    """The project label ``raw`` names for an answer of ``kind``; ``BadLabel`` when it is none of that kind's."""
    allowed = fine_classes(kind)
    if raw.strip().replace("-", "_").replace(" ", "_").upper() == NOT_DEFECT:
        # Where the kind has a class for "no defect" (gray: PASS) that is the truth, as the review queue records it.
        return NO_DEFECT_CLASS if NO_DEFECT_CLASS in allowed else NOT_DEFECT
    try:
        label = labels.resolve(raw)
    except UnknownLabel:
        label = None
    if label not in allowed:
        raise BadLabel(
            f"label {raw[:LABEL_MAX]!r} is not a class of a {kind} answer: send one of "
            f"{', '.join(sorted(allowed))} or {NOT_DEFECT}"
        )
    return label


def check_text(name: str, value: object, limit: int) -> str:
    """``value`` as plain text of 1..``limit`` characters; ``FeedbackError`` (400) otherwise."""
    if not isinstance(value, str):
        raise FeedbackError(f"{name} must be a string")
    value = value.strip()
    if not value:
        raise FeedbackError(f"{name} is empty")
    if len(value) > limit:
        raise FeedbackError(f"{name} is longer than {limit} characters")
    problem = text_problem(name, value)
    if problem:
        raise FeedbackError(problem)
    return value


def kinds_of(session: Session, request_ids: Sequence[str]) -> dict[str, str]:
    """{request id: kind} of the answers the catalog knows (the prediction log, else the kept answers)."""
    found: dict[str, str] = {}
    ids = list(dict.fromkeys(request_ids))
    for model in (Prediction, KeptAnswer):
        table = table_of(model)
        missing = [i for i in ids if i not in found]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            query = select(table.c.request_id, table.c.kind).where(table.c.request_id.in_(chunk))
            found.update((request_id, kind) for request_id, kind in session.execute(query))
    return found


def _confirmed(session: Session, request_ids: Sequence[str]) -> dict[str, LineFeedback]:
    out: dict[str, LineFeedback] = {}
    ids = list(dict.fromkeys(request_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(select(LineFeedback).where(table_of(LineFeedback).c.request_id.in_(chunk))).scalars()
        out.update((row.request_id, row) for row in rows)
    return out


def _as_confirmation(outcome: Outcome, row: LineFeedback, kind: str) -> Confirmation:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)  # SQLite gives it back naive
    return Confirmation(outcome, row.request_id, row.label, row.by, row.source, at, kind)


def confirm(
    session: Session,
    request_id: str,
    label: str,
    by: str,
    source: str,
    *,
    kind: str | None = None,
    labels: LabelMap | None = None,
) -> Confirmation:
    """Record that answer ``request_id`` truly is ``label``, as ``by`` found it (``source``: api, import or
    review), and commit. Returns the confirmation: ``created``, ``same`` (already confirmed with this label) or
    ``conflict`` (already confirmed with another; nothing changes). ``kind``: the answer's kind when the caller
    knows it (the service, for an answer still in its prediction-log journal); otherwise the catalog's.
    Raises ``UnknownAnswer`` (no such answer), ``BadLabel`` (not a class of its kind) or ``FeedbackError``."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    request_id = check_text("request_id", request_id, REQUEST_ID_MAX)
    raw = check_text("label", label, LABEL_MAX)
    by = check_text("by", by, BY_MAX)
    if kind is None:
        kind = kinds_of(session, [request_id]).get(request_id)
        if kind is None:
            raise UnknownAnswer(f"no answer with request_id {request_id!r}")
    label = resolve_label(raw, kind, labels or LabelMap.load())
    existing = _confirmed(session, [request_id]).get(request_id)
    if existing is None:
        row = LineFeedback(request_id=request_id, label=label, by=by, source=source)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # confirmed at the same moment by another caller: theirs is on record
            session.rollback()
            existing = _confirmed(session, [request_id])[request_id]
        else:
            session.refresh(row)
            return _as_confirmation(Outcome.created, row, kind)
    return _as_confirmation(Outcome.same if existing.label == label else Outcome.conflict, existing, kind)


@dataclass
class ImportReport:
    """What a batch of reports did; line numbers are the file's (1 = first line)."""

    lines: int = 0
    imported: int = 0
    already_confirmed: int = 0
    conflicts: list[dict] = field(default_factory=list)  # {line, request_id, label, on_record}
    unknown_request_ids: list[dict] = field(default_factory=list)  # {line, request_id}
    bad_labels: list[dict] = field(default_factory=list)  # {line, request_id, label, error}
    bad_lines: list[dict] = field(default_factory=list)  # {line, error}: no request id, not plain text ...

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "imported": self.imported,
            "already_confirmed": self.already_confirmed,
            "conflicts": len(self.conflicts),
            "unknown_request_ids": len(self.unknown_request_ids),
            "bad_labels": len(self.bad_labels),
            "bad_lines": len(self.bad_lines),
            "details": {
                "conflicts": self.conflicts,
                "unknown_request_ids": self.unknown_request_ids,
                "bad_labels": self.bad_labels,
                "bad_lines": self.bad_lines,
            },
        }


def confirm_many(
    session: Session,
    reports: Iterable[tuple[int, dict]],
    source: str,
    *,
    default_by: str | None = None,
    labels: LabelMap | None = None,
) -> ImportReport:
    """Record a batch of ``(line number, {"request_id", "label", "by"?})`` in one transaction, with a few bulk
    queries whatever its size; the rules of ``confirm`` line by line (a repeated line within the batch is
    ``already confirmed`` or a conflict, like a report sent twice)."""
    items = list(reports)
    try:
        return _confirm_many(session, items, source, default_by, labels or LabelMap.load())
    except IntegrityError:  # a report of one of these answers was recorded meanwhile (POST /feedback): count again
        session.rollback()
        return _confirm_many(session, items, source, default_by, labels or LabelMap.load())


def _confirm_many(
    session: Session, reports: list[tuple[int, dict]], source: str, default_by: str | None, labels: LabelMap
) -> ImportReport:
    report = ImportReport()
    parsed: list[tuple[int, str, str, str]] = []
    for line, item in reports:
        report.lines += 1
        if "error" in item:  # the reader could not make a report of this line
            report.bad_lines.append({"line": line, "error": str(item["error"])})
            continue
        try:
            request_id = check_text("request_id", item.get("request_id"), REQUEST_ID_MAX)
            raw = check_text("label", item.get("label"), LABEL_MAX)
            by_value = item.get("by") or default_by
            if by_value is None:
                raise FeedbackError("by is missing: give a by column or --by")
            by = check_text("by", by_value, BY_MAX)
        except FeedbackError as err:
            report.bad_lines.append({"line": line, "error": str(err)})
            continue
        parsed.append((line, request_id, raw, by))
    ids = [p[1] for p in parsed]
    kinds = kinds_of(session, ids)
    on_record = {rid: row.label for rid, row in _confirmed(session, ids).items()}
    new: list[dict] = []
    now = datetime.now(UTC)
    for line, request_id, raw, by in parsed:
        kind = kinds.get(request_id)
        if kind is None:
            report.unknown_request_ids.append({"line": line, "request_id": request_id})
            continue
        try:
            label = resolve_label(raw, kind, labels)
        except BadLabel as err:
            report.bad_labels.append({"line": line, "request_id": request_id, "label": raw, "error": str(err)})
            continue
        first = on_record.get(request_id)
        if first is None:
            on_record[request_id] = label
            new.append({"request_id": request_id, "label": label, "by": by, "source": source, "at": now})
        elif first == label:
            report.already_confirmed += 1
        else:
            report.conflicts.append({"line": line, "request_id": request_id, "label": label, "on_record": first})
    table = table_of(LineFeedback)
    for start in range(0, len(new), _CHUNK):
        session.execute(table.insert(), new[start : start + _CHUNK])
    session.commit()
    report.imported = len(new)
    return report


class FeedbackFileError(ValueError):
    """A batch file that cannot be read as reports at all (missing, not a file, not UTF-8, wrong format)."""


MAX_FILE_BYTES = 256 * 2**20  # a day of a VRS station's findings is a few MB
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


def read_reports(path: Path) -> tuple[list[tuple[int, dict]], bool]:
    """(the reports of a batch file as ``(line number, {"request_id", "label", "by"?})``, whether the file names
    who reported). CSV (``request_id,label[,by]``, a header line optional) or JSON lines (``{"request_id": ...,
    "label": ..., "by": ...}``), by suffix, else by the first character. A line that is not a report becomes
    ``{"error": ...}`` for the caller to count; ``FeedbackFileError`` when the file is no batch at all."""
    try:
        info = path.stat()
    except OSError as err:
        raise FeedbackFileError(f"cannot read {path}: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO, a device: only the one file named is read
        raise FeedbackFileError(f"{path} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise FeedbackFileError(f"{path} is {info.st_size:,} bytes, over the limit of {MAX_FILE_BYTES:,}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise FeedbackFileError(f"cannot read {path}: {err.strerror or err}") from None
    if b"\0" in raw:
        raise FeedbackFileError(f"{path} is not a text file (it holds NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FeedbackFileError(f"{path} is not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise FeedbackFileError(f"{path} holds no reports")
    as_json = path.suffix.lower() in JSON_SUFFIXES or (path.suffix.lower() != ".csv" and text.lstrip().startswith("{"))
    return _json_lines(path, text) if as_json else _csv_rows(path, text)


def _json_lines(path: Path, text: str) -> tuple[list[tuple[int, dict]], bool]:
    out: list[tuple[int, dict]] = []
    named = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict):
            out.append((number, {"error": "not a JSON object"}))
            continue
        named = named or "by" in item
        out.append((number, item))
    if all("error" in item for _, item in out):
        raise FeedbackFileError(f"{path} is not JSON lines of reports: no line is a JSON object")
    return out, named


def _csv_rows(path: Path, text: str) -> tuple[list[tuple[int, dict]], bool]:
    reader = csv.reader(io.StringIO(text, newline=""))
    columns = ["request_id", "label", "by"]
    out: list[tuple[int, dict]] = []
    named = False
    first = True
    try:
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if first:
                first = False
                header = [cell.strip().lower() for cell in row]
                if "request_id" in header:
                    if "label" not in header:
                        raise FeedbackFileError(f"{path}: the CSV header has no label column")
                    columns = header
                    named = "by" in header
                    continue
                if len(row) < 2:
                    raise FeedbackFileError(f"{path} is not a CSV of request_id,label[,by]")
            if len(row) > len(columns) or len(row) < 2:
                out.append((number, {"error": f"{len(row)} columns: expected request_id,label[,by]"}))
                continue
            item = {name: cell for name, cell in zip(columns, row) if cell.strip()}
            named = named or "by" in item
            out.append((number, item))
    except csv.Error as err:
        raise FeedbackFileError(f"{path} is not a CSV of request_id,label[,by]: {err}") from None
    return out, named
