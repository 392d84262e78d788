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
        state = torch.load(f"{folder}/{CHECKPOINT_FILE}", weights_only=False)
    assert state["epoch"] == 2 and "fc.weight" in state["model"]
