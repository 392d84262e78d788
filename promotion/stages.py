"""Stages of model versions and the only ways they change (docs/domain.md#a-person-decides: a person decides).

candidate --(gate passed, approved by a person)--> production; the previous production --> archived
candidate --(rejected, or no decision in time)--> rejected
production --(rollback)--> rolled_back; the last archived production --> production again

Every change is a ``stage_change`` row with time, who and why. ``decide`` re-checks the stored gate verdict,
so no caller can make a model production without a passed gate and an approval row waiting for it.

One production model per kind: the catalog's partial unique index enforces it, and every change of a kind's
production takes that kind's lock first (PostgreSQL: an advisory lock; SQLite: the write lock of BEGIN IMMEDIATE),
so of two approvals at once the second sees the first's result: its gate compared the candidate with a production
model that is no longer production, and it is refused with that reason (its approval becomes ``superseded``).
"""

from __future__ import annotations

import os
import pwd
import zlib

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from aoi.catalog import db
from aoi.catalog.models import Approval, DatasetVersion, GateVerdict, ModelVersion, StageChange, utcnow
from aoi.settings import Settings

TIMEOUT_REVIEWER = "(no decision in time)"


class PromotionError(ValueError):
    """A stage change that is not allowed; the message says why."""


def os_user() -> str:
    """The operating-system account of this process (its effective uid), as the OS authenticated it."""

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return f"uid{os.geteuid()}"


def claimed_by(name: str | None) -> str:
    """Who, as a command run from a terminal records it: the name given (default: the OS account) and the account
    the command runs as, e.g. ``alice (os:jdoe)``, or ``os:jdoe`` alone."""
    user = os_user()
    return f"os:{user}" if name in (None, user) else f"{name} (os:{user})"


def production(settings: Settings, kind: str) -> ModelVersion | None:
    with db.session(settings.catalog_url) as s:
        return s.exec(select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.stage == "production")).first()


def blind_sets(settings: Settings, kind: str) -> list[str]:
    """Every registered blind set of ``kind`` (gray or color), oldest first."""
    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(DatasetVersion.name)
            .where(DatasetVersion.role == "blind", DatasetVersion.source == kind)
            .order_by(col(DatasetVersion.id))
        ).all()
    return list(rows)


def record_verdict(
    settings: Settings,
    version: str,
    kind: str,
    rules: list[dict],
    blind: list[str],
    production_version: str | None,
    flow_run_id: str | None,
    warnings: list[dict] | None = None,
) -> dict:
    """Store the verdict; ``passed`` is the rules' alone: warnings are recorded beside them and never fail it."""
    from promotion.gate import passed

    with db.session(settings.catalog_url) as s:
        row = GateVerdict(
            model_version=version,
            kind=kind,
            production_version=production_version,
            passed=passed(rules),
            rules=rules,
            blind_sets=blind,
            warnings=warnings or [],
            flow_run_id=flow_run_id,
        )
        s.add(row)
        s.commit()
        s.refresh(row)
        return _verdict(row)


def _verdict(row: GateVerdict) -> dict:
    return {
        "verdict_id": row.id,
        "model_version": row.model_version,
        "kind": row.kind,
        "passed": row.passed,
        "production_version": row.production_version,
        "rules": row.rules,
        "warnings": row.warnings,
        "blind_sets": row.blind_sets,
        "flow_run_id": row.flow_run_id,
        "created_at": row.created_at.isoformat(),
    }


def open_approval(settings: Settings, verdict_id: int, flow_run_id: str | None) -> int:
    with db.session(settings.catalog_url) as s:
        verdict = s.get(GateVerdict, verdict_id)
        if verdict is None or not verdict.passed:
            raise PromotionError(f"gate verdict {verdict_id} did not pass: no approval can be asked for")
        row = Approval(model_version=verdict.model_version, verdict_id=verdict_id, flow_run_id=flow_run_id)
        s.add(row)
        s.commit()
        return db.saved_id(row)


def waiting_approval(settings: Settings, flow_run_id: str | None = None, version: str | None = None) -> Approval | None:
    """The approval still waiting on a promote run (by its flow run id) or for a model version."""
    query = select(Approval).where(Approval.status == "waiting")
    if flow_run_id is not None:
        query = query.where(Approval.flow_run_id == flow_run_id)
    if version is not None:
        query = query.where(Approval.model_version == version)
    with db.session(settings.catalog_url) as s:
        return s.exec(query).first()


def approval(settings: Settings, approval_id: int) -> dict:
    with db.session(settings.catalog_url) as s:
        row = db.get_row(s, Approval, approval_id)
        stage = s.exec(select(ModelVersion.stage).where(ModelVersion.version == row.model_version)).first()
    return {
        "approval_id": row.id,
        "model_version": row.model_version,
        "status": row.status,
        "reviewer": row.reviewer,
        "comment": row.comment,
        "flow_run_id": row.flow_run_id,
        "stage": stage,
        "requested_at": row.requested_at.isoformat(),
        "decided_at": row.decided_at and row.decided_at.isoformat(),
    }


def _change(s: Session, model: ModelVersion, to: str, by: str, reason: str, flow_run_id: str | None) -> None:
    s.add(
        StageChange(
            model_version=model.version,
            kind=model.kind,
            from_stage=model.stage,
            to_stage=to,
            by=by,
            reason=reason,
            flow_run_id=flow_run_id,
        )
    )
    model.stage, model.stage_changed_at, model.stage_changed_by, model.stage_reason = to, utcnow(), by, reason
    s.add(model)


