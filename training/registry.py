"""Model versions: the best checkpoint saved in the BentoML model store with everything serving needs to
reproduce the training-time tensors (taxonomy, preprocessing, input size, architecture) and its metrics."""

from __future__ import annotations

import json
import os

import torch

from aoi.settings import Settings


def bentoml_env(settings: Settings) -> None:
    """BentoML reads BENTOML_HOME lazily: point it under AOI_HOME before the first import."""
    os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml"))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


def model_store(settings: Settings):
    """The BentoML model store of this AOI_HOME (``AOI_HOME/bentoml/models``), named explicitly on every call:
    BentoML resolves its own default store once per process, which would pin a process to the first AOI_HOME."""
    bentoml_env(settings)
    from bentoml._internal.models import ModelStore

    folder = settings.home / "bentoml" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(folder))


def save_model(settings: Settings, *, kind: str, version: str, state_dict: dict, taxonomy: dict, prep: dict,
               arch: str, metrics: dict) -> str:  # fmt: skip
    """Store the model; returns its BentoML tag (``aoi-gray:<id>``)."""
    bentoml_env(settings)
    import bentoml

    metadata = {"version": version, "kind": kind, "arch": arch, "taxonomy": taxonomy, "preprocessing": prep,
                "input_size": prep["input_size"], "metrics": metrics}  # fmt: skip
    with bentoml.models.create(f"aoi-{kind}", labels={"kind": kind, "version": version}, metadata=metadata,
                               _model_store=model_store(settings)) as model:  # fmt: skip
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
