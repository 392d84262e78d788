"""What the image page shows about one image: its picture (a crop on its parent), its metrics against the spec
of its source, the dataset versions that hold it, the answers given for it, and its history."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from aoi.catalog.models import (
    DatasetMember,
    DatasetVersion,
    Evaluation,
    EvaluationImage,
    Exclusion,
    Image,
    ImageChange,
    Prediction,
    SpecRecord,
    ValidationRun,
)
from aoi.image_metrics import QUALITY_FIELDS, TONE_FIELDS
from aoi.settings import Settings
from aoi.store import ImageStore
from workbench.db import release

MAX_ANSWERS = 50  # newest answers of the service shown for one image


@dataclass
class Box:
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1


def parse_box(text: str | None) -> Box | None:
    """``x1,y1,x2,y2`` as ingest writes it, or None when absent or malformed."""
    if not text:
        return None
    try:
        x1, y1, x2, y2 = (round(float(v)) for v in text.split(","))
    except ValueError:
        return None
    return Box(x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def parent_source(settings: Settings, image: Image) -> tuple[str, Any] | None:
    """Where a crop's parent picture can be read: ("store", sha256) or ("file", Path); None when nowhere."""
    if image.parent_sha256:
        try:
            if ImageStore(settings.store_dir).has(image.parent_sha256):
                return "store", image.parent_sha256
        except ValueError:
            pass
    if image.parent_file:
        path = Path(image.parent_file)
        if path.is_file() and path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
            try:
                with path.open("rb"):
                    return "file", path
            except OSError:
                return None
    return None


def parent_size(s: Session, settings: Settings, image: Image) -> tuple[int, int] | None:
    """Width and height of a crop's parent (from the catalog when it is an image there, else its header)."""
    where = parent_source(settings, image)
    if where is None:
        return None
    if image.parent_sha256:
        row = s.exec(select(Image.width, Image.height).where(Image.sha256 == image.parent_sha256)).first()
        if row is not None:
            return int(row[0]), int(row[1])
    kind, ref = where
    path = ImageStore(settings.store_dir).path_for(ref) if kind == "store" else ref
    try:
        with PILImage.open(path) as picture:  # reads the header only
            return picture.size
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None


@dataclass
class MetricRow:
    name: str
    group: str  # tone, quality, compression
    value: Any
    limits: str | None = None
    verdict: str | None = None  # pass, fail, not measured; None: the spec does not limit it


@dataclass
class SpecView:
    key: str | None
    origin: str  # why this spec: the setting, a dataset version's cleaning, or none found
    rows: list[MetricRow] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.rows if r.verdict == "fail"]


def spec_ref_for(s: Session, settings: Settings, source: str) -> tuple[str | None, str]:
    """The spec that applies to images of ``source``: AOI_SERVING__TONE_SPECS for it, else the spec the newest
    dataset version of that source was cleaned with, else the spec of the newest validation of that source."""
    configured = settings.serving.tone_specs.get(source)
    if configured:
        return configured, "AOI_SERVING__TONE_SPECS"
    dataset = s.exec(
        select(DatasetVersion.name, DatasetVersion.spec_key)
        .where(DatasetVersion.source == source, col(DatasetVersion.spec_key).is_not(None))
        .order_by(col(DatasetVersion.id).desc())
    ).first()
    if dataset is not None:
        return dataset[1], f"dataset version {dataset[0]} was cleaned with it"
    run = s.exec(
        select(SpecRecord.name, SpecRecord.version)
        .join(ValidationRun, col(ValidationRun.spec_id) == SpecRecord.id)
        .where(ValidationRun.scope == f"source:{source}")
        .order_by(col(ValidationRun.id).desc())
    ).first()
    if run is not None:
        return f"{run[0]}@{run[1]}", f"the newest validation of source {source} used it"
    return None, f"no spec applies to {source} images yet (none configured, no cleaned dataset version)"


def _judge(value: float | None, limits) -> str:
    if value is None:
        return "not measured"
    ok = (limits.min is None or value >= limits.min) and (limits.max is None or value <= limits.max)
    return "pass" if ok else "fail"


