"""Taxonomy, preprocessing, data, model and the loop on tiny generated data, without Ray."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aoi.preprocess import Preprocessing, ToneCalibration, decode, preprocess, to_tensor
from tests.helpers import encode
from tests.training.helpers import tiny_dataset
from training.data import Augment, BalancedSampler, ManifestDataset
from training.loop import LoopConfig, fit, native_mixed_precision
from training.model import ModelError, build_model
from training.taxonomy import Taxonomy, TaxonomyError


def test_shipped_taxonomies_map_every_fine_class_to_a_coarse_one():
    gray = Taxonomy.load("gray")
    assert (
        gray.fine[0] == "PASS" and gray.to_coarse("SPUR") == "REPAIRABLE" and gray.to_coarse("OPEN") == "NONREPAIRABLE"
    )
    assert Taxonomy.load("color").coarse_classes == ("REPAIRABLE", "NONREPAIRABLE")
    with pytest.raises(TaxonomyError, match="missing"):
        Taxonomy.from_dict({"fine": ["A", "B"], "coarse": {"A": "X"}})
    with pytest.raises(TaxonomyError, match="not a fine class"):
        gray.index("MISSING_HOLE")


def test_preprocessing_is_one_function_with_tone_calibration():
    arr = np.full((20, 30, 3), (100, 150, 200), dtype=np.uint8)
    data = encode(arr, fmt="PNG", mode="RGB")
    prep = Preprocessing(input_size=16, channels=3, mean=0.0, std=1.0)
    x = preprocess(data, prep)
    assert x.shape == (3, 16, 16) and torch.equal(x, to_tensor(decode(data, 3), prep))
    assert torch.allclose(x[:, 0, 0], torch.tensor([100, 150, 200]) / 255.0)
    calibrated = preprocess(data, prep, ToneCalibration(gains=(1.1, 1.0, 0.5), offsets=(0.0, 10.0, 100.0)))
    assert torch.allclose(calibrated[:, 0, 0], torch.tensor([110, 160, 200]) / 255.0)
    clipped = preprocess(data, prep, ToneCalibration(gains=(3.0, 1.0, 1.0), offsets=(0.0, -200.0, 0.0)))
    assert torch.allclose(clipped[:, 0, 0], torch.tensor([255, 0, 200]) / 255.0)  # clipped like a camera
    gray = preprocess(
        data,
        Preprocessing(input_size=16, channels=1, mean=0.0, std=1.0),
        ToneCalibration(gains=(9.0, 9.0, 9.0), gray_gain=0.5, gray_offset=1.0),
    )
    assert torch.allclose(gray[0, 0, 0], torch.tensor(0.5 * 141 + 1.0) / 255.0, atol=1e-3)  # gray: its own pair


def test_balanced_sampler_draws_n_per_class_and_shards_without_overlap():
    targets = [0] * 50 + [1] * 5 + [2] * 20
    sampler = BalancedSampler(targets, per_class=12, seed=1)
    drawn = list(sampler)
    assert sorted(np.bincount([targets[i] for i in drawn]).tolist()) == [12, 12, 12]
    sampler.set_epoch(1)
    assert list(sampler) != drawn
    shards = [list(BalancedSampler(targets, 12, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 18 and sorted(shards[0] + shards[1]) == sorted(drawn)


def test_models_build_for_each_architecture_and_refuse_unknown_ones():
    for arch in ("resnet18", "mobilenet_v3_small"):
        assert build_model(arch, 7, channels=1)(torch.zeros(2, 1, 64, 64)).shape == (2, 7)
    with pytest.raises(ModelError, match="unknown architecture"):
        build_model("vgg99", 3)


def fit_tiny(tmp_path, model, report=lambda *_: None, amp: bool | None = False) -> list[dict]:
    """``fit`` for 4 epochs on ``tiny_dataset``: 30 training images drawn 24 per class, 10 valid."""
    store, items = tiny_dataset(tmp_path)
    taxonomy = Taxonomy.from_dict({"fine": ["PASS", "OPEN"], "coarse": {"PASS": "PASS", "OPEN": "NG"}})
    prep = Preprocessing(input_size=32, channels=1)
    train = ManifestDataset(items[:30], store, taxonomy, prep, augment=Augment(flips=False, rot90=False))
    valid = ManifestDataset(items[30:], store, taxonomy, prep)
    return fit(
        model,
        DataLoader(train, batch_size=8, sampler=BalancedSampler(train.targets, 24)),
        DataLoader(valid, batch_size=16),
        LoopConfig(epochs=4, batch_size=8, lr=3e-3, per_class=24, amp=amp),
        torch.device("cpu"),
        2,
        report,
    )


def test_the_loop_learns_a_separable_problem_and_reports_every_epoch(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet18", 2, 1)
    reports = []
    history = fit_tiny(
        tmp_path, model, lambda epoch, metrics, state: reports.append((epoch, metrics["valid_accuracy"], sorted(state)))
    )
    assert [r[0] for r in reports] == [0, 1, 2, 3]
    assert reports[-1][2] == ["epoch", "model", "optimizer"]
    assert history[-1]["train_samples"] == 48
    assert history[-1]["valid_accuracy"] == 1.0 and history[-1]["mean_detection_rate"] == 1.0
    assert history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.parametrize("amp", [True, False, None])
def test_mixed_precision_trains_in_bfloat16_on_a_cpu_and_says_so(tmp_path, amp):
    """amp=None follows the CPU's bfloat16 support; the layers compute in bfloat16 only in training steps."""
    torch.manual_seed(0)
    model = build_model("resnet18", 2, 1)
    seen: dict[bool, set] = {}  # training mode -> dtypes of the first layer's output
    model.conv1.register_forward_hook(lambda m, i, out: seen.setdefault(m.training, set()).add(out.dtype))
    history = fit_tiny(tmp_path, model, amp=amp)
    expected = native_mixed_precision(torch.device("cpu")) if amp is None else amp
    assert [h["mixed_precision"] for h in history] == [expected] * 4
    assert seen[True] == {torch.bfloat16 if expected else torch.float32}
    assert seen[False] == {torch.float32}  # evaluation, like serving, in fp32
    assert history[-1]["valid_accuracy"] == 1.0


def test_cpu_workers_ask_for_what_the_cluster_nodes_can_hold():
    from training.trainer import cpus_per_worker

    assert cpus_per_worker([1, 1], 2) == 1  # the loopback cluster of the tests: one worker per node
    assert cpus_per_worker([16], 2) == 8  # one big node: an even share
    assert cpus_per_worker([0, 8, 8], 2) == 8  # a head that schedules nothing, two worker nodes
    assert cpus_per_worker([3, 1], 2) == 1  # 2 + 2 would not fit: 3 holds one worker of 2, 1 holds none
    assert cpus_per_worker([4], 1) == 4 and cpus_per_worker([1], 3) == 1  # too few CPUs: Ray queues the rest
