"""Validation's records and helpers beside its flow steps: the spec registry (shipped and registered specs), the
scope of a run, run summaries and their report, restoring excluded images, and deriving a spec from a scope.

Nothing is deleted: a failing image is marked ``excluded`` with the failed checks as its reason, an
``exclusion`` row records which run excluded it, and ``restore`` puts it back, recording who and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
from sqlmodel import Session, col, select

from aoi.catalog import db
from aoi.catalog.models import (
    DatasetMember,
    DatasetVersion,
    Exclusion,
    Image,
    ImageStatus,
    SpecRecord,
    ValidationRun,
    utcnow,
)
from aoi.image_metrics import QUALITY_FIELDS, TONE_FIELDS
from aoi.settings import Settings
from validation.specs import Spec, SpecError, parse_spec

METRIC_COLUMNS = (
    "id",
    "sha256",
    "source",
    "machine_id",
    "part_no",
    "label",
    "status",
    "format",
    "jpeg_quality",
    "bytes_per_pixel",
    "compressed",
    *TONE_FIELDS,
    *QUALITY_FIELDS,
)


@dataclass(frozen=True)
class Scope:
    """Which images a validation (or a derivation) looks at."""

    batch_id: int | None = None
    dataset: str | None = None
    source: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``batch:3`` or ``3``; ``dataset:NAME`` or ``NAME``; ``source:color``."""
        kind, _, value = text.partition(":")
        if not value:
            kind, value = ("batch", text) if text.isdigit() else ("dataset", text)
        if kind == "batch" and value.isdigit():
            return cls(batch_id=int(value))
        if kind == "dataset":
            return cls(dataset=value)
        if kind == "source" and value in ("gray", "color"):
            return cls(source=value)
        raise SpecError(f"unknown scope {text!r}: use batch:ID, dataset:NAME or source:gray|color")

    def __str__(self) -> str:
        if self.batch_id is not None:
            return f"batch:{self.batch_id}"
        return f"dataset:{self.dataset}" if self.dataset else f"source:{self.source}"


def shipped_spec(name: str) -> Path | None:
    path = Path(str(resources.files("validation").joinpath("specs", f"{name}.yaml")))
    return path if path.is_file() else None


def register_spec(settings: Settings, spec: Spec) -> int:
    """Keep ``spec`` in the catalog; the same name and version with other limits is refused."""
    with db.session(settings.catalog_url) as s:
        existing = s.exec(
            select(SpecRecord).where(SpecRecord.name == spec.name, SpecRecord.version == spec.version)
        ).first()
        if existing is not None:
            if parse_spec(existing.yaml) != spec:
                raise SpecError(
                    f"spec {spec.key} already exists with other limits; give the new one version {spec.version + 1}"
                )
            return _id(existing.id)
        record = SpecRecord(name=spec.name, version=spec.version, yaml=spec.to_yaml(), source=spec.source)
        s.add(record)
        s.commit()
        return _id(record.id)


def _id(value: int | None) -> int:
    if value is None:  # a row read back or just committed always has its key
        raise RuntimeError("a stored spec has no id")
    return value


