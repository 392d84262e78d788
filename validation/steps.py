"""Validation steps as the ``validate`` flow calls them: spec -> checkpoint -> exclusions -> report. The spec
registry, scopes, summaries and restores they rely on are in ``validation.records``.
"""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, select

from aoi.catalog import db
from aoi.catalog.models import (
    Exclusion,
    Image,
    ImageStatus,
    SpecRecord,
    ValidationRun,
    utcnow,
)
from aoi.settings import Settings
from validation import records
from validation.engines import GXRunner, Verdict
from validation.pictures import tone_histograms
from validation.records import Scope, register_spec, run_summary, shipped_spec
from validation.specs import Spec, SpecError, parse_spec

# Reading a scope's metrics is a step of the flow and of deriving a spec (records.derive_spec): kept there.
metrics_frame = records.metrics_frame


def load_spec(settings: Settings, ref: str) -> tuple[int, Spec]:
    """``NAME`` (latest version) or ``NAME@V`` from the catalog; a spec shipped in validation/specs is
    registered on first use."""
    name, _, version = ref.partition("@")
    with db.session(settings.catalog_url) as s:
        query = select(SpecRecord).where(SpecRecord.name == name)
        if version:
            query = query.where(SpecRecord.version == int(version))
        record = s.exec(query.order_by(col(SpecRecord.version).desc())).first()
    if record is not None:
        return record.id, parse_spec(record.yaml, origin=f"spec {ref}")
    shipped = shipped_spec(name)
    if shipped is not None:
        spec = parse_spec(shipped.read_text(), origin=str(shipped.name))
        if not version or int(version) == spec.version:
            return register_spec(settings, spec), spec
    raise SpecError(f"no spec {ref} in the catalog (add one with `aoi spec add FILE` or `aoi spec derive`)")


def check(settings: Settings, spec: Spec, frame: pd.DataFrame) -> Verdict:
    """Run the spec's checkpoint(s) over ``frame``; Data Docs land under AOI_HOME/reports/data_docs."""
    runner = GXRunner(settings.home, settings.reports_dir / "data_docs")
    return runner.run(spec, frame)


def start_run(settings: Settings, spec_id: int, scope: Scope, flow_run_id: str | None = None) -> int:
    with db.session(settings.catalog_url) as s:
        run = ValidationRun(spec_id=spec_id, scope=str(scope), flow_run_id=flow_run_id)
        s.add(run)
        s.commit()
        return run.id


def _excluded_by_a_run(s: Session, image_id: int) -> bool:
    query = select(Exclusion.id).where(Exclusion.image_id == image_id, col(Exclusion.restored_at).is_(None))
    return s.exec(query).first() is not None


def exclude(settings: Settings, run_id: int, spec: Spec, verdict: Verdict) -> int:
    """Mark every failing image excluded, with the failed checks as its reason; returns how many."""
    with db.session(settings.catalog_url) as s:
        # An image a person excluded (excluded with no open exclusion row of a run) keeps the person's reason: a
        # later `aoi restore --run` of this run must not bring back what a person left out.
        for image_id, reasons in verdict.failed.items():
            image = s.get(Image, image_id)
            if image.status == ImageStatus.deleted or (
                image.status == ImageStatus.excluded and not _excluded_by_a_run(s, image_id)
            ):
                continue
            image.status = ImageStatus.excluded
            image.status_reason = f"spec {spec.key}: " + "; ".join(reasons)
            s.add(image)
            s.add(Exclusion(image_id=image_id, run_id=run_id, reasons=reasons))
        s.commit()
    return len(verdict.failed)


def pictures(settings: Settings, run_id: int, spec: Spec, frame: pd.DataFrame) -> list[str]:
    out = settings.reports_dir / "validation" / f"run-{run_id}"
    return [str(p) for p in tone_histograms(frame, spec, out)] if len(frame) else []


def finish_run(settings: Settings, run_id: int, verdict: Verdict, pictures: list[str]) -> dict:
    with db.session(settings.catalog_url) as s:
        run = s.get(ValidationRun, run_id)
        run.status = "succeeded"
        run.evaluated = verdict.evaluated
        run.excluded = len(verdict.failed)
        run.passed = verdict.evaluated - run.excluded
        run.failures = verdict.by_check()
        run.set_failures = verdict.set_failures
        run.report_path = verdict.report_path
        run.pictures = pictures
        run.finished_at = utcnow()
        s.add(run)
        s.commit()
        spec = s.get(SpecRecord, run.spec_id)
        return {**run_summary(run), "spec": f"{spec.name}@{spec.version}"}


class ValidationResult(BaseModel):
    """What the validate flow returns (``aoi validate --json``): one validation run's counts and where to look."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    scope: str
    evaluated: int
    passed: int
    excluded: int
    failed_by_check: dict[str, int]
    set_failures: list
    report: str | None
    pictures: list[str]
    spec: str

    def as_dict(self) -> dict:
        return self.model_dump()
