"""Training runs in the catalog: the run record from start to its candidate model version, runs
whose driver died, and the run and model listings."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import ModelVersion, TrainingRun, utcnow
from aoi.settings import Settings
from training.taxonomy import Taxonomy
from training.trainer import CHECKPOINT_FILE, TrainSpec


class TrainingError(ValueError):
    """A training request refused before any worker starts; the message says why."""


def best_checkpoint(result) -> tuple[dict, dict]:
    """(state, metrics) of the checkpoint with the best mean detection rate."""
    from training.checkpoint import load_state

    checkpoints = result.best_checkpoints or [(result.checkpoint, result.metrics)]
    checkpoint, metrics = max(checkpoints, key=lambda pair: pair[1].get("mean_detection_rate", 0.0))
    with checkpoint.as_directory() as folder:
        state = load_state(f"{folder}/{CHECKPOINT_FILE}")
    return state, metrics


def test_split_metrics(spec: TrainSpec, state_dict: dict) -> dict:
    """Accuracy and mean detection rate of the kept model on the dataset version's test split (if any).

    Reported beside the run, never used to choose it: the valid split picks the epoch, blind sets judge."""
    import torch
    from torch.utils.data import DataLoader

    from aoi.store import ImageStore
    from training.data import ManifestDataset
    from training.loop import evaluate
    from training.model import build_model

    if not spec.splits.get("test"):
        return {}
    taxonomy = Taxonomy.from_dict(spec.taxonomy)
    model = build_model(spec.arch, len(taxonomy.fine), spec.prep.channels)
    model.load_state_dict(state_dict)
    data = ManifestDataset(
        spec.splits["test"], ImageStore(Path(spec.store_dir)), taxonomy, spec.prep, calibration=spec.calibration
    )
    metrics = evaluate(model, DataLoader(data, batch_size=256), torch.device("cpu"), len(taxonomy.fine))
    return {
        "test_accuracy": metrics["valid_accuracy"],
        "test_mean_detection_rate": metrics["mean_detection_rate"],
        "test_images": len(data),
    }


def register(
    settings: Settings, run_id: int, spec: TrainSpec, state_dict: dict, best: dict, history: list[dict]
) -> dict:
    """Save ``state_dict`` (the epoch ``best`` describes) as a candidate model version; finish the run record."""
    from training.curves import training_curves
    from training.registry import save_model

    with db.session(settings.catalog_url) as s:
        run = db.get_row(s, TrainingRun, run_id)
        version = f"{run.kind}-r{run_id}"
        metrics = {
            "mean_detection_rate": best["mean_detection_rate"],
            "valid_accuracy": best["valid_accuracy"],
            "per_class_recall": best["per_class_recall"],
            "epoch": best["epoch"],
            **test_split_metrics(spec, state_dict),
        }
        tag = save_model(
            settings,
            kind=run.kind,
            version=version,
            state_dict=state_dict,
            taxonomy=spec.taxonomy,
            prep=spec.prep.as_dict(),
            arch=spec.arch,
            metrics=metrics,
        )
        s.add(
            ModelVersion(
                version=version,
                kind=run.kind,
                run_id=run_id,
                dataset=run.dataset,
                arch=run.arch,
                bento_tag=tag,
                metrics=metrics,
            )
        )
        run.status, run.model_version = "succeeded", version
        run.mean_detection_rate, run.valid_accuracy = metrics["mean_detection_rate"], metrics["valid_accuracy"]
        run.epochs = [{k: v for k, v in h.items() if k != "confusion"} for h in history]
        run.curves_path = str(
            training_curves(
                run.epochs,
                settings.reports_dir / "training" / f"run-{run_id}.png",
                f"run {run_id}: {run.arch} on {run.dataset}",
            )
        )
        finish(run)
        s.add(run)
        s.commit()
        return {**run_summary(run), **{k: v for k, v in metrics.items() if k.startswith("test_")}}


def driver() -> dict:
    """The process that drives a run: a run whose driver is gone can never record its result."""
    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def _driver_alive(recorded: dict) -> bool:
    import psutil

    try:  # the start time tells a recycled pid from the driver itself
        return psutil.Process(recorded["pid"]).create_time() == recorded["started"]
    except (psutil.Error, KeyError, TypeError):
        return False


def close_abandoned(settings: Settings) -> list[int]:
    """Mark failed the runs still 'running' whose driver process on this host has ended (killed, crashed, the
    machine restarted); returns their ids. Runs driven from other hosts are left to those hosts."""
    closed = []
    with db.session(settings.catalog_url) as s:
        for run in s.exec(select(TrainingRun).where(TrainingRun.status == "running")).all():
            recorded = run.config.get("driver") or {}
            if recorded.get("host") != socket.gethostname() or _driver_alive(recorded):
                continue
            run.status = "failed"
            run.error = (
                f"the training process (pid {recorded.get('pid')} on {recorded.get('host')}) ended without "
                f"recording a result: killed or crashed"
            )
            finish(run)
            s.add(run)
            closed.append(db.saved_id(run))
        s.commit()
    return closed


def finish(run: TrainingRun) -> None:
    run.finished_at = utcnow()
    run.duration_s = round((run.finished_at - run.started_at).total_seconds(), 2)


def run_summary(run: TrainingRun) -> dict:
    return {
        "run_id": run.id,
        "model_version": run.model_version,
        "status": run.status,
        "kind": run.kind,
        "dataset": run.dataset,
        "arch": run.arch,
        "mean_detection_rate": run.mean_detection_rate,
        "valid_accuracy": run.valid_accuracy,
        "labelled_images": run.labelled_images,
        "total_images": run.total_images,
        "label_kinds": run.label_kinds,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at and run.finished_at.isoformat(),
        "duration_s": run.duration_s,
        "curves": run.curves_path,
        "error": run.error,
        "ray_cluster": run.config.get("ray_cluster"),
    }


def runs(settings: Settings, limit: int | None = None) -> list[dict]:
    close_abandoned(settings)
    with db.session(settings.catalog_url) as s:
        query = select(TrainingRun).order_by(col(TrainingRun.id).desc())
        rows = s.exec(query.limit(limit) if limit else query).all()
    return [run_summary(r) for r in reversed(rows)]


def models(settings: Settings) -> list[dict]:
    with db.session(settings.catalog_url) as s:
        rows = s.exec(select(ModelVersion).order_by(col(ModelVersion.id))).all()
    return [
        {
            "version": m.version,
            "kind": m.kind,
            "stage": m.stage,
            "arch": m.arch,
            "dataset": m.dataset,
            "bento_tag": m.bento_tag,
            "mean_detection_rate": m.metrics.get("mean_detection_rate"),
            "valid_accuracy": m.metrics.get("valid_accuracy"),
            "threshold": m.threshold,
            "stage_changed_by": m.stage_changed_by,
            "stage_reason": m.stage_reason,
            "created_at": m.created_at.isoformat(),
        }
        for m in rows
    ]