def metrics_against_spec(s: Session, settings: Settings, image: Image) -> SpecView:
    """The image's tone, quality and compression metrics, each with the limit of the spec of its source."""
    ref, origin = spec_ref_for(s, settings, image.source)
    view = SpecView(key=None, origin=origin)
    spec = None
    if ref is not None:
        from validation.specs import SpecError
        from validation.steps import load_spec

        release(s)  # load_spec opens its own session (and may register a shipped spec)
        try:
            spec = load_spec(settings, ref)[1]
            view.key = spec.key
        except (SpecError, ValueError) as err:
            view.error = f"spec {ref}: {err}"
        if spec is not None and spec.applies_to not in ("any", image.source):
            view.error = f"spec {spec.key} applies to {spec.applies_to} images, not {image.source}"
            spec = None
    tone = spec.tone_limits_for(image.machine_id, image.part_no, image.label) if spec else {}
    for name in TONE_FIELDS:
        value = getattr(image, name)
        limits = tone.get(name)
        view.rows.append(
            MetricRow(name, "tone", value, limits.text() if limits else None, _judge(value, limits) if limits else None)
        )
    quality = spec.quality if spec else {}
    for name in QUALITY_FIELDS:
        value = getattr(image, name)
        limits = quality.get(name)
        verdict = _judge(value, limits) if limits else ("not measured" if value is None else None)
        view.rows.append(MetricRow(name, "quality", value, limits.text() if limits else None, verdict))
    compression = spec.compression if spec else None
    view.rows.append(
        MetricRow(
            "format",
            "compression",
            image.format,
            ", ".join(compression.formats) if compression and compression.formats else None,
            ("pass" if image.format in compression.formats else "fail")
            if compression and compression.formats
            else None,
        )
    )
    for name in ("jpeg_quality", "bytes_per_pixel"):
        value = getattr(image, name)
        limits = getattr(compression, name) if compression else None
        view.rows.append(
            MetricRow(
                name, "compression", value, limits.text() if limits else None, _judge(value, limits) if limits else None
            )
        )
    rule = compression.compressed if compression else "any"
    view.rows.append(
        MetricRow(
            "compressed",
            "compression",
            image.compressed,
            None if rule == "any" else rule,
            None if rule == "any" else ("pass" if image.compressed == (rule == "required") else "fail"),
        )
    )
    return view


def dataset_versions(s: Session, image: Image) -> list[dict]:
    """The dataset versions that hold this image, with its split and the label it has there (by content hash,
    the indexed column: the image row's hash is unique)."""
    query = (
        select_columns(
            col(DatasetVersion.name),
            col(DatasetVersion.role),
            col(DatasetVersion.created_at),
            col(DatasetMember.split),
            col(DatasetMember.label),
        )
        .join(DatasetVersion, col(DatasetVersion.id) == DatasetMember.dataset_id)
        .where(col(DatasetMember.sha256) == image.sha256)
        .order_by(col(DatasetVersion.id).desc())
    )
    rows = s.connection().execute(query).all()
    return [
        {"name": name, "role": role, "created_at": created, "split": split, "label": label}
        for name, role, created, split, label in rows
    ]


def answers(s: Session, image: Image, limit: int = MAX_ANSWERS) -> list[Prediction]:
    """The service's answers for this content (the prediction log keeps the SHA-256 of every image it was sent)."""
    return list(
        s.exec(
            select(Prediction).where(Prediction.sha256 == image.sha256).order_by(col(Prediction.at).desc()).limit(limit)
        ).all()
    )


def evaluation_answers(s: Session, image_id: int) -> list[dict]:
    """The image's answers in evaluations of model versions (blind tests and test splits)."""
    rows = s.exec(
        select(EvaluationImage, Evaluation)
        .join(Evaluation, col(Evaluation.id) == EvaluationImage.evaluation_id)
        .where(EvaluationImage.image_id == image_id)
        .order_by(col(Evaluation.id).desc())
    ).all()
    return [
        {
            "evaluation_id": answer.evaluation_id,
            "model_version": evaluation.model_version,
            "dataset": evaluation.dataset,
            "split": evaluation.split,
            "true_label": answer.true_label,
            "predicted": answer.predicted,
            "confidence": answer.confidence,
            "unknown": answer.confidence < evaluation.threshold,
            "top": answer.top,
        }
        for answer, evaluation in rows
    ]


def history(s: Session, image_id: int) -> list[dict]:
    """Label and status changes, newest first: people's changes (image_change) and validation's exclusions and
    restores (exclusion)."""
    events: list[dict] = []
    for change in s.exec(select(ImageChange).where(ImageChange.image_id == image_id)).all():
        events.append(
            {
                "at": change.at,
                "action": change.action,
                "by": change.by,
                "via": change.via,
                "label": (change.old_label, change.new_label),
                "status": (change.old_status, change.new_status),
                "reason": change.reason,
                "order": (change.at, 1, change.id or 0),
            }
        )
    exclusions = s.exec(
        select(Exclusion, SpecRecord.name, SpecRecord.version)
        .join(ValidationRun, col(ValidationRun.id) == Exclusion.run_id)
        .join(SpecRecord, col(SpecRecord.id) == ValidationRun.spec_id)
        .where(Exclusion.image_id == image_id)
    ).all()
    for exclusion, spec_name, spec_version in exclusions:
        reasons = "; ".join(str(r) for r in exclusion.reasons)
        events.append(
            {
                "at": exclusion.created_at,
                "action": "excluded by validation",
                "by": f"validation run {exclusion.run_id} (spec {spec_name}@{spec_version})",
                "via": "validation",
                "label": (None, None),
                "status": (None, "excluded"),
                "reason": reasons,
                "order": (exclusion.created_at, 0, exclusion.id or 0),
            }
        )
        if exclusion.restored_at is not None:
            events.append(
                {
                    "at": exclusion.restored_at,
                    "action": "restored",
                    "by": exclusion.restored_by or "",
                    "via": "validation",
                    "label": (None, None),
                    "status": ("excluded", None),
                    "reason": exclusion.restore_note or "",
                    "order": (exclusion.restored_at, 0, exclusion.id or 0),
                }
            )
    events.sort(key=lambda e: e["order"], reverse=True)
    return events
