"""Catalog tables: the one source of truth for metadata.

Every table change comes with an Alembic migration under ``aoi/migrations/versions`` (a test compares the
migrated schema with these models). Times are timezone-aware and come back in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import JSON, Column, Index, Table, UniqueConstraint, inspect, text
from sqlmodel import Field, SQLModel

from aoi.image_metrics import Tone


def utcnow() -> datetime:
    return datetime.now(UTC)


class ImageSource(StrEnum):
    gray = "gray"  # AOI machine: gray scan of a suspected defect
    color = "color"  # VRS review station: colour re-shoot


class ImageStatus(StrEnum):
    unlabeled = "unlabeled"
    labeled = "labeled"
    excluded = "excluded"  # failed validation or excluded by a person; kept, with its reason, and can be restored
    deleted = "deleted"  # deleted by a person: out of every new dataset version; bytes kept until a store GC


class BatchStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ToneColumns(SQLModel, Tone):
    """Tone metrics (their fields from aoi.image_metrics.Tone: per-image channel means, 0..255) and the image
    quality metrics. Images and the prediction log both carry them; validation and monitoring read them there."""

    # Image quality (aoi.image_metrics, names as ``QUALITY_FIELDS``). NULL: not measured (a row from before revision
    # 0009); validation and monitoring treat it as unknown, never as zero.
    sharpness: float | None = Field(default=None, description="Variance of the gray luma's Laplacian, gray levels²")
    smear: float | None = Field(default=None, description="Share of the image (0..1) in blocks with soft edges")


class IngestBatch(SQLModel, table=True):
    """One ingest of one input (folder, archive, manifest). Re-running an unfinished batch resumes it."""

    __tablename__ = "ingest_batch"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=64, description="Hash of input path, format and options")
    format: str = Field(max_length=32)
    input_path: str
    source: str | None = Field(default=None, max_length=16)
    machine_id: str | None = Field(default=None, max_length=64)
    part_no: str | None = Field(default=None, max_length=64)
    # Reference samples: a machine's shots of the reference board, for colour calibration (features/calibration.py).
    # They are never labelled for training and stay out of the machine's tone statistics.
    reference: bool = Field(default=False, index=True)
    status: str = Field(default=BatchStatus.running, max_length=16, index=True)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    discovered: int = 0
    added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_label: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    flow_run_id: str | None = Field(default=None, max_length=64)
    error: str | None = None


class Image(ToneColumns, table=True):
    """One distinct image content (by SHA-256) with where it came from and its measured metrics."""

    __tablename__ = "image"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)
    file_name: str = Field(description="Original file name (for derived crops: the crop's own name)")
    origin: str = Field(description="Where it was found: path in the input, or 'archive!member'")
    source: str = Field(max_length=16, index=True)
    label: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=ImageStatus.unlabeled, max_length=16, index=True)
    status_reason: str | None = None
    width: int
    height: int
    mode: str = Field(max_length=16)
    format: str = Field(max_length=16)
    byte_size: int
    captured_at: datetime | None = Field(default=None, index=True)
    ingested_at: datetime = Field(default_factory=utcnow, index=True)
    machine_id: str | None = Field(default=None, max_length=64, index=True)
    part_no: str | None = Field(default=None, max_length=64, index=True)
    upstream_code: str | None = Field(default=None, max_length=64)
    batch_id: int = Field(foreign_key="ingest_batch.id", index=True)
    group_key: str | None = Field(default=None, index=True, description="Crops of one source image share it")
    parent_file: str | None = Field(default=None, description="Source image a derived crop was cut from")
    parent_sha256: str | None = Field(default=None, max_length=64)
    bbox: str | None = Field(default=None, max_length=64, description="x1,y1,x2,y2 of the box in the parent")
    # Tone metrics come from ToneColumns; compression metrics:
    jpeg_quality: int | None = None
    bytes_per_pixel: float
    compressed: bool


class QuarantineEntry(SQLModel, table=True):
    """A file that was not ingested, why, and (when readable) its bytes kept under AOI_HOME/quarantine."""

    __tablename__ = "quarantine"
    # One entry per bad file and batch: a resumed batch never repeats it, a later batch reports it again.
    __table_args__ = (
        UniqueConstraint("batch_id", "origin_key", "fingerprint", name="uq_quarantine_batch_origin_fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="ingest_batch.id", index=True)
    file: str = Field(description="The name as the user knows it, relative to the ingested input")
    origin: str = Field(description="Full location: path, or 'archive!member'")
    origin_key: str = Field(max_length=64, description="SHA-256 of origin: a fixed-size key for any path length")
    fingerprint: str = Field(max_length=64, description="SHA-256 of the bytes, or '' when unreadable")
    reason: str
    byte_size: int | None = None
    kept: bool = Field(default=False, description="Bytes kept in the quarantine store under the fingerprint")
    created_at: datetime = Field(default_factory=utcnow)


class SpecRecord(SQLModel, table=True):
    """A tone/compression spec as used: its YAML, kept under name and version (validation/specs.py)."""

    __tablename__ = "spec"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_spec_name_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, index=True)
    version: int
    yaml: str
    source: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class ValidationRun(SQLModel, table=True):
    """One run of a spec's checkpoint over a scope (a batch, a dataset version, a source)."""

    __tablename__ = "validation_run"

    id: int | None = Field(default=None, primary_key=True)
    spec_id: int = Field(foreign_key="spec.id", index=True)
    scope: str = Field(description="batch:ID, dataset:NAME or source:gray|color")
    status: str = Field(default="running", max_length=16)
    evaluated: int = 0
    passed: int = 0
    excluded: int = 0
    failures: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    set_failures: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    report_path: str | None = None
    pictures: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    flow_run_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class Exclusion(SQLModel, table=True):
    """Why an image was excluded, by which run; restoring it keeps the row and records who and why."""

    __tablename__ = "exclusion"

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(foreign_key="image.id", index=True)
    run_id: int = Field(foreign_key="validation_run.id", index=True)
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    restored_at: datetime | None = None
    restored_by: str | None = Field(default=None, max_length=128)
    restore_note: str | None = None


