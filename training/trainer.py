"""Ray Train: the per-worker wrapper around ``training.loop.fit`` and a small trainer builder.

Each worker builds its data (balanced sampler sharded by rank), wraps the model for DDP
(``prepare_model``), resumes from the last checkpoint when Ray restarts it, and reports every epoch's
metrics with a checkpoint (rank 0 writes it, the others report none). ``RAY_ADDRESS`` joins an existing
cluster (with its token, AOI_RAY__AUTH_TOKEN); without it ``ray.init`` starts a local one on loopback.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aoi.preprocess import Preprocessing, ToneCalibration
from aoi.settings import Settings
from training.checkpoint import load_state
from training.loop import LoopConfig

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class TrainSpec:
    """Everything a training run needs, as plain data a Ray worker can receive."""

    store_dir: str
    taxonomy: dict  # training.taxonomy.Taxonomy.as_dict()
    splits: dict[str, list[tuple[str, str]]]  # split -> [(sha256, label)]
    arch: str = "resnet18"
    prep: Preprocessing = field(default_factory=Preprocessing)
    loop: LoopConfig = field(default_factory=LoopConfig)
    augment: bool = True
    tone_jitter: float = 0.0
    workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1  # CPU workers: torch threads per worker (Ray would otherwise pin each to one)
    max_failures: int = 1
    # sha256 -> calibration of the image's machine when it was captured (Feast, point in time; training_v1)
    calibration: dict[str, ToneCalibration] = field(default_factory=dict)


def _loaders(spec: TrainSpec, rank: int, world_size: int):
    from torch.utils.data import DataLoader

    from aoi.store import ImageStore
    from training.data import Augment, BalancedSampler, ManifestDataset
    from training.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_dict(spec.taxonomy)
    store = ImageStore(Path(spec.store_dir))
    train = ManifestDataset(
        spec.splits["train"],
        store,
        taxonomy,
        spec.prep,
        augment=Augment(tone_jitter=spec.tone_jitter, mean=spec.prep.mean, std=spec.prep.std) if spec.augment else None,
        seed=spec.loop.seed + rank,
        calibration=spec.calibration,
    )
    valid = ManifestDataset(spec.splits["valid"], store, taxonomy, spec.prep, calibration=spec.calibration)
    sampler = BalancedSampler(train.targets, spec.loop.per_class, spec.loop.seed, rank=rank, world_size=world_size)
    return (
        DataLoader(train, batch_size=spec.loop.batch_size, sampler=sampler),
        DataLoader(valid, batch_size=spec.loop.batch_size * 2),
        len(taxonomy.fine),
    )


def train_loop_per_worker(config: dict) -> dict:
    """Runs inside each Ray Train worker."""
    import ray.train
    import ray.train.torch

    from training.loop import fit
    from training.model import build_model

    spec: TrainSpec = config["spec"]
    if not spec.use_gpu:
        torch.set_num_threads(spec.cpus_per_worker)
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    train_loader, valid_loader, num_classes = _loaders(spec, rank, world_size)
    # Our balanced, rank-sharded sampler stays: Ray must not swap in its DistributedSampler.
    train_loader = ray.train.torch.prepare_data_loader(train_loader, add_dist_sampler=False)
    valid_loader = ray.train.torch.prepare_data_loader(valid_loader, add_dist_sampler=False)
    model = build_model(spec.arch, num_classes, spec.prep.channels)
    start_epoch, optimizer_state = 0, None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # a restarted worker group goes on from the last epoch it reported
        with checkpoint.as_directory() as folder:
            state = load_state(Path(folder) / CHECKPOINT_FILE)
        model.load_state_dict(state["model"])
        start_epoch, optimizer_state = state["epoch"] + 1, state["optimizer"]
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()

    def report(epoch: int, metrics: dict, state: dict) -> None:
        with tempfile.TemporaryDirectory() as folder:
            saved = None
            if rank == 0:
                torch.save(state, Path(folder) / CHECKPOINT_FILE)
                saved = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=saved)

    history = fit(
        model,
        train_loader,
        valid_loader,
        spec.loop,
        device,
        num_classes,
        report,
        start_epoch=start_epoch,
        optimizer_state=optimizer_state,
    )
    return {"history": history, "start_epoch": start_epoch}


def build_trainer(spec: TrainSpec, run_name: str, storage_path: Path, callbacks: list | None = None):
    """A TorchTrainer for ``spec``: ``workers`` workers, GPUs if asked, restarts on failure, checkpoints kept;
    ``callbacks`` (Ray Train ``UserCallback``s, e.g. the progress bar's) run on Ray's controller."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec},
        scaling_config=ScalingConfig(
            num_workers=spec.workers,
            use_gpu=spec.use_gpu,
            resources_per_worker=None if spec.use_gpu else {"CPU": spec.cpus_per_worker},
        ),
        run_config=RunConfig(
            name=run_name,  # unique per run: reusing a name would restore an old run
            callbacks=callbacks or [],
            storage_path=str(storage_path),
            failure_config=FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute="mean_detection_rate", checkpoint_score_order="max"
            ),
        ),
    )


