"""One real Ray Train run on CPU with 2 workers: trains, checkpoints, reports every epoch."""

from __future__ import annotations

import pytest
import torch

from training.loop import LoopConfig
from training.preprocess import Preprocessing
from training.taxonomy import Taxonomy
from training.trainer import CHECKPOINT_FILE, TrainSpec, build_trainer, ensure_ray
from tests.training.test_training_core import tiny_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ensure_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_two_cpu_workers_train_checkpoint_and_report(tmp_path, ray_local):
    store, items = tiny_dataset(tmp_path)
    taxonomy = Taxonomy.from_dict({"fine": ["PASS", "OPEN"], "coarse": {"PASS": "PASS", "OPEN": "NG"}})
    spec = TrainSpec(store_dir=str(store.root), taxonomy=taxonomy.as_dict(),
                     splits={"train": items[:30], "valid": items[30:]}, prep=Preprocessing(input_size=32),
                     loop=LoopConfig(epochs=3, batch_size=8, lr=3e-3, per_class=24), augment=False, workers=2)  # fmt: skip
    result = build_trainer(spec, "test-run", tmp_path / "ray").fit()
    assert result.error is None
    assert result.metrics["epoch"] == 2 and 0.0 <= result.metrics["mean_detection_rate"] <= 1.0
    history = result.return_value["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[-1]["train_samples"] == 24  # 48 balanced draws per epoch, half per worker
    with result.checkpoint.as_directory() as folder:
        state = torch.load(f"{folder}/{CHECKPOINT_FILE}", weights_only=True)
    assert state["epoch"] == 2 and "fc.weight" in state["model"]


def test_a_worker_killed_mid_epoch_resumes_from_its_last_checkpoint(tmp_path, ray_local):
    """SIGKILL the training worker process once a checkpoint is reported; FailureConfig(max_failures=1)
    restarts the worker group, which must go on from that checkpoint, not from epoch 0."""
    import os
    import signal
    import threading
    import time

    import psutil

    store, items = tiny_dataset(tmp_path)
    taxonomy = Taxonomy.from_dict({"fine": ["PASS", "OPEN"], "coarse": {"PASS": "PASS", "OPEN": "NG"}})
    spec = TrainSpec(store_dir=str(store.root), taxonomy=taxonomy.as_dict(),
                     splits={"train": items[:30], "valid": items[30:]}, prep=Preprocessing(input_size=32),
                     loop=LoopConfig(epochs=5, batch_size=16, per_class=400), augment=False, workers=1,
                     cpus_per_worker=2, max_failures=1)  # fmt: skip
    out: dict = {}
    runner = threading.Thread(target=lambda: out.setdefault("result", build_trainer(spec, "killed", tmp_path / "ray").fit()))
    runner.start()
    deadline, killed = time.monotonic() + 240, None
    while runner.is_alive() and time.monotonic() < deadline and killed is None:
        if list((tmp_path / "ray").rglob("checkpoint_*")):
            time.sleep(2.5)  # past the upload of that checkpoint, into the next epoch
            workers = [p for p in psutil.process_iter(["name"]) if "RayTrainWorker" in (p.info["name"] or "")]
            if workers:
                killed = workers[0].pid
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    runner.join(timeout=300)
    assert killed is not None, "no worker was killed: the test proves nothing"
    result = out["result"]
    assert result.error is None
    assert result.return_value["start_epoch"] >= 1, "the restarted worker began from scratch"
    assert [h["epoch"] for h in result.return_value["history"]][-1] == 4