class DatasetVersion(SQLModel, table=True):
    """A frozen dataset: its manifest (dataset_member), lineage, cleaning table and split counts. Immutable."""

    __tablename__ = "dataset_version"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, unique=True)
    role: str = Field(max_length=8, index=True, description="train (train/valid/test splits) or blind")
    source: str = Field(max_length=16)
    parent: str | None = Field(default=None, max_length=128)
    spec_key: str | None = Field(default=None, max_length=160)
    seed: int = 0
    split: str | None = Field(default=None, max_length=32, description="e.g. 8:1:1")
    per_class: int | None = None
    group_by: str | None = Field(default=None, max_length=32)
    taxonomy: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cleaning: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dropped_blind: int = 0
    blind_date: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD of a blind test set")
    note: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class DatasetMember(SQLModel, table=True):
    """One image of a dataset version and its split (train, valid, test, or blind)."""

    __tablename__ = "dataset_member"

    dataset_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    image_id: int = Field(foreign_key="image.id", primary_key=True)
    sha256: str = Field(max_length=64, index=True)
    label: str | None = Field(default=None, max_length=64)
    split: str = Field(max_length=8, index=True)
    group_key: str | None = None


class HashClaim(SQLModel, table=True):
    """Which side of the wall a content hash is on: ``train`` (some training dataset used it) or ``blind``.

    One row per hash, so the database itself refuses to let one image be both: whichever of a blind set and a
    training set claims it first keeps it, and the other drops it (and says how many it dropped).
    """

    __tablename__ = "hash_claim"

    sha256: str = Field(max_length=64, primary_key=True)
    role: str = Field(max_length=8)
    dataset_id: int = Field(foreign_key="dataset_version.id")
    created_at: datetime = Field(default_factory=utcnow)


class TrainingRun(SQLModel, table=True):
    """One training: the run record of the platform manual (version, status, mean detection rate, labelled /
    total images, label kinds, start, end, duration), its config and per-epoch metrics."""

    __tablename__ = "training_run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8, index=True, description="gray or color")
    dataset: str = Field(max_length=128, index=True)
    status: str = Field(default="running", max_length=16, index=True, description="running, succeeded, failed, stopped")
    arch: str = Field(max_length=32)
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    mean_detection_rate: float | None = None
    valid_accuracy: float | None = None
    labelled_images: int = 0
    total_images: int = 0
    label_kinds: int = 0
    epochs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_version: str | None = Field(default=None, max_length=64)
    curves_path: str | None = None
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_s: float | None = None


