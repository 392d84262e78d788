"""The review queue: answers the service kept (``kept_answer``) waiting for a person's label, and the decisions.

A decision is one of a fine class of the answer's kind, ``NOT_DEFECT``, ``BAD_IMAGE`` or ``SKIP``; it records the
status, the true label, who (the authenticated identity) and when. A label or a "not a defect" is also the line's
confirmed truth for that answer (``line_feedback``, source ``review``), which live accuracy reads. A decided answer
is never decided again (a second person is told who decided it and how): only a waiting or skipped one changes.

What a decision becomes for training (a labelled image in an inbox batch, a quarantine entry) is made later, by the
retrain flow's ``confirmed-answers`` step (``ingest/line.py``), never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from aoi.catalog.models import KeptAnswer, KeptAnswerStatus, LineFeedback, utcnow
from aoi.labels import LabelMap, UnknownLabel
from serving.feedback import NO_DEFECT_CLASS

NOT_DEFECT = "NOT_DEFECT"
BAD_IMAGE = "BAD_IMAGE"
SKIP = "SKIP"
OPEN = (KeptAnswerStatus.waiting.value, KeptAnswerStatus.skipped.value)  # statuses a decision may still change
FEEDBACK_SOURCE = "review"
MAX_LIMIT = 1000
# The words a reviewer may type for the three decisions that are no class (case, spaces and hyphens ignored).
SPECIAL = {
    NOT_DEFECT: NOT_DEFECT,
    "NOT_A_DEFECT": NOT_DEFECT,
    "NO_DEFECT": NOT_DEFECT,
    BAD_IMAGE: BAD_IMAGE,
    SKIP: SKIP,
}


class ReviewOrder(StrEnum):
    """The queue's order (AOI_WORKBENCH__REVIEW_ORDER)."""

    lowest_confidence = "lowest_confidence"  # the answers the model was least sure of first
    class_quota = "class_quota"  # round-robin over the answered classes (top-1): a rare class is not buried
    oldest = "oldest"  # first kept, first reviewed


class ReviewError(ValueError):
    """A review request refused before anything changed; the message says why."""


class AlreadyDecided(ReviewError):
    """The answer was decided already (by someone, maybe another person): nothing was overwritten."""


@dataclass(frozen=True)
class Choice:
    """One button of the page (and one key of the keyboard)."""

    key: str
    value: str  # what the form posts: a fine class, NOT_DEFECT, BAD_IMAGE or SKIP
    title: str


def fine_classes(kind: str) -> tuple[str, ...]:
    """The fine classes a reviewer may give an answer of ``kind``: its model's taxonomy."""
    from training.taxonomy import Taxonomy, TaxonomyError

    try:
        return Taxonomy.load(kind).fine
    except TaxonomyError:
        raise ReviewError(f"no taxonomy for kind {kind!r}: answers of it cannot be labelled") from None


def choices(kind: str) -> list[Choice]:
    """The page's buttons: a digit per fine class (1..9, then 0), then not a defect (n), bad image (b), skip (s)."""
    digits = "1234567890"
    out = [Choice(digits[i], label, label) for i, label in enumerate(fine_classes(kind)[: len(digits)])]
    out += [
        Choice("n", NOT_DEFECT, "not a defect"),
        Choice("b", BAD_IMAGE, "bad image"),
        Choice("s", SKIP, "skip"),
    ]
    return out


