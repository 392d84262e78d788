"""Model versions: the best checkpoint saved in the BentoML model store with everything serving needs to
reproduce the training-time tensors (taxonomy, preprocessing, input size, architecture) and its metrics."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import ModelVersion
from aoi.preprocess import Preprocessing
from aoi.settings import Settings
from training.taxonomy import Taxonomy


class RegistryError(ValueError):
    """A model version that is not in the catalog, or a threshold out of range; the message says which."""


def bentoml_env(settings: Settings) -> None:
    """BentoML reads BENTOML_HOME lazily: point it under AOI_HOME before the first import."""
    os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml"))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


def model_store(settings: Settings):
    """The BentoML model store of this AOI_HOME (``AOI_HOME/bentoml/models``), named explicitly on every call:
    BentoML resolves its own default store once per process, which would pin a process to the first AOI_HOME."""
    bentoml_env(settings)
    from training.bentoml_private import ModelStore

    folder = settings.home / "bentoml" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(folder))


def save_model(
    settings: Settings,
    *,
    kind: str,
    version: str,
    state_dict: dict,
    taxonomy: dict,
    prep: dict,
    arch: str,
    metrics: dict,
) -> str:
    """Store the model; returns its BentoML tag (``aoi-gray:<id>``)."""
    bentoml_env(settings)
    import bentoml

    metadata = {
        "version": version,
        "kind": kind,
        "arch": arch,
        "taxonomy": taxonomy,
        "preprocessing": prep,
        "input_size": prep["input_size"],
        "metrics": metrics,
    }
    with bentoml.models.create(
        f"aoi-{kind}", labels={"kind": kind, "version": version}, metadata=metadata, _model_store=model_store(settings)
    ) as model:
        torch.save(state_dict, os.path.join(model.path, "model.pt"))
        with open(os.path.join(model.path, "aoi.json"), "w") as fh:
            json.dump(metadata, fh, indent=2)
    return str(model.tag)


def load_model(settings: Settings, tag: str):
    """(nn.Module in eval mode, metadata) of a stored model version."""
    bentoml_env(settings)
    import bentoml

    from training.checkpoint import load_state
    from training.model import build_model

    stored = bentoml.models.get(tag, _model_store=model_store(settings))
    meta = stored.info.metadata
    model = build_model(meta["arch"], len(meta["taxonomy"]["fine"]), meta["preprocessing"]["channels"])
    model.load_state_dict(load_state(os.path.join(stored.path, "model.pt")))
    return model.eval(), meta


@dataclass
class LoadedModel:
    """A model version ready to predict: its catalog row, network, taxonomy and preprocessing."""

    row: ModelVersion
    model: torch.nn.Module
    taxonomy: Taxonomy
    prep: Preprocessing


def model_row(settings: Settings, version: str) -> ModelVersion:
    """The catalog row of a model version."""
    with db.session(settings.catalog_url) as s:
        row = s.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    if row is None:
        raise RegistryError(f"no model version {version} (aoi models lists them)")
    return row


def load_model_version(settings: Settings, version: str) -> LoadedModel:
    """The one way to load a model version: evaluation, serving and monitoring all call this."""
    row = model_row(settings, version)
    model, meta = load_model(settings, row.bento_tag)
    return LoadedModel(row, model, Taxonomy.from_dict(meta["taxonomy"]), Preprocessing(**meta["preprocessing"]))


def threshold_of(settings: Settings, row: ModelVersion, threshold: float | None) -> float:
    """The asked threshold, else the model's calibrated one, else the settings' default."""
    if threshold is not None:
        if not 0.0 < threshold <= 1.0:
            raise RegistryError(f"threshold must be in (0, 1], not {threshold}")
        return threshold
    return row.threshold if row.threshold is not None else settings.evaluation.unknown_threshold