class ModelVersion(SQLModel, table=True):
    """A trained model: its files live in the BentoML model store under ``bento_tag``; its stage changes only
    through the gate, each change recorded with who and why."""

    __tablename__ = "model_version"
    # One production model per kind, enforced by the database (a partial unique index), not only by code:
    # two approvals at once cannot both make production.
    __table_args__ = (
        Index(
            "uq_model_version_one_production",
            "kind",
            unique=True,
            postgresql_where=text("stage = 'production'"),
            sqlite_where=text("stage = 'production'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=8, index=True)
    stage: str = Field(default="candidate", max_length=16, index=True)
    run_id: int = Field(foreign_key="training_run.id", index=True)
    dataset: str = Field(max_length=128)
    arch: str = Field(max_length=32)
    bento_tag: str = Field(max_length=128)
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    stage_changed_at: datetime = Field(default_factory=utcnow)
    stage_changed_by: str = Field(default="training", max_length=128)
    stage_reason: str = Field(default="new candidate from training")
    threshold: float | None = Field(default=None, description="Unknown-filter threshold calibrated on the valid split")
    threshold_basis: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Evaluation(SQLModel, table=True):
    """A model version measured on a dataset version's split or a blind set, at one Unknown threshold."""

    __tablename__ = "evaluation"

    id: int | None = Field(default=None, primary_key=True)
    model_version: str = Field(max_length=64, index=True)
    dataset: str = Field(max_length=128, index=True)
    split: str = Field(max_length=8, description="train, valid, test or blind")
    images: int = 0
    threshold: float
    accuracy: float | None = None
    coarse_accuracy: float | None = None
    accepted_accuracy: float | None = Field(default=None, description="Accuracy on answers the Unknown filter kept")
    unknown_rate: float = 0.0
    mean_detection_rate: float | None = None
    labels: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    coarse_labels: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    per_class: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    per_class_coarse: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    confusion: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    confusion_coarse: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Added later (migration 0010): None on evaluations stored before.
    confusion_unknown: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    per_machine: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    per_part: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    warnings: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    report_path: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class RobustnessRun(SQLModel, table=True):
    """Accuracy under changed tone (each channel scaled, docs/domain.md#joint-tone) and changed compression
    (docs/domain.md#compression)."""

    __tablename__ = "robustness"

    id: int | None = Field(default=None, primary_key=True)
    model_version: str = Field(max_length=64, index=True)
    dataset: str = Field(max_length=128)
    split: str = Field(max_length=8)
    images: int = 0
    tone: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    compression: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class GateVerdict(SQLModel, table=True):
    """The gate's verdict on a candidate: every rule with its figure, limit and pass/fail."""

    __tablename__ = "gate_verdict"

    id: int | None = Field(default=None, primary_key=True)
    model_version: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=8)
    production_version: str | None = Field(default=None, max_length=64)
    passed: bool
    rules: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    blind_sets: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Labels to look at (low recall, few blind images); never part of passed. None on verdicts before 0010.
    warnings: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    flow_run_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Approval(SQLModel, table=True):
    """A person's decision on a candidate that passed its gate: waiting, approved, rejected, timed_out or superseded
    (approved, but another production model came first: refused)."""

    __tablename__ = "approval"

    id: int | None = Field(default=None, primary_key=True)
    model_version: str = Field(max_length=64, index=True)
    verdict_id: int = Field(foreign_key="gate_verdict.id")
    flow_run_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="waiting", max_length=16)
    reviewer: str | None = Field(default=None, max_length=128)
    comment: str | None = None
    requested_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None


class StageChange(SQLModel, table=True):
    """Every change of a model version's stage, with when, who and why (the audit trail of promotion)."""

    __tablename__ = "stage_change"

    id: int | None = Field(default=None, primary_key=True)
    model_version: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=8, index=True)
    from_stage: str = Field(max_length=16)
    to_stage: str = Field(max_length=16)
    by: str = Field(max_length=128)
    reason: str
    flow_run_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow)


class Prediction(ToneColumns, table=True):
    """One answer of the classification service (the prediction log): what came in, which model answered, what
    it said and where the image was routed. Monitoring reads tone, compression and confidence from here."""

    __tablename__ = "prediction"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=32, unique=True, description="Returned to the caller; one row per answer")
    at: datetime = Field(default_factory=utcnow, index=True)
    latency_ms: float
    kind: str = Field(max_length=8, index=True)
    model_version: str = Field(max_length=64, index=True)
    machine_id: str | None = Field(default=None, max_length=64, index=True)
    part_no: str | None = Field(default=None, max_length=64)
    upstream_code: str | None = Field(default=None, max_length=64)
    sha256: str = Field(max_length=64, index=True, description="Of the image bytes; the bytes are not kept")
    label: str = Field(max_length=64, description="The answer after rules: a fine class or UNKNOWN")
    coarse_label: str = Field(max_length=64)
    model_label: str = Field(max_length=64, description="The model's top fine class before filter and rules")
    confidence: float
    unknown: bool
    route: str = Field(max_length=16)
    rule: str | None = Field(default=None, max_length=64)
    # Tone metrics come from ToneColumns; compression and size of the image as received:
    format: str = Field(max_length=16)
    jpeg_quality: int | None = None
    bytes_per_pixel: float
    width: int
    height: int
    in_spec: bool | None = Field(default=None, description="Tone inside the tone spec; None when the kind has none")


