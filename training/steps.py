"""The ``train`` flow's steps: check the request before any worker starts, record the run, fit with Ray, keep
the best checkpoint as a candidate model version (training/runs.py keeps the records)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlmodel import func, select

from aoi.catalog import db
from aoi.catalog.models import Image, TrainingRun
from aoi.preprocess import Preprocessing
from aoi.settings import Settings
from datasets.versions import DatasetError, describe, manifest
from training import runs
from training.loop import LoopConfig
from training.model import ARCHITECTURES
from training.params import TrainParams, TrainResult
from training.runs import TrainingError
from training.taxonomy import Taxonomy, TaxonomyError
from training.trainer import TrainSpec


def prepare(settings: Settings, req: TrainParams) -> tuple[TrainSpec, dict]:
    """The TrainSpec for ``req``, or TrainingError: unknown dataset or architecture, empty splits, a class
    with no training images, --gpu without a GPU (TrainParams bounds the numbers)."""
    import torch

    if req.arch not in ARCHITECTURES:
        raise TrainingError(f"unknown architecture {req.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if req.gpu and not torch.cuda.is_available():
        raise TrainingError("--gpu asked for, but no CUDA device is visible on this machine")
    try:
        version = describe(settings.catalog_url, req.dataset)
    except DatasetError as err:
        raise TrainingError(str(err)) from None
    if version["role"] != "train":
        raise TrainingError(f"{req.dataset} is a blind set: blind sets evaluate models, they never train them")
    taxonomy = Taxonomy.load(version["source"])
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": []}
    for row in manifest(settings.catalog_url, req.dataset):
        splits[row["split"]].append((row["sha256"], row["label"]))
    for name in ("train", "valid"):
        if not splits[name]:
            raise TrainingError(f"dataset {req.dataset} has no {name} images")
    try:
        for _, label in splits["train"] + splits["valid"]:
            taxonomy.index(label)
    except TaxonomyError as err:
        raise TrainingError(str(err)) from None
    present = {label for _, label in splits["train"]}
    empty = [c for c in taxonomy.fine if c not in present]
    if empty:
        raise TrainingError(f"classes with no training images in {req.dataset}: {', '.join(empty)}")
    from features.calibration import for_images  # point in time, per image's machine and capture time

    calibration = for_images(settings, [sha for rows in splits.values() for sha, _ in rows])
    spec = TrainSpec(
        store_dir=str(settings.store_dir),
        taxonomy=taxonomy.as_dict(),
        splits=splits,
        arch=req.arch,
        prep=Preprocessing(input_size=req.input_size, channels=1 if version["source"] == "gray" else 3),
        loop=LoopConfig(
            epochs=req.epochs,
            batch_size=req.batch_size,
            lr=req.lr,
            per_class=req.per_class,
            seed=req.seed,
            amp=req.amp,
            channels_last=req.gpu,
        ),
        augment=req.augment,
        tone_jitter=req.tone_jitter,
        workers=req.workers,
        use_gpu=req.gpu,
        calibration=calibration,  # cpus_per_worker: from the cluster, once training joins it (fit)
    )
    with db.session(settings.catalog_url) as s:
        total = s.exec(select(func.count()).select_from(Image).where(Image.source == version["source"])).one()
    info = {
        "kind": version["source"],
        "labelled_images": version["images"],
        "total_images": total,
        "label_kinds": len(present),
        "calibrated_images": len(calibration),
    }
    return spec, info


def start_run(settings: Settings, req: TrainParams, info: dict) -> int:
    runs.close_abandoned(settings)
    with db.session(settings.catalog_url) as s:
        config = {
            **req.model_dump(),
            "calibrated_images": info.get("calibrated_images", 0),  # machine-calibrated inputs
            "driver": runs.driver(),
        }
        run = TrainingRun(
            kind=info["kind"],
            dataset=req.dataset,
            arch=req.arch,
            config=config,
            labelled_images=info["labelled_images"],
            total_images=info["total_images"],
            label_kinds=info["label_kinds"],
        )
        s.add(run)
        s.commit()
        return run.id


def fit(settings: Settings, spec: TrainSpec, run_id: int):
    """Run the Ray trainer; returns Ray's Result (raises when training failed past its retries)."""
    from training.trainer import RayAuthError, build_trainer, cluster_info, cpus_per_worker, ensure_ray

    try:
        ensure_ray(settings=settings)
    except RayAuthError as err:
        raise TrainingError(str(err)) from None
    cluster = cluster_info()
    if not spec.use_gpu:
        spec = replace(spec, cpus_per_worker=cpus_per_worker(cluster["node_cpus"], spec.workers))
    with db.session(settings.catalog_url) as s:  # the record says where the run trains while it runs
        run = s.get(TrainingRun, run_id)
        run.config = {**run.config, "ray_cluster": cluster, "cpus_per_worker": spec.cpus_per_worker}
        s.add(run)
        s.commit()
    from training.progress import TrainingProgress

    with TrainingProgress(spec.loop.epochs, label=f"training run {run_id} ({spec.arch})") as progress:
        trainer = build_trainer(
            spec, f"run-{run_id}-{uuid.uuid4().hex[:8]}", settings.home / "ray", callbacks=[progress.callback]
        )
        result = trainer.fit()
    if result.error is not None:
        raise result.error
    return result


def record(settings: Settings, run_id: int, spec: TrainSpec, result) -> TrainResult:
    """Keep the best checkpoint of a Ray result as a candidate model version and finish the run record."""
    state, best = runs.best_checkpoint(result)
    history = result.return_value["history"] if result.return_value else []
    return TrainResult(**runs.register(settings, run_id, spec, state["model"], best, history))


def fail_run(settings: Settings, run_id: int, error: BaseException) -> None:
    with db.session(settings.catalog_url) as s:
        run = s.get(TrainingRun, run_id)
        run.status = "stopped" if isinstance(error, KeyboardInterrupt) else "failed"
        run.error = f"{type(error).__name__}: {error}"[:2000]
        runs.finish(run)
        s.add(run)
        s.commit()
