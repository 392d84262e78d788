"""Generated catalog rows for the review pages' tests: dataset versions with lineage, training runs of every
status, model versions with blind-set evaluations and their per-image answers, gate verdicts, stage changes,
approvals and drift checks. Inserted directly, as the stages would have written them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import (
    DatasetVersion,
    DriftCheck,
    DriftEpisode,
    Evaluation,
    EvaluationImage,
    GateVerdict,
    Image,
    ModelVersion,
    StageChange,
    TrainingRun,
    table_of,
)
from aoi.settings import Settings
from evaluation import scores
from tests.workbench.helpers import fill_catalog

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LABELS = ["Copper", "Mouse_bite", "Open", "Pin_hole", "Short", "Spur"]  # helpers.LABELS, sorted
CANDIDATE, PRODUCTION = "gray-20260301-b", "gray-20260201-a"
BLIND = "g-blind-0717"


@dataclass(frozen=True)
class Answer:
    image_id: int
    true: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class ReviewRows:
    evaluation_id: int
    answers: list[Answer]
    threshold: float
    runs: list[TrainingRun]


def datasets(settings: Settings) -> None:
    with db.session(settings.catalog_url) as s:
        s.add(
            DatasetVersion(
                name="g-v1",
                role="train",
                source="gray",
                split="8:1:1",
                per_class=50,
                taxonomy=LABELS,
                cleaning=[
                    {
                        "rule": "not in a blind test set",
                        "before": {"Short": 60, "Spur": 55},
                        "after": {"Short": 58, "Spur": 55},
                    },
                    {
                        "rule": "not excluded by validation",
                        "before": {"Short": 58, "Spur": 55},
                        "after": {"Short": 50, "Spur": 52},
                    },
                ],
                counts={
                    "train": {"Short": 40, "Spur": 42},
                    "valid": {"Short": 5, "Spur": 5},
                    "test": {"Short": 5, "Spur": 5},
                },
                created_at=T0 - timedelta(days=40),
            )
        )
        s.add(
            DatasetVersion(
                name="g-v1.1",
                role="train",
                source="gray",
                parent="g-v1",
                split="8:1:1",
                taxonomy=LABELS,
                cleaning=[
                    {
                        "rule": "relabelled by a person",
                        "before": {"Short": 50, "Spur": 52},
                        "after": {"Short": 48, "Spur": 54},
                    },
                    {
                        "rule": "removed by a person",
                        "before": {"Short": 48, "Spur": 54},
                        "after": {"Short": 47, "Spur": 54},
                    },
                ],
                counts={
                    "train": {"Short": 37, "Spur": 44},
                    "valid": {"Short": 5, "Spur": 5},
                    "test": {"Short": 5, "Spur": 5},
                },
                created_at=T0 - timedelta(days=30),
            )
        )
        s.add(
            DatasetVersion(
                name=BLIND,
                role="blind",
                source="gray",
                blind_date="2026-07-17",
                taxonomy=LABELS,
                counts={"blind": {label: 10 for label in LABELS}},
                created_at=T0 - timedelta(days=20),
            )
        )
        s.commit()


def training_runs(settings: Settings) -> list[TrainingRun]:
    """12 gray runs a day apart (the trend shows the last 10): mostly succeeded with rates near 0.9, run 9
    failed, the newest still running; and one color run."""
    rates = [0.88, 0.89, 0.885, 0.90, 0.91, 0.905, 0.92, 0.915, 0.93, None, 0.94, None]
    out = []
    with db.session(settings.catalog_url) as s:
        for k, rate in enumerate(rates):
            status = "failed" if k == 9 else "running" if k == 11 else "succeeded"
            start = T0 - timedelta(days=12 - k)
            version = (
                CANDIDATE if k == 10 else PRODUCTION if k == 8 else f"gray-run{k}" if status == "succeeded" else None
            )
            run = TrainingRun(
                kind="gray",
                dataset="g-v1.1" if k >= 10 else "g-v1",
                status=status,
                arch="resnet18",
                config={"per_class": 50, "epochs": 3},
                mean_detection_rate=rate,
                labelled_images=100 + k,
                total_images=120 + k,
                label_kinds=6,
                model_version=version,
                error="worker died" if status == "failed" else None,
                started_at=start,
                finished_at=None if status == "running" else start + timedelta(minutes=20 + k),
                duration_s=None if status == "running" else (20 + k) * 60.0,
            )
            s.add(run)
            out.append(run)
        s.add(
            TrainingRun(
                kind="color",
                dataset="c-v1",
                status="succeeded",
                arch="resnet18",
                mean_detection_rate=0.8,
                started_at=T0,
                finished_at=T0 + timedelta(minutes=5),
                duration_s=300.0,
            )
        )
        s.commit()
        for run in out:
            s.refresh(run)
    return out


def model(settings: Settings, version: str, run_id: int, stage: str, threshold: float | None = 0.8) -> None:
    with db.session(settings.catalog_url) as s:
        s.add(
            ModelVersion(
                version=version,
                kind="gray",
                stage=stage,
                run_id=run_id,
                dataset="g-v1.1" if version == CANDIDATE else "g-v1",
                arch="resnet18",
                bento_tag=f"aoi-gray:{version}",
                threshold=threshold,
                threshold_basis={"dataset": "g-v1.1"} if threshold else {},
                created_at=T0 - timedelta(days=2),
                stage_changed_at=T0 - timedelta(days=2),  # fixed times: the screenshots stay the same
            )
        )
        s.commit()


def evaluation(settings: Settings, version: str, threshold: float, seed: int = 0) -> tuple[int, list[Answer]]:
    """An evaluation of ``version`` on the blind set over 60 generated images (10 per label), with per-image
    answers drawn at random (about 70% right) and every stored figure computed from them."""
    rng = np.random.default_rng(seed)
    ids = fill_catalog(settings, 60, with_bytes=60, seed=100 + seed)
    with db.session(settings.catalog_url) as s:
        labels_of = dict(s.exec(select(Image.id, Image.label).where(col(Image.id).in_(ids))).all())
    true = np.array([LABELS.index(str(labels_of[i])) for i in ids])
    pred = np.where(rng.random(len(ids)) < 0.7, true, rng.integers(0, len(LABELS), len(ids)))
    confidence = np.round(rng.uniform(0.35, 1.0, len(ids)), 4)
    matrix = scores.confusion(true, pred, len(LABELS))
    table = scores.per_class(matrix, LABELS)
    kept = scores.unknown_filter(true, pred, confidence, threshold)
    from aoi.settings import GateSettings

    with db.session(settings.catalog_url) as s:
        row = Evaluation(
            model_version=version,
            dataset=BLIND,
            split="blind",
            images=len(ids),
            threshold=threshold,
            accuracy=scores.accuracy(matrix),
            accepted_accuracy=kept.accepted_accuracy,
            unknown_rate=kept.unknown_rate,
            mean_detection_rate=scores.mean_detection_rate(table),
            labels=LABELS,
            per_class=table,
            confusion=matrix.tolist(),
            confusion_unknown=scores.confusion_with_unknown(true, pred, confidence, threshold, LABELS),
            warnings=scores.label_warnings(GateSettings(), table, "images in this blind set"),
            created_at=T0,
        )
        s.add(row)
        s.flush()
        answers = [
            Answer(i, LABELS[t], LABELS[p], float(c)) for i, t, p, c in zip(ids, true, pred, confidence, strict=True)
        ]
        s.connection().execute(
            table_of(EvaluationImage).insert(),
            [
                {
                    "evaluation_id": row.id,
                    "image_id": a.image_id,
                    "true_label": a.true,
                    "predicted": a.predicted,
                    "confidence": a.confidence,
                    "top": [[a.predicted, a.confidence], ["Spur" if a.predicted != "Spur" else "Short", 0.0]],
                }
                for a in answers
            ],
        )
        s.commit()
        return db.saved_id(row), answers


def promotion_records(settings: Settings) -> int:
    """A passed gate verdict for the candidate and the production model's stage history; returns the verdict."""
    with db.session(settings.catalog_url) as s:
        verdict = GateVerdict(
            model_version=CANDIDATE,
            kind="gray",
            production_version=PRODUCTION,
            passed=True,
            rules=[{"rule": f"blind accuracy on {BLIND}", "figure": 0.72, "limit": 0.6, "passed": True}],
            blind_sets=[BLIND],
            warnings=[{"label": "Pin_hole", "warning": "low recall", "message": "Pin_hole: recall 40.00% is low"}],
        )
        s.add(verdict)
        s.add(
            StageChange(
                model_version=PRODUCTION,
                kind="gray",
                from_stage="candidate",
                to_stage="production",
                by="alice (os:alice) [prefect:aoi]",
                reason="blind 0717 fine",
                at=T0 - timedelta(days=10),
            )
        )
        s.commit()
        return db.saved_id(verdict)