class DriftCheck(SQLModel, table=True):
    """One drift check of one kind: the prediction-log window against the production model's reference, the
    figures overall and per machine, and the decision (clean, drift, too few samples; triggered or not)."""

    __tablename__ = "drift_check"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8, index=True)
    model_version: str = Field(max_length=64, description="The production model whose reference was used")
    window_start: datetime
    window_end: datetime
    samples: int = 0
    reference_samples: int = 0
    drifted_columns: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    drift_share: float | None = None
    unknown_rate: float | None = None
    reference_unknown_rate: float | None = None
    machines: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    drift: bool | None = Field(default=None, description="None: too few samples to say")
    decision: str = Field(max_length=160, description="too few samples, clean, drift: retraining triggered, ...")
    report_path: str | None = None
    episode_id: int | None = Field(default=None, foreign_key="drift_episode.id")
    flow_run_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # Added later (migration 0014): the blind accuracy and each scope's live accuracy; None on checks before.
    live_accuracy: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class DriftEpisode(SQLModel, table=True):
    """A drift episode of one kind: opened by the first drifted check, which triggers one retraining; closed by
    the first clean check after that retraining ended. ``open_kind`` is the kind while open and NULL after, so
    the database itself refuses a second open episode (and a second retraining) for a kind."""

    __tablename__ = "drift_episode"
    __table_args__ = (UniqueConstraint("open_kind", name="uq_drift_episode_open_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8, index=True)
    open_kind: str | None = Field(default=None, max_length=8)
    opened_at: datetime = Field(default_factory=utcnow)
    machines: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    retrain_flow_run_id: str | None = Field(default=None, max_length=64)
    trigger_error: str | None = None
    closed_at: datetime | None = None


class UserRole(StrEnum):
    """Workbench roles, each allowed what the one before it is: viewers read, engineers curate, reviewers
    approve candidates (and curate)."""

    viewer = "viewer"
    engineer = "engineer"
    reviewer = "reviewer"


class AppUser(SQLModel, table=True):
    """A person with a workbench account. Only the argon2 hash of the password is kept."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16, description="viewer, engineer or reviewer")
    password_hash: str
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ImageChange(SQLModel, table=True):
    """One change a person made to an image (relabel, exclude, restore, delete): who, when, why, and the
    label and status before and after. The image's history; the next dataset version counts them."""

    __tablename__ = "image_change"

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(foreign_key="image.id", index=True)
    action: str = Field(max_length=16, description="relabel, exclude, restore or delete")
    old_label: str | None = Field(default=None, max_length=64)
    new_label: str | None = Field(default=None, max_length=64)
    old_status: str = Field(max_length=16)
    new_status: str = Field(max_length=16)
    reason: str = Field(description="Why, as the person wrote it")
    by: str = Field(max_length=128, description="The authenticated identity that made the change")
    via: str = Field(default="web", max_length=8, description="web or cli")
    at: datetime = Field(default_factory=utcnow, index=True)


class EvaluationImage(SQLModel, table=True):
    """One image's answer in one evaluation: the per-image scores behind the confusion matrix and the threshold
    explorer (added with migration 0011; evaluations stored before have none)."""

    __tablename__ = "evaluation_image"

    evaluation_id: int = Field(foreign_key="evaluation.id", primary_key=True)
    image_id: int = Field(foreign_key="image.id", primary_key=True, index=True)
    true_label: str = Field(max_length=64)
    predicted: str = Field(max_length=64, description="Top-1 label, before the Unknown filter")
    confidence: float = Field(description="Top-1 probability; below the evaluation's threshold means Unknown")
    top: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [[label, p], ...], top 3


class KeptAnswerReason(StrEnum):
    """Why the service kept an answer's image: every doubtful answer, and a sampled share of the others."""

    review = "review"  # routed REVIEW by the rules
    vrs = "vrs"  # routed to the VRS station
    unknown = "unknown"  # below the Unknown threshold
    sample = "sample"  # AOI_SERVING__KEEP_SHARE of the confident answers, for an unbiased live accuracy


class KeptAnswerStatus(StrEnum):
    """Where a kept answer is in the review queue."""

    waiting = "waiting"  # in the queue, no decision yet
    labelled = "labelled"  # a person gave its true class (a confirmed label; may become a training image)
    not_defect = "not_defect"  # a person said it is no defect (a false call of the AOI)
    bad_image = "bad_image"  # a person said the image is unusable: quarantined with that reason
    skipped = "skipped"  # a person passed on it; it stays out of the queue's default order
    dropped = "dropped"  # bytes removed to stay within AOI_SERVING__KEEP_MAX_BYTES before anyone reviewed it


class KeptAnswer(SQLModel, table=True):
    """An answer whose image bytes the service kept in the image store for review (migration 0013). It links the
    prediction row (same ``request_id``) to the stored image and carries what the review queue shows, so the
    queue needs no join with the prediction log (which the service writes later, in batches)."""

    __tablename__ = "kept_answer"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=32, unique=True, description="The prediction row's request id")
    kind: str = Field(max_length=8, index=True)
    reason: str = Field(max_length=16, description="review, vrs, unknown or sample (KeptAnswerReason)")
    sha256: str = Field(max_length=64, index=True, description="Of the image bytes, which are in the image store")
    bytes: int = Field(description="Size of the kept image; counted against AOI_SERVING__KEEP_MAX_BYTES")
    model_version: str = Field(max_length=64)
    label: str = Field(max_length=64, description="The service's answer (after rules)")
    confidence: float
    top: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [[label, p], ...], top 3
    machine_id: str | None = Field(default=None, max_length=64)
    part_no: str | None = Field(default=None, max_length=64)
    upstream_code: str | None = Field(default=None, max_length=64)
    kept_at: datetime = Field(default_factory=utcnow, index=True)
    status: str = Field(default=KeptAnswerStatus.waiting, max_length=16, index=True)
    true_label: str | None = Field(default=None, max_length=64, description="The class a person gave it")
    decided_by: str | None = Field(default=None, max_length=128, description="The authenticated identity")
    decided_at: datetime | None = None
    image_id: int | None = Field(
        default=None, foreign_key="image.id", description="The labelled image it became in an inbox batch"
    )


class LineFeedback(SQLModel, table=True):
    """The confirmed truth for one answer, as the VRS station, an operator or a reviewer found it (migration
    0013): one row per request id, so a repeated report is idempotent. Live accuracy is computed from these."""

    __tablename__ = "line_feedback"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=32, unique=True, description="The prediction row's request id")
    label: str = Field(max_length=64, description="The true fine class, or NOT_DEFECT")
    by: str = Field(max_length=128, description="Who confirmed it: the authenticated caller or the reviewer")
    source: str = Field(max_length=16, description="api (POST /feedback), import (aoi feedback import) or review")
    at: datetime = Field(default_factory=utcnow, index=True)