def _lock_production(s: Session, kind: str) -> None:
    """Serialise every change of ``kind``'s production model until the transaction ends."""
    if s.get_bind().dialect.name == "postgresql":
        s.connection().execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(f"aoi production {kind}".encode())}
        )
    # SQLite: the session's first statement began with BEGIN IMMEDIATE, the database-wide write lock.


def _current_production(s: Session, kind: str) -> ModelVersion | None:
    return s.exec(select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.stage == "production")).first()


def _commit(s: Session, kind: str) -> None:
    try:
        s.commit()
    except IntegrityError:  # the index: a writer outside this module made a production model meanwhile
        s.rollback()
        raise PromotionError(
            f"another change made a {kind} model production at the same time; "
            f"nothing was changed (see `aoi stages --kind {kind}`)"
        ) from None


def decide(settings: Settings, approval_id: int, approve: bool, reviewer: str, comment: str = "") -> dict:
    """Apply a person's decision (or the timeout's) to the candidate of a waiting approval.

    An approval whose gate compared the candidate with another production model than the current one (another
    approval won meanwhile) is refused: the approval becomes ``superseded`` and PromotionError says why.
    """
    if not reviewer.strip():
        raise PromotionError("a decision needs the reviewer's name")
    superseded = None
    with db.session(settings.catalog_url) as s:
        row = s.get(Approval, approval_id, with_for_update=True)  # two decisions at once: one wins
        if row is None or row.status != "waiting":
            raise PromotionError(f"approval {approval_id} is not waiting for a decision")
        verdict = db.get_row(s, GateVerdict, row.verdict_id)
        model = s.exec(select(ModelVersion).where(ModelVersion.version == row.model_version)).one()
        if approve and not verdict.passed:  # defence in depth: open_approval already refuses this
            raise PromotionError(f"{model.version} failed its gate: it cannot be made production")
        if model.stage != "candidate":
            raise PromotionError(f"{model.version} is {model.stage}, not a candidate")
        timed_out = reviewer == TIMEOUT_REVIEWER
        reason = comment or ("approved" if approve else "rejected")
        status = "approved" if approve else "timed_out" if timed_out else "rejected"
        if approve:
            _lock_production(s, model.kind)
            current = _current_production(s, model.kind)
            if (current.version if current else None) != verdict.production_version:
                superseded = (
                    f"{model.version} was not made production: its gate compared it with "
                    f"{verdict.production_version or 'no production model'}, but {model.kind} production "
                    f"is now {current.version if current else 'none'} (another approval or a rollback came "
                    f"first); run `aoi promote {model.version}` again to gate it against that"
                )
                status, comment = "superseded", f"{comment} [{superseded}]".strip()
            else:
                if current is not None:
                    _change(s, current, "archived", reviewer, f"replaced by {model.version}: {reason}", row.flow_run_id)
                    s.flush()  # the old production row leaves the unique index before the new one enters it
                _change(s, model, "production", reviewer, reason, row.flow_run_id)
        else:
            _change(s, model, "rejected", reviewer, reason, row.flow_run_id)
        row.status = status
        row.reviewer, row.comment, row.decided_at = reviewer, comment, utcnow()
        s.add(row)
        _commit(s, model.kind)
    if superseded:
        raise PromotionError(superseded)
    return approval(settings, approval_id)


def rollback(settings: Settings, kind: str, by: str, reason: str) -> dict:
    """Production goes back to the model it replaced; the current one becomes ``rolled_back``."""
    with db.session(settings.catalog_url) as s:
        _lock_production(s, kind)
        current = _current_production(s, kind)
        if current is None:
            raise PromotionError(f"no {kind} model in production: nothing to roll back")
        # The latest production model that was archived (not rejected, not itself rolled back).
        changes = s.exec(
            select(StageChange)
            .where(StageChange.kind == kind, StageChange.from_stage == "production", StageChange.to_stage == "archived")
            .order_by(col(StageChange.id).desc())
        ).all()
        previous = None
        for change in changes:
            candidate = s.exec(select(ModelVersion).where(ModelVersion.version == change.model_version)).one()
            if candidate.stage == "archived":
                previous = candidate
                break
        if previous is None:
            raise PromotionError(f"{current.version} is the first {kind} production model: there is none to go back to")
        _change(s, current, "rolled_back", by, f"rollback: {reason}", None)
        s.flush()
        _change(s, previous, "production", by, f"rollback from {current.version}: {reason}", None)
        _commit(s, kind)
        return {
            "kind": kind,
            "production": previous.version,
            "rolled_back": current.version,
            "by": by,
            "reason": reason,
        }


def history(settings: Settings, kind: str | None = None, version: str | None = None) -> list[dict]:
    """Stage changes, oldest first: who moved which model where, when and why."""
    with db.session(settings.catalog_url) as s:
        query = select(StageChange).order_by(col(StageChange.id))
        if kind:
            query = query.where(StageChange.kind == kind)
        if version:
            query = query.where(StageChange.model_version == version)
        rows = s.exec(query).all()
    return [
        {
            "at": r.at.isoformat(),
            "model_version": r.model_version,
            "kind": r.kind,
            "from": r.from_stage,
            "to": r.to_stage,
            "by": r.by,
            "reason": r.reason,
            "flow_run_id": r.flow_run_id,
        }
        for r in rows
    ]


def verdicts(settings: Settings, version: str) -> list[dict]:
    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(GateVerdict).where(GateVerdict.model_version == version).order_by(col(GateVerdict.id))
        ).all()
    return [_verdict(r) for r in rows]