class RayAuthError(ValueError):
    """Ray's token authentication cannot be set up as asked; the message says what to set."""


def ray_auth_env(settings: Settings, joining: bool) -> dict[str, str]:
    """The RAY_AUTH_* variables a driver needs: token authentication always on, with the cluster's token
    (AOI_RAY__AUTH_TOKEN, else Ray's own RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH). A local Ray without one gets a
    fresh random token that lives only in this process's environment: Ray would otherwise write one to
    ~/.ray/auth_token, outside AOI_HOME, and reuse it for every later cluster of that user."""
    env = {"RAY_AUTH_MODE": "token"}
    if settings.ray.auth_token is not None:
        env["RAY_AUTH_TOKEN"] = settings.ray.auth_token.get_secret_value()
    elif not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        if joining:
            raise RayAuthError(
                f"the Ray cluster at RAY_ADDRESS={os.environ['RAY_ADDRESS']} needs its token: set "
                "AOI_RAY__AUTH_TOKEN (the RAY_AUTH_TOKEN its nodes were started with)"
            )
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    return env


def ensure_ray(num_cpus: int | None = None, settings: Settings | None = None) -> None:
    """Join the cluster at RAY_ADDRESS, or start a local Ray (no dashboard: it needs extra packages); either way
    with token authentication, and a local Ray listens on loopback only."""
    import ray

    from aoi.settings import get_settings

    if ray.is_initialized():
        return
    joining = bool(os.environ.get("RAY_ADDRESS"))
    os.environ.update(ray_auth_env(settings or get_settings(), joining))
    _reload_ray_auth()
    if joining:
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        return
    # Ray binds its servers (GCS, raylet, object manager, workers) to loopback only when the node's address is
    # 127.0.0.1, and on Linux it swaps 127.0.0.1 for the machine's address unless multi-host clusters are off
    # (Ray's own switch, named for the platforms where it is off by default). Off only while the node starts.
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    try:
        # address="local": always a new local instance; plain ray.init() would join whatever cluster a
        # `ray start` on this host last announced (a stale or foreign one).
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved[0]
        if saved[1] is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved[1]


def _reload_ray_auth() -> None:
    """Ray reads RAY_AUTH_MODE and the token once per process and caches them: make it read them again (what
    ray.init itself does when it turns token authentication on)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def cluster_info() -> dict:
    """Where training runs: the cluster's address and its live nodes, CPUs and GPUs (kept in the run record)."""
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    node_cpus = [int(n["Resources"].get("CPU", 0)) for n in alive]
    return {
        "address": ray.get_runtime_context().gcs_address,
        "joined": bool(os.environ.get("RAY_ADDRESS")),
        "nodes": len(alive),
        "cpus": sum(node_cpus),
        "gpus": int(sum(n["Resources"].get("GPU", 0) for n in alive)),
        "node_cpus": node_cpus,
    }


def cpus_per_worker(node_cpus: list[int], workers: int) -> int:
    """The most CPUs each of ``workers`` CPU workers can ask for and all still fit on the cluster's nodes (a
    worker lives on one node). Read from the cluster, not from the driver's host: a driver on a small pod, or on
    a big machine joined to small nodes, would otherwise ask for CPUs no node has and wait forever."""
    for cpus in range(max(node_cpus, default=1), 0, -1):
        if sum(n // cpus for n in node_cpus) >= workers:
            return cpus
    return 1  # fewer CPUs than workers: Ray queues them until nodes join
