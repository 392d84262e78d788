"""What the review pages read from the catalog: dataset versions, training records, model versions with their
evaluations and per-image answers, drift checks. Plain functions on a catalog session with typed results; the
page modules turn them into HTML."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from aoi.catalog.models import (
    DatasetVersion,
    DriftCheck,
    DriftEpisode,
    Evaluation,
    EvaluationImage,
    Image,
    ModelVersion,
    TrainingRun,
)
from evaluation import scores
from workbench.charts import CurvePoint, TrendPoint

UNKNOWN = scores.UNKNOWN
TREND_RUNS = 10  # the manual's trend: the last 10 runs of a kind
KIND_ORDER = {"gray": 0, "color": 1}  # the line's order: the gray model answers first


# ---------------------------------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    role: str
    source: str
    parent: str | None
    images: int
    splits: dict[str, int]  # images per split
    classes: int
    created_at: datetime
    blind_date: str | None
    spec_key: str | None
    note: str | None


@dataclass(frozen=True)
class CleaningRow:
    """One rule of a version's cleaning table: per class, images before and after it."""

    rule: str
    before: dict[str, int]
    after: dict[str, int]

    def change(self, label: str) -> int:
        """Images the rule added to (a relabel into it) or, negative, took from ``label``."""
        return self.after.get(label, 0) - self.before.get(label, 0)

    @property
    def total_before(self) -> int:
        return sum(self.before.values())

    @property
    def total_after(self) -> int:
        return sum(self.after.values())


@dataclass(frozen=True)
class DatasetDetail:
    summary: DatasetSummary
    labels: list[str]
    cleaning: list[CleaningRow]
    splits: dict[str, dict[str, int]]  # split -> label -> images
    lineage: list[str]  # parent, grandparent, ...
    children: list[str]
    models: list[str]  # model versions trained on it
    split_ratio: str | None
    per_class: int | None
    seed: int
    group_by: str | None
    dropped_blind: int


SPLIT_ORDER = {"train": 0, "valid": 1, "test": 2, "blind": 3}