def drift(settings: Settings) -> list[str]:
    """Three gray checks (clean, drift on AOI-2 with an Evidently report, too few) and an open episode; returns
    the report files written under the reports folder."""
    folder = settings.reports_dir / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    overall, machine = folder / "drift-gray-20260302T080000-all.html", folder / "drift-gray-20260302T080000-AOI-2.html"
    overall.write_text("<html><body><h1>Evidently overall report</h1></body></html>")
    machine.write_text("<html><body><h1>Evidently AOI-2 report</h1></body></html>")
    with db.session(settings.catalog_url) as s:
        episode = DriftEpisode(kind="gray", open_kind="gray", opened_at=T0 + timedelta(days=1), machines=["AOI-2"])
        s.add(episode)
        s.flush()
        checks = [
            (0, False, {"AOI-1": {"samples": 300, "drift": False, "drift_share": 0.0, "reasons": []}}, None, None),
            (
                1,
                True,
                {
                    "AOI-1": {"samples": 310, "drift": False, "drift_share": 0.1, "reasons": []},
                    "AOI-2": {
                        "samples": 280,
                        "drift": True,
                        "drift_share": 0.6,
                        "unknown_rate": 0.3,
                        "reasons": ["brightness drifted"],
                        "report": str(machine),
                    },
                },
                str(overall),
                episode.id,
            ),
            (2, None, {}, None, None),
        ]
        for day, flag, machines, report, episode_id in checks:
            at = T0 + timedelta(days=day)
            s.add(
                DriftCheck(
                    kind="gray",
                    model_version=PRODUCTION,
                    window_start=at - timedelta(hours=1),
                    window_end=at,
                    samples=600 if flag is not None else 4,
                    reference_samples=500,
                    drifted_columns=["brightness"] if flag else [],
                    drift_share=0.4 if flag else 0.0,
                    unknown_rate=0.2,
                    reference_unknown_rate=0.1,
                    machines=machines,
                    drift=flag,
                    decision="drift: retraining triggered" if flag else "clean" if flag is False else "too few samples",
                    report_path=report,
                    episode_id=episode_id,
                    created_at=at,
                )
            )
        s.commit()
    return [str(overall), str(machine)]


def review_catalog(settings: Settings, threshold: float = 0.8) -> ReviewRows:
    """Everything the review pages show, on a fresh catalog."""
    datasets(settings)
    runs = training_runs(settings)
    model(settings, PRODUCTION, int(runs[8].id or 0), "production")
    model(settings, CANDIDATE, int(runs[10].id or 0), "candidate", threshold)
    evaluation_id, answers = evaluation(settings, CANDIDATE, threshold)
    promotion_records(settings)
    drift(settings)
    return ReviewRows(evaluation_id, answers, threshold, runs)