class ModelExport(SQLModel, table=True):
    """An exported model version (``aoi export``, migration 0015): its file beside the version's weights in the
    model store, the parity gate's figures against PyTorch on the blind sets, and the latency measured at export
    on one device. One row per version, format and precision: a re-export replaces the figures."""

    __tablename__ = "model_export"
    __table_args__ = (UniqueConstraint("model_version", "format", "int8", name="uq_model_export_version_format"),)

    id: int | None = Field(default=None, primary_key=True)
    model_version: str = Field(max_length=64, index=True)
    format: str = Field(max_length=16, description="onnx")
    int8: bool = Field(description="Static INT8 quantization calibrated on the version's valid split")
    engine: str = Field(max_length=32, description="What runs the file: onnxruntime or openvino (the faster measured)")
    path: str = Field(description="The file, relative to the version's folder in the model store")
    sha256: str = Field(max_length=64, description="Of the exported file (its name carries it)")
    accepted: bool = Field(description="Passed the parity gate: only an accepted export may serve")
    reason: str = Field(description="Why it was accepted or refused, with the figures")
    top1_agreement: float | None = Field(default=None, description="Share of blind images with PyTorch's top class")
    blind_accuracy_torch: float | None = None
    blind_accuracy_export: float | None = None
    blind_images: int = 0
    blind_sets: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    device: str = Field(max_length=128, description="The CPU's model name, or the GPU's, latency was measured on")
    batch1_ms: float | None = Field(default=None, description="Median forward pass of one image")
    batch32_images_per_s: float | None = Field(default=None, description="Images per second in batches of 32")
    torch_batch1_ms: float | None = Field(default=None, description="PyTorch's, measured beside it")
    torch_batch32_images_per_s: float | None = Field(default=None, description="PyTorch's, measured beside it")
    created_at: datetime = Field(default_factory=utcnow)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a table model, for bulk inserts and joins (SQLModel's classes do not declare
    ``__table__`` to a type checker)."""
    mapper = inspect(model)
    if mapper is None:
        raise TypeError(f"{model.__name__} is not a table model")
    return cast(Table, mapper.local_table)