def queue(
    s: Session,
    kind: str | None = None,
    order: ReviewOrder | str = ReviewOrder.lowest_confidence,
    limit: int = 50,
    status: str = KeptAnswerStatus.waiting,
) -> list[KeptAnswer]:
    """The answers of ``status`` (waiting; or skipped, to come back to them), of one kind or all, in ``order``."""
    order = _order(order)
    if status not in OPEN:
        raise ReviewError(f"the queue shows waiting or skipped answers, not {status!r}")
    limit = max(1, min(int(limit), MAX_LIMIT))
    where = [KeptAnswer.status == status] + ([KeptAnswer.kind == kind] if kind else [])
    if order is ReviewOrder.class_quota:
        # Each answered class's answers ranked by confidence; then rank 1 of every class, rank 2 of every class...
        # The class is the model's top-1 (an Unknown answer still names the class it leaned to), else the answer.
        answered = func.coalesce(col(KeptAnswer.top)[(0, 0)].as_string(), col(KeptAnswer.label))
        rank = (
            func.row_number()
            .over(
                partition_by=answered,
                order_by=(col(KeptAnswer.confidence), col(KeptAnswer.kept_at), col(KeptAnswer.id)),
            )
            .label("rank")
        )
        ranked = select(col(KeptAnswer.id).label("id"), rank).where(*where).subquery()
        statement = (
            select(KeptAnswer)
            .join(ranked, ranked.c.id == col(KeptAnswer.id))
            .order_by(ranked.c.rank, col(KeptAnswer.confidence), col(KeptAnswer.kept_at), col(KeptAnswer.id))
        )
    elif order is ReviewOrder.oldest:
        statement = select(KeptAnswer).where(*where).order_by(col(KeptAnswer.kept_at), col(KeptAnswer.id))
    else:
        statement = (
            select(KeptAnswer)
            .where(*where)
            .order_by(col(KeptAnswer.confidence), col(KeptAnswer.kept_at), col(KeptAnswer.id))
        )
    return list(s.exec(statement.limit(limit)).all())


def _order(order: ReviewOrder | str) -> ReviewOrder:
    try:
        return ReviewOrder(order)
    except ValueError:
        raise ReviewError(f"order must be one of {', '.join(o.value for o in ReviewOrder)}, not {order!r}") from None


def waiting_counts(s: Session) -> dict[str, int]:
    """Kind -> answers waiting for a label."""
    rows = s.exec(
        select(KeptAnswer.kind, func.count())
        .where(KeptAnswer.status == KeptAnswerStatus.waiting)
        .group_by(col(KeptAnswer.kind))
    ).all()
    return {kind: int(n) for kind, n in sorted(rows)}


def get(s: Session, request_id: str) -> KeptAnswer:
    answer = s.exec(select(KeptAnswer).where(KeptAnswer.request_id == (request_id or "").strip())).first()
    if answer is None:
        raise ReviewError(f"no kept answer with request id {request_id!r}")
    return answer


def resolve(kind: str, label: str, labels: LabelMap | None = None) -> str:
    """A reviewer's word as a decision: NOT_DEFECT, BAD_IMAGE, SKIP, or a fine class of ``kind`` (a project label
    or a name the label map knows: ``mouse bite`` is NICK)."""
    word = (label or "").strip()
    if not word:
        raise ReviewError("say what it is: a class, NOT_DEFECT, BAD_IMAGE or SKIP")
    special = SPECIAL.get(word.upper().replace("-", "_").replace(" ", "_"))
    if special is not None:
        return special
    fine = fine_classes(kind)
    try:
        resolved = (labels or LabelMap.load()).resolve(word)
    except UnknownLabel:
        resolved = word
    if resolved not in fine:
        raise ReviewError(
            f"{word!r} is not a class of {kind} answers: choose one of {', '.join(fine)}, "
            "or NOT_DEFECT, BAD_IMAGE, SKIP"
        )
    return resolved


def decide(s: Session, request_id: str, label: str, by: str, labels: LabelMap | None = None) -> KeptAnswer:
    """Record a person's decision on one kept answer and commit; ``by`` is the authenticated identity.

    Refused (nothing changes) for an unknown request id, a label that is no class of the answer's kind, and an
    answer already labelled, not a defect or a bad image (``AlreadyDecided`` names who decided it and how)."""
    try:
        return _decide(s, request_id, label, by, labels)
    except IntegrityError:  # the line confirmed this answer (/feedback) between our check and commit: theirs stands
        s.rollback()
        return _decide(s, request_id, label, by, labels)