def _in_order(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Splits in the order people read them: train, valid, test, blind, then any other."""
    return {k: dict(counts[k]) for k in sorted(counts, key=lambda k: (SPLIT_ORDER.get(k, len(SPLIT_ORDER)), k))}


def _summary(v: DatasetVersion) -> DatasetSummary:
    return DatasetSummary(
        name=v.name,
        role=v.role,
        source=v.source,
        parent=v.parent,
        images=sum(sum(c.values()) for c in v.counts.values()),
        splits={split: sum(c.values()) for split, c in _in_order(v.counts).items()},
        classes=len(v.taxonomy) or len({label for c in v.counts.values() for label in c}),
        created_at=v.created_at,
        blind_date=v.blind_date,
        spec_key=v.spec_key,
        note=v.note,
    )


def dataset_versions(s: Session) -> list[DatasetSummary]:
    """Every dataset version, newest first."""
    return [_summary(v) for v in s.exec(select(DatasetVersion).order_by(col(DatasetVersion.id).desc())).all()]


def dataset_detail(s: Session, name: str) -> DatasetDetail | None:
    v = s.exec(select(DatasetVersion).where(DatasetVersion.name == name)).first()
    if v is None:
        return None
    lineage, parent, seen = [], v.parent, {v.name}
    while parent and parent not in seen:  # a cycle cannot be built, but a page must never loop
        lineage.append(parent)
        seen.add(parent)
        parent = s.exec(select(DatasetVersion.parent).where(DatasetVersion.name == parent)).first()
    children = s.exec(
        select(DatasetVersion.name).where(DatasetVersion.parent == name).order_by(col(DatasetVersion.id))
    ).all()
    models = s.exec(
        select(ModelVersion.version).where(ModelVersion.dataset == name).order_by(col(ModelVersion.id))
    ).all()
    cleaning = [
        CleaningRow(str(r.get("rule", "")), dict(r.get("before", {})), dict(r.get("after", {}))) for r in v.cleaning
    ]
    labels = sorted({label for c in v.counts.values() for label in c} | {label for r in cleaning for label in r.before})
    return DatasetDetail(
        summary=_summary(v),
        labels=labels,
        cleaning=cleaning,
        splits=_in_order(v.counts),
        lineage=lineage,
        children=list(children),
        models=list(models),
        split_ratio=v.split,
        per_class=v.per_class,
        seed=v.seed,
        group_by=v.group_by,
        dropped_blind=v.dropped_blind,
    )


# ---------------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class RunRecord:
    """The manual's training record."""

    id: int
    kind: str
    version: str | None  # the model version it registered (None: running, failed, stopped)
    dataset: str
    arch: str
    status: str
    mean_detection_rate: float | None
    labelled_images: int
    total_images: int
    label_kinds: int
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    error: str | None

    @property
    def name(self) -> str:
        return self.version or f"run {self.id}"


def runs_by_kind(s: Session, limit: int = 200) -> dict[str, list[RunRecord]]:
    """Per kind (gray, color), its latest ``limit`` training runs, newest first."""
    out: dict[str, list[RunRecord]] = {}
    kinds = sorted(s.exec(select(TrainingRun.kind).distinct()).all(), key=lambda k: (KIND_ORDER.get(k, 2), k))
    for kind in kinds:
        rows = s.exec(
            select(TrainingRun)
            .where(TrainingRun.kind == kind)
            .order_by(col(TrainingRun.started_at).desc())
            .limit(limit)
        ).all()
        out[kind] = [
            RunRecord(
                id=int(r.id or 0),
                kind=r.kind,
                version=r.model_version,
                dataset=r.dataset,
                arch=r.arch,
                status=r.status,
                mean_detection_rate=r.mean_detection_rate,
                labelled_images=r.labelled_images,
                total_images=r.total_images,
                label_kinds=r.label_kinds,
                started_at=r.started_at,
                finished_at=r.finished_at,
                duration_s=r.duration_s,
                error=r.error,
            )
            for r in rows
        ]
    return out


def trend(runs: list[RunRecord], last: int = TREND_RUNS) -> list[TrendPoint]:
    """The last ``last`` runs as trend points: a succeeded run's mean detection rate; a run without a figure
    (running, failed, stopped) as a marker at its start."""
    newest = sorted(runs, key=lambda r: r.started_at)[-last:]
    return [
        TrendPoint(
            at=r.started_at,
            value=r.mean_detection_rate if r.status == "succeeded" else None,
            status=r.status,
            label=r.name,
            href=f"/models/{r.version}" if r.version else None,
        )
        for r in newest
    ]


# ---------------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSummary:
    version: str
    kind: str
    stage: str
    dataset: str
    arch: str
    created_at: datetime
    threshold: float | None
    blind_accuracy: dict[str, float | None]  # latest per blind set


def model_versions(s: Session) -> list[ModelSummary]:
    """Every model version, newest first, with its latest plain accuracy per blind set."""
    blind = set(s.exec(select(DatasetVersion.name).where(DatasetVersion.role == "blind")).all())
    accuracy: dict[str, dict[str, float | None]] = defaultdict(dict)
    for e in s.exec(select(Evaluation).where(Evaluation.split == "blind").order_by(col(Evaluation.id))).all():
        if e.dataset in blind:
            accuracy[e.model_version][e.dataset] = e.accuracy  # the latest wins
    return [
        ModelSummary(m.version, m.kind, m.stage, m.dataset, m.arch, m.created_at, m.threshold, accuracy[m.version])
        for m in s.exec(select(ModelVersion).order_by(col(ModelVersion.id).desc())).all()
    ]


@dataclass(frozen=True)
class LabelFigures:
    label: str
    support: int
    recall: float | None
    precision: float | None
    warnings: list[str]


@dataclass(frozen=True)
class BlindResult:
    """A model version's latest evaluation on one blind set, as the model page shows it."""

    evaluation: Evaluation
    labels: list[str]
    confusion: list[list[int]]
    per_label: list[LabelFigures]
    warnings: list[dict]
    answers: int  # per-image rows stored (0 for an evaluation from before they were)

    @property
    def dataset(self) -> str:
        return self.evaluation.dataset


def latest_evaluation(s: Session, version: str, dataset: str, evaluation_id: int | None = None) -> Evaluation | None:
    """The evaluation of ``version`` on ``dataset``: ``evaluation_id`` when given (and it is one of them), else
    the latest."""
    query = select(Evaluation).where(Evaluation.model_version == version, Evaluation.dataset == dataset)
    if evaluation_id is not None:
        query = query.where(Evaluation.id == evaluation_id)
    return s.exec(query.order_by(col(Evaluation.id).desc())).first()


def blind_results(s: Session, version: str) -> list[BlindResult]:
    """The latest evaluation of ``version`` on each blind set it was evaluated on, in the sets' order."""
    names = s.exec(
        select(Evaluation.dataset).where(Evaluation.model_version == version, Evaluation.split == "blind").distinct()
    ).all()
    order = {n: i for i, n in enumerate(s.exec(select(DatasetVersion.name).order_by(col(DatasetVersion.id))).all())}
    out = []
    for name in sorted(names, key=lambda n: (order.get(n, len(order)), n)):
        e = latest_evaluation(s, version, name)
        if e is None:
            continue
        warned: dict[str, list[str]] = defaultdict(list)
        for w in e.warnings or []:
            warned[w.get("label", "")].append(str(w.get("message") or w.get("warning")))
        per_label = [
            LabelFigures(
                label,
                int(row.get("support") or 0),
                row.get("recall"),
                row.get("precision"),
                warned.get(label, []),
            )
            for label, row in e.per_class.items()
        ]
        answers = s.exec(
            select(func.count()).select_from(EvaluationImage).where(EvaluationImage.evaluation_id == e.id)
        ).one()
        out.append(BlindResult(e, list(e.labels), [list(r) for r in e.confusion], per_label, e.warnings or [], answers))
    return out


@dataclass(frozen=True)
class CellImage:
    image_id: int
    file_name: str
    sha256: str
    true_label: str
    predicted: str
    confidence: float
    top: list


def cell_images(s: Session, evaluation: Evaluation, true: str, predicted: str, limit: int = 500) -> list[CellImage]:
    """The images behind one confusion cell of ``evaluation``: true label ``true`` answered ``predicted`` (top-1,
    before the Unknown filter); ``predicted`` UNKNOWN: the images of ``true`` the filter sent to a person (top-1
    confidence below the evaluation's threshold). Least confident first."""
    query = (
        select(EvaluationImage, Image.file_name, Image.sha256)
        .join(Image, col(Image.id) == EvaluationImage.image_id)
        .where(EvaluationImage.evaluation_id == evaluation.id, EvaluationImage.true_label == true)
    )
    if predicted == UNKNOWN:
        query = query.where(EvaluationImage.confidence < evaluation.threshold)
    else:
        query = query.where(EvaluationImage.predicted == predicted)
    rows = s.exec(query.order_by(col(EvaluationImage.confidence), col(EvaluationImage.image_id)).limit(limit)).all()
    return [
        CellImage(r.image_id, file_name, sha, r.true_label, r.predicted, r.confidence, list(r.top))
        for r, file_name, sha in rows
    ]


@dataclass(frozen=True)
class Explorer:
    """The Unknown filter over every threshold of one evaluation's per-image answers."""

    images: int
    threshold: float  # the evaluation's own
    curve: list[CurvePoint]  # one point per distinct confidence, most permissive first
    table: list[CurvePoint]  # at a few round thresholds and the evaluation's own

    def points(self) -> list[list[float | None]]:
        """[threshold, accepted accuracy, Unknown rate] of every curve point, lowest threshold first: the page's
        slider takes, for a threshold t, the point of the lowest curve threshold at or above t."""
        return [
            [c.threshold, c.accepted_accuracy, c.unknown_rate] for c in sorted(self.curve, key=lambda c: c.threshold)
        ]


EXPLORER_THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.9945)


