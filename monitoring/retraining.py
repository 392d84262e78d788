"""What a retraining does, decided from the catalog: the production model of the kind is the starting point;
its dataset version becomes the parent of the new one and its training settings are reused. New labelled
batches come from the inbox: ``<inbox>/<kind>/<batch>`` where a batch is a folder or .zip of class folders
(format ``folder``) or a CSV manifest (format ``csv``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import DatasetVersion, ModelVersion, TrainingRun, utcnow
from aoi.settings import Settings
from training.params import RETRAINED, TrainParams


class RetrainError(ValueError):
    """A retraining that cannot start; the message says why."""


@dataclass(frozen=True)
class Plan:
    kind: str
    production_version: str
    parent_dataset: str
    dataset: str  # the new version's name
    spec: str | None  # the tone spec the parent was validated against: the new images are validated too
    dataset_options: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # the production run's TrainParams but the dataset
    batches: list[tuple[str, str]] = field(default_factory=list)  # (path, format) from the inbox

    def train_params(self, dataset: str) -> TrainParams:
        return TrainParams(dataset=dataset, **self.training)

    def as_dict(self) -> dict:
        return self.__dict__ | {"batches": [{"path": p, "format": f} for p, f in self.batches]}


def inbox_batches(settings: Settings, kind: str) -> list[tuple[str, str]]:
    folder = settings.inbox_dir / kind
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or entry.suffix.lower() == ".zip":
            found.append((str(entry), "folder"))
        elif entry.suffix.lower() == ".csv":
            found.append((str(entry), "csv"))
    return found


def plan(settings: Settings, kind: str, at: datetime | None = None) -> Plan:
    with db.session(settings.catalog_url) as s:
        model = s.exec(
            select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.stage == "production")
        ).first()
        if model is None:
            raise RetrainError(f"no production {kind} model to retrain from: train and promote one first (aoi stages)")
        run = db.get_row(s, TrainingRun, model.run_id)
        parent = s.exec(select(DatasetVersion).where(DatasetVersion.name == model.dataset)).first()
    if parent is None:
        raise RetrainError(f"{model.version}'s dataset version {model.dataset} is not in the catalog")
    stamp = (at or utcnow()).strftime("%Y%m%d%H%M%S")
    return Plan(
        kind=kind,
        production_version=model.version,
        parent_dataset=parent.name,
        dataset=f"{parent.name}-r{stamp}"[:128],
        spec=parent.spec_key,
        dataset_options={
            "per_class": parent.per_class,
            "split": parent.split or "8:1:1",
            "group_by": parent.group_by or "source_image",
            "seed": parent.seed,
        },
        training={k: run.config[k] for k in RETRAINED if k in run.config},
        batches=inbox_batches(settings, kind),
    )