def _decide(s: Session, request_id: str, label: str, by: str, labels: LabelMap | None) -> KeptAnswer:
    by = (by or "").strip()
    if not by:
        raise ReviewError("who decides is required (by)")
    if len(by) > 128:
        raise ReviewError("the name of who decides is longer than 128 characters")
    answer = s.exec(
        select(KeptAnswer).where(KeptAnswer.request_id == (request_id or "").strip()).with_for_update()
    ).first()
    if answer is None:
        raise ReviewError(f"no kept answer with request id {request_id!r}")
    if answer.status not in OPEN:
        raise AlreadyDecided(already(answer))
    decision = resolve(answer.kind, label, labels)
    now = utcnow()
    if decision == SKIP:
        answer.status, answer.true_label = KeptAnswerStatus.skipped, None
    elif decision == BAD_IMAGE:
        answer.status, answer.true_label = KeptAnswerStatus.bad_image, None
    elif decision == NOT_DEFECT:
        # Where the kind's taxonomy has a class for "no defect" (gray: PASS), that class is its true label and it
        # may train; where it has none (colour), NOT_DEFECT stays a truth for live accuracy, never a training label.
        answer.status = KeptAnswerStatus.not_defect
        answer.true_label = NO_DEFECT_CLASS if NO_DEFECT_CLASS in fine_classes(answer.kind) else NOT_DEFECT
    else:
        answer.status, answer.true_label = KeptAnswerStatus.labelled, decision
    answer.decided_by, answer.decided_at = by, now
    s.add(answer)
    if answer.true_label is not None:
        record_confirmed_truth(s, answer.request_id, answer.true_label, by, at=now)
    s.commit()
    s.refresh(answer)
    return answer


def already(answer: KeptAnswer) -> str:
    what = {
        KeptAnswerStatus.labelled: f"labelled {answer.true_label}",
        KeptAnswerStatus.not_defect: "called not a defect",
        KeptAnswerStatus.bad_image: "called a bad image",
        KeptAnswerStatus.dropped: "dropped from the store before anyone reviewed it",
    }.get(KeptAnswerStatus(answer.status), answer.status)
    who = f" by {answer.decided_by}" if answer.decided_by else ""
    when = f" at {answer.decided_at:%Y-%m-%d %H:%M:%S}" if answer.decided_at else ""
    return f"request {answer.request_id} was already {what}{who}{when}: nothing changed"


def record_confirmed_truth(s: Session, request_id: str, label: str, by: str, at: datetime | None = None) -> None:
    """The line's confirmed truth for one answer, from the review queue (``line_feedback``, source ``review``), in
    the caller's transaction. One row per request id: a truth the line (VRS station, operator) already reported
    is kept as it is. The service's ``/feedback`` writes the same table; this is the queue's one writer of it."""
    existing = s.exec(select(LineFeedback).where(LineFeedback.request_id == request_id)).first()
    if existing is not None:
        return
    s.add(LineFeedback(request_id=request_id, label=label, by=by, source=FEEDBACK_SOURCE, at=at or utcnow()))


def as_dict(answer: KeptAnswer) -> dict:
    """What ``aoi review ... --json`` prints for one answer."""
    return {
        "request_id": answer.request_id,
        "kind": answer.kind,
        "reason": answer.reason,
        "model_version": answer.model_version,
        "label": answer.label,
        "confidence": answer.confidence,
        "top": [[str(t[0]), float(t[1])] for t in answer.top],
        "machine_id": answer.machine_id,
        "part_no": answer.part_no,
        "upstream_code": answer.upstream_code,
        "kept_at": answer.kept_at.isoformat() if answer.kept_at else None,
        "status": answer.status,
        "true_label": answer.true_label,
        "decided_by": answer.decided_by,
        "decided_at": answer.decided_at.isoformat() if answer.decided_at else None,
        "image_id": answer.image_id,
        "sha256": answer.sha256,
    }
