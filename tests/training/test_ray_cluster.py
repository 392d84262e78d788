"""A multi-process Ray cluster on loopback: a head (`ray start --head`) and one worker node
(`ray start --address`), one CPU each, joined by `aoi train` through RAY_ADDRESS.

Two training workers of one CPU each cannot fit on one of these nodes, so a run that succeeds trained on
both; the run record says which cluster it ran on and how many nodes it saw.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.helpers import aoi, gray_dataset
from tests.processes import CLUSTER_ENV, loopback_ray

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


@pytest.fixture
def loopback_cluster():
    with loopback_ray() as address:
        yield address


def test_aoi_train_joins_a_loopback_cluster_through_RAY_ADDRESS(settings, tmp_path, loopback_cluster, monkeypatch):
    gray_dataset(tmp_path)
    env = {**os.environ, **CLUSTER_ENV, "RAY_ADDRESS": loopback_cluster}
    # A separate driver process, as a user would run it: `aoi train` must join, not start a local Ray.
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("aoi")),
            "train",
            "--dataset",
            "g-v1",
            "--workers",
            "2",
            "--epochs",
            "2",
            "--per-class",
            "4",
            "--batch-size",
            "8",
            "--input-size",
            "32",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["model_version"] == f"gray-r{result['run_id']}"
    cluster = result["ray_cluster"]
    assert cluster["address"] == loopback_cluster, "the driver started its own Ray instead of joining"
    assert cluster["nodes"] == 2 and cluster["cpus"] == 2
    assert [m["version"] for m in aoi("models")] == [result["model_version"]]
