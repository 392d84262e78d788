"""Small registered model versions for evaluation and promotion tests: trained in-process by the same loop Ray
runs (no Ray: its fixed start-up cost is tested in tests/training), registered like any training run."""

from __future__ import annotations

from pathlib import Path

import torch

from aoi.settings import Settings
from tests.flows.helpers import aoi, ingest
from tests.helpers import class_folder
from training import runs, steps
from training.loop import fit
from training.model import build_model
from training.params import TrainParams
from training.trainer import _loaders

GRAY = {"PASS": 8, "Open_circuit": 8, "Short": 8, "Mouse_bite": 8, "Spur": 8, "Spurious_copper": 8, "Pin_hole": 8}


def gray_data(tmp_path: Path, dataset: str = "g-v1", blind: str = "g-blind-0717", folders: dict = GRAY) -> None:
    """A training dataset version and one blind set of generated gray crops (all seven gray classes)."""
    ingest(class_folder(tmp_path / "train", folders), "--source", "gray")
    aoi("dataset", "build", dataset, "--source", "gray", "--seed", "1", "--split", "6:2:0")
    aoi(
        "dataset",
        "blind",
        blind,
        "--folder",
        str(class_folder(tmp_path / "blind", {k: 3 for k in folders}, seed=7)),
        "--source",
        "gray",
        "--date",
        "2026-07-17",
    )


def trained_model(settings: Settings, dataset: str = "g-v1", epochs: int = 1, seed: int = 0) -> str:
    """Train on ``dataset`` for ``epochs`` (0: an untrained network) and register the result as a candidate."""
    torch.manual_seed(seed)
    request = TrainParams(
        dataset=dataset, epochs=max(epochs, 1), per_class=8, batch_size=8, input_size=32, augment=False, seed=seed
    )
    spec, info = steps.prepare(settings, request)
    run_id = steps.start_run(settings, request, info)
    model = build_model(spec.arch, len(spec.taxonomy["fine"]), spec.prep.channels)
    history, states = [], []
    if epochs:
        train_loader, valid_loader, classes = _loaders(spec, 0, 1)
        history = fit(
            model,
            train_loader,
            valid_loader,
            spec.loop,
            torch.device("cpu"),
            classes,
            lambda epoch, metrics, state: states.append(state["model"]),
        )
    best = (
        history[-1]
        if history
        else {"epoch": 0, "mean_detection_rate": 0.0, "valid_accuracy": 0.0, "per_class_recall": []}
    )
    return runs.register(settings, run_id, spec, states[-1] if states else model.state_dict(), best, history)[
        "model_version"
    ]