def at_threshold(true: np.ndarray, pred: np.ndarray, confidence: np.ndarray, threshold: float) -> CurvePoint:
    point = scores.unknown_filter(true, pred, confidence, threshold)
    return CurvePoint(threshold, point.accepted_accuracy, point.unknown_rate)


def explorer(s: Session, evaluation: Evaluation, extra: float | None = None) -> Explorer | None:
    """The threshold explorer of ``evaluation`` (None without per-image answers); ``extra``: one more threshold
    for the table (the one a person typed in)."""
    rows = s.exec(
        select(EvaluationImage.true_label, EvaluationImage.predicted, EvaluationImage.confidence).where(
            EvaluationImage.evaluation_id == evaluation.id
        )
    ).all()
    if not rows:
        return None
    right = np.array([t == p for t, p, _ in rows])
    confidence = np.array([c for _, _, c in rows], dtype=np.float64)
    # The filter only needs right or wrong: encode it as true 1, predicted 1 or 0.
    true, pred = np.ones(len(rows), dtype=np.int64), right.astype(np.int64)
    curve = [
        CurvePoint(p.threshold, p.accepted_accuracy, p.unknown_rate)
        for p in scores.filter_curve(true, pred, confidence)
    ]
    marks = sorted({*EXPLORER_THRESHOLDS, evaluation.threshold, *([extra] if extra is not None else [])})
    return Explorer(len(rows), evaluation.threshold, curve, [at_threshold(true, pred, confidence, t) for t in marks])