def list_specs(settings: Settings) -> list[dict]:
    with db.session(settings.catalog_url) as s:
        rows = s.exec(select(SpecRecord).order_by(col(SpecRecord.name), col(SpecRecord.version))).all()
    return [
        {
            "name": r.name,
            "version": r.version,
            "key": f"{r.name}@{r.version}",
            "source": r.source,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def applicable(spec: Spec, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows a spec judges: a colour spec never judges gray images, and the reverse."""
    return frame if spec.applies_to == "any" else frame[frame["source"] == spec.applies_to]


def run_summary(run: ValidationRun) -> dict:
    return {
        "run_id": run.id,
        "scope": run.scope,
        "evaluated": run.evaluated,
        "passed": run.passed,
        "excluded": run.excluded,
        "failed_by_check": run.failures,
        "set_failures": run.set_failures,
        "report": run.report_path,
        "pictures": run.pictures,
    }


def close_exclusions(
    s: Session,
    *,
    run_id: int | None = None,
    image_ids: list[int] | None = None,
    by: str = "unknown",
    note: str | None = None,
) -> list[Exclusion]:
    """Mark the open exclusion rows (of a run, or of the given images) restored by ``by`` with ``note``, in the
    caller's transaction; returns them. ``restore`` here and the workbench's restore both close them this way."""
    query = select(Exclusion).where(col(Exclusion.restored_at).is_(None))
    if run_id is not None:
        query = query.where(Exclusion.run_id == run_id)
    if image_ids:
        query = query.where(col(Exclusion.image_id).in_(image_ids))
    rows = list(s.exec(query).all())
    for row in rows:
        row.restored_at, row.restored_by, row.restore_note = utcnow(), by, note
        s.add(row)
    return rows


def restore(
    settings: Settings,
    *,
    run_id: int | None = None,
    image_ids: list[int] | None = None,
    by: str = "unknown",
    note: str | None = None,
) -> int:
    """Put excluded images back (all of a run's, or the given ones); returns how many were restored."""
    with db.session(settings.catalog_url) as s:
        restored = set()
        for row in close_exclusions(s, run_id=run_id, image_ids=image_ids, by=by, note=note):
            image = s.get(Image, row.image_id)
            if image is not None and image.status == ImageStatus.excluded:
                image.status = ImageStatus.labeled if image.label else ImageStatus.unlabeled
                image.status_reason = f"restored by {by}" + (f": {note}" if note else "")
                s.add(image)
                restored.add(image.id)
        s.commit()
    return len(restored)


def report_markdown(spec: Spec, summary: dict) -> str:
    """The run as a Markdown table, for the Prefect UI's artifact tab."""
    lines = [
        f"# Validation against {spec.key}",
        "",
        f"Scope `{summary['scope']}`: {summary['evaluated']} evaluated, "
        f"{summary['passed']} passed, {summary['excluded']} excluded.",
        "",
        "| failed check | images |",
        "|---|---|",
    ]
    lines += [f"| {check} | {n} |" for check, n in summary["failed_by_check"].items()] or ["| (none) | 0 |"]
    for failure in summary["set_failures"]:
        lines.append(f"\n**Set failure ({failure['group']}):** {failure['check']}: {failure['counts']}")
    lines.append(f"\nData Docs: `{summary['report']}`")
    lines += [f"\nTone picture: `{p}`" for p in summary["pictures"]]
    return "\n".join(lines)


def derive_spec(
    settings: Settings,
    name: str,
    scope: Scope,
    k: float,
    per_machine: bool,
    per_part: bool = False,
    per_class: bool = False,
) -> tuple[Spec, Path]:
    """Derive limits from the scope's images that are not excluded, register the spec as the next version
    of ``name`` and write its YAML under AOI_HOME/specs."""
    from validation.specs import derive

    frame = metrics_frame(settings, scope)
    frame = frame[frame["status"] != ImageStatus.excluded]
    sources = sorted(frame["source"].dropna().unique())
    with db.session(settings.catalog_url) as s:
        latest = s.exec(
            select(SpecRecord.version).where(SpecRecord.name == name).order_by(col(SpecRecord.version).desc())
        ).first()
    scopes = [
        w
        for w, on in (
            ("per class", per_class),
            ("per machine", per_machine and not per_part),
            ("per machine × part", per_part),
        )
        if on
    ]
    spec = derive(
        name,
        frame,
        k=k,
        per_machine=per_machine,
        per_part=per_part,
        per_class=per_class,
        version=(latest or 0) + 1,
        applies_to=sources[0] if len(sources) == 1 else "any",
        source=f"derived from {scope}: mean ± {k:g}σ of {len(frame)} images" + "".join(f", {w}" for w in scopes),
    )
    register_spec(settings, spec)
    path = settings.home / "specs" / f"{spec.name}@{spec.version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_yaml())
    return spec, path


def metrics_frame(settings: Settings, scope: Scope) -> pd.DataFrame:
    """The per-image metrics table of the scope's images, one row per image (column ``id``)."""
    columns = [getattr(Image, c) for c in METRIC_COLUMNS]
    query = select(*columns)
    if scope.batch_id is not None:
        query = query.where(Image.batch_id == scope.batch_id)
    elif scope.dataset is not None:
        query = (
            query.join(DatasetMember, DatasetMember.image_id == Image.id)
            .join(DatasetVersion, DatasetVersion.id == DatasetMember.dataset_id)
            .where(DatasetVersion.name == scope.dataset)
        )
    else:
        query = query.where(Image.source == scope.source)
    query = query.where(Image.status != ImageStatus.deleted)  # a person deleted it: out of every judgement
    with db.session(settings.catalog_url) as s:
        rows = s.exec(query.order_by(col(Image.id))).all()
    frame = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    for column in QUALITY_FIELDS:  # NULL (not measured) as NaN, so that a check skips it rather than fails it
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame
