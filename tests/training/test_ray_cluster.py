"""A multi-process Ray cluster on loopback: a head (`ray start --head`) and one worker node
(`ray start --address`), one CPU each, joined by `aoi train` through RAY_ADDRESS.

Two training workers of one CPU each cannot fit on one of these nodes, so a run that succeeds trained on
both; the run record says which cluster it ran on and how many nodes it saw.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.flows.test_ingest_flow import aoi
from tests.flows.test_train_flow import gray_dataset
from tests.helpers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
RAY = str(Path(sys.executable).with_name("ray"))
# Head, worker and driver must agree on the auth mode, or the join fails with InvalidAuthToken.
CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _alive_nodes(address: str) -> int:
    probe = "import ray; ray.init(address=%r, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run([sys.executable, "-c", probe % address], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **CLUSTER_ENV})  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


@pytest.fixture
def loopback_cluster():
    """Head and worker as blocking `ray start` processes in their own process groups, stopped by group
    (never `ray stop`, which would kill every Ray process on the host), even when the test fails."""
    port = free_port("127.0.0.2")
    # Ray replaces 127.0.0.1 by the machine's address; other loopback addresses it keeps, so the cluster's
    # traffic stays on loopback: the head on 127.0.0.2, the worker node on 127.0.0.3.
    address = f"127.0.0.2:{port}"
    env = {**os.environ, **CLUSTER_ENV}
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus=1", "--num-gpus=0", "--block", "--disable-usage-stats"]
    nodes = [subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.2",
                               "--include-dashboard=false", *common], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while _alive_nodes(address) < 1:
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(1)
        nodes.append(subprocess.Popen([RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.3", *common],
                                      env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))  # fmt: skip
        while _alive_nodes(address) < 2:
            assert time.monotonic() < deadline, "the Ray worker node did not join the head"
            time.sleep(1)
        yield address
    finally:
        for node in reversed(nodes):
            _stop_group(node)


def _stop_group(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_aoi_train_joins_a_loopback_cluster_through_RAY_ADDRESS(settings, tmp_path, loopback_cluster, monkeypatch):
    gray_dataset(tmp_path)
    env = {**os.environ, **CLUSTER_ENV, "RAY_ADDRESS": loopback_cluster}
    # A separate driver process, as a user would run it: `aoi train` must join, not start a local Ray.
    done = subprocess.run([str(Path(sys.executable).with_name("aoi")), "train", "--dataset", "g-v1", "--workers", "2",
                           "--epochs", "2", "--per-class", "4", "--batch-size", "8", "--input-size", "32", "--json"],
                          env=env, capture_output=True, text=True, timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["model_version"] == f"gray-r{result['run_id']}"
    cluster = result["ray_cluster"]
    assert cluster["address"] == loopback_cluster, "the driver started its own Ray instead of joining"
    assert cluster["nodes"] == 2 and cluster["cpus"] == 2
    assert [m["version"] for m in aoi("models")] == [result["model_version"]]
