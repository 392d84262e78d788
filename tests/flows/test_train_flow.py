"""`aoi train` through the CLI: refusals before any worker starts, and one real Ray run that registers a model."""

from __future__ import annotations

import pytest
import torch

from tests.flows.helpers import aoi, gray_dataset
from tests.helpers import class_folder

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(scope="module")
def ray_session():
    yield
    import ray

    ray.shutdown()


def test_bad_requests_are_refused_before_any_worker_starts(settings, tmp_path):
    aoi(
        "dataset",
        "blind",
        "blind-1",
        "--folder",
        str(class_folder(tmp_path / "blind", {"PASS": 2}, seed=9)),
        "--source",
        "gray",
    )
    gray_dataset(tmp_path / "a", "tiny", {"PASS": 3, "Spur": 3}, split="8:1:1")
    gray_dataset(tmp_path / "b", "two-classes", {"PASS": 30, "Spur": 30})
    cases = {
        ("--dataset", "tiny"): "dataset tiny has no valid images",
        ("--dataset", "blind-1"): "blind sets evaluate models, they never train them",
        ("--dataset", "nope"): "no dataset version nope",
        ("--dataset", "two-classes", "--arch", "vgg99"): "'vgg99' is not one of 'resnet18'",
        ("--dataset", "two-classes"): "classes with no training images in two-classes: OPEN, SHORT, NICK",
    }
    if not torch.cuda.is_available():
        cases[("--dataset", "two-classes", "--gpu")] = "no CUDA device"
    for args, message in cases.items():
        assert message in aoi("train", *args, code=2)["error"]
    assert aoi("runs")["runs"] == [], "a refused request leaves no run record"


@pytest.mark.slow
def test_a_ray_run_trains_records_and_registers_a_candidate_model(settings, tmp_path, ray_session):
    version = gray_dataset(tmp_path)
    result = aoi(
        "train", "--dataset", "g-v1", "--epochs", "2", "--per-class", "4", "--batch-size", "8", "--input-size", "32"
    )
    assert result["status"] == "succeeded" and result["model_version"] == f"gray-r{result['run_id']}"
    assert 0.0 <= result["mean_detection_rate"] <= 1.0 and result["duration_s"] > 0
    assert (result["labelled_images"], result["label_kinds"]) == (version["images"], 7)
    models = aoi("models")
    assert [(m["version"], m["kind"], m["stage"]) for m in models] == [(result["model_version"], "gray", "candidate")]
    runs = aoi("runs")
    assert [r["run_id"] for r in runs["runs"]] == [result["run_id"]] and runs["trend"].endswith(".png")
    assert (settings.home / "bentoml").is_dir() and result["curves"].endswith(".png")

    from training.registry import load_model

    model, meta = load_model(settings, models[0]["bento_tag"])
    assert meta["taxonomy"]["fine"][0] == "PASS" and meta["preprocessing"]["input_size"] == 32
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 7)