# ---------------------------------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class MachineFigures:
    machine: str
    samples: int | None
    drift: bool | None
    drift_share: float | None
    unknown_rate: float | None
    reasons: list[str]
    report: str | None


@dataclass(frozen=True)
class DriftRow:
    id: int
    kind: str
    model_version: str
    created_at: datetime
    window_start: datetime
    window_end: datetime
    samples: int
    drift: bool | None
    drift_share: float | None
    unknown_rate: float | None
    reference_unknown_rate: float | None
    drifted_columns: list[str]
    decision: str
    report: str | None
    episode_id: int | None
    machines: list[MachineFigures] = field(default_factory=list)
    # live accuracy of the confirmed answers (migration 0014): scopes with confirmed answers, the whole kind first
    live: list[dict] = field(default_factory=list)
    blind_accuracy: float | None = None


def _machine(name: str, fig: dict) -> MachineFigures:
    return MachineFigures(
        machine=name,
        samples=fig.get("samples"),
        drift=fig.get("drift"),
        drift_share=fig.get("drift_share"),
        unknown_rate=fig.get("unknown_rate"),
        reasons=[str(r) for r in fig.get("reasons") or []],
        report=fig.get("report"),
    )


def drift_checks(s: Session, kind: str | None = None, limit: int = 200) -> dict[str, list[DriftRow]]:
    """Per kind, its latest ``limit`` drift checks, newest first, each with its per-machine figures."""
    query = select(DriftCheck).order_by(col(DriftCheck.created_at).desc(), col(DriftCheck.id).desc())
    if kind:
        query = query.where(DriftCheck.kind == kind)
    out: dict[str, list[DriftRow]] = defaultdict(list)
    for c in s.exec(query).all():
        if len(out[c.kind]) >= limit:
            continue
        out[c.kind].append(
            DriftRow(
                id=int(c.id or 0),
                kind=c.kind,
                model_version=c.model_version,
                created_at=c.created_at,
                window_start=c.window_start,
                window_end=c.window_end,
                samples=c.samples,
                drift=c.drift,
                drift_share=c.drift_share,
                unknown_rate=c.unknown_rate,
                reference_unknown_rate=c.reference_unknown_rate,
                drifted_columns=[str(x) for x in c.drifted_columns],
                decision=c.decision,
                report=c.report_path,
                episode_id=c.episode_id,
                machines=[_machine(m, fig) for m, fig in sorted(c.machines.items()) if isinstance(fig, dict)],
                live=[r for r in (c.live_accuracy or {}).get("scopes", []) if r.get("confirmed")],
                blind_accuracy=((c.live_accuracy or {}).get("blind") or {}).get("accuracy"),
            )
        )
    return dict(sorted(out.items(), key=lambda item: (KIND_ORDER.get(item[0], 2), item[0])))


def drift_trend(checks: list[DriftRow], last: int = 50) -> list[TrendPoint]:
    """The last ``last`` checks as trend points: the share of drifted columns of a judged check; a check with
    too few samples as a marker at its time (no figure, not a zero)."""
    newest = sorted(checks, key=lambda c: c.created_at)[-last:]
    return [
        TrendPoint(
            at=c.created_at,
            value=c.drift_share if c.drift is not None else None,
            status="drift" if c.drift else "clean" if c.drift is False else "too few samples",
            label=f"check {c.id}",
        )
        for c in newest
    ]


def machines_over_time(checks: list[DriftRow]) -> dict[str, list[tuple[DriftRow, MachineFigures]]]:
    """Per machine, the checks that judged it, newest first."""
    out: dict[str, list[tuple[DriftRow, MachineFigures]]] = defaultdict(list)
    for c in checks:
        for m in c.machines:
            out[m.machine].append((c, m))
    return dict(sorted(out.items()))


def drift_episodes(s: Session) -> list[DriftEpisode]:
    return list(s.exec(select(DriftEpisode).order_by(col(DriftEpisode.opened_at).desc())).all())
