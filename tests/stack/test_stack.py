"""The production shape on one host, every part chosen by settings alone: PostgreSQL for the catalog and for
Prefect, Redis for the Feast online store (both started by `.ci/run`), a Prefect server on PostgreSQL, a
process work pool worker (`aoi worker`), a Ray head and a Ray worker node, and `aoi serve`, all as local
processes on loopback, each stopped by this test even when it fails.

The scenario, on small real data (PKU colour crops): a first model trained on the Ray cluster and made
production; `aoi deploy`; `retrain/color` run through its deployment, which the worker picks up (new inbox
batch -> dataset version -> features into Redis -> training on the cluster -> gate); its paused promote run
approved through the Prefect API; the running service then answers over HTTP with the new model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port
from tests.processes import (
    CLUSTER_ENV,
    answers,
    background,
    loopback_ray,
    postgres_database,
    prefect_server_on,
    wait_until,
)

pytestmark = [pytest.mark.stack, pytest.mark.integration, pytest.mark.slow]
AOI = str(Path(sys.executable).with_name("aoi"))
PREFECT = str(Path(sys.executable).with_name("prefect"))
CLASSES = ("Missing_hole", "Mouse_bite", "Open_circuit", "Short", "Spur", "Spurious_copper")
POOL = "aoi-stack"
# Not what this test checks: a one-epoch model on a few crops would fail the production gate's floors.
LENIENT_GATE = {
    "AOI_GATE__MIN_BLIND_ACCURACY": "0",
    "AOI_GATE__MARGIN_OVER_PRODUCTION": "-1",
    "AOI_GATE__MAX_UNKNOWN_RATE": "1",
    "AOI_GATE__MIN_CLASS_RECALL": "0",
    "AOI_GATE__MAX_TONE_DROP": "1",
    "AOI_GATE__APPROVAL_POLL_S": "1",
}


def pku_folder(datasets_dir: Path, into: Path, start: int, per_class: int) -> Path:
    """``per_class`` real PKU crops of each class, from position ``start`` of its sorted files."""
    for label in CLASSES:
        (into / label).mkdir(parents=True)
        for source in sorted((datasets_dir / "pku-pcb-roi" / label).glob("*.jpg"))[start : start + per_class]:
            shutil.copy(source, into / label / source.name)
    return into


def run_aoi(env: dict, *args: str, timeout: float = 600) -> dict:
    done = subprocess.run([AOI, *args, "--json"], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"aoi {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout)


def flow_runs(api: str, states: list[str] | None = None) -> list[dict]:
    """Flow runs as the Prefect REST API lists them (the UI reads the same), optionally in these state types."""
    body = {"flow_runs": {"state": {"type": {"any_": states}}}} if states else {}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()


def flow_run(api: str, run_id: str) -> dict:
    return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()


def test_retrain_through_its_deployment_on_the_full_stack(aoi_home, tmp_path, datasets_dir):
    pg_admin, redis_url = os.environ.get("AOI_TEST_PG_URL"), os.environ.get("AOI_TEST_REDIS_URL")
    if not (pg_admin and redis_url):
        if os.environ.get("CI"):
            pytest.fail("the stack test needs AOI_TEST_PG_URL and AOI_TEST_REDIS_URL (.ci/run sets both)")
        pytest.skip("no PostgreSQL or Redis: set AOI_TEST_PG_URL and AOI_TEST_REDIS_URL (.ci/run starts both)")
    import redis

    online = f"{redis_url}/12"  # a Redis database of its own, emptied first
    redis.Redis.from_url(online).flushdb()
    train = pku_folder(datasets_dir, tmp_path / "pku-train", 0, 14)
    blind = pku_folder(datasets_dir, tmp_path / "pku-blind", 14, 5)
    pku_folder(datasets_dir, aoi_home / "inbox" / "color" / "week-48", 19, 4)
    logs = tmp_path / "logs"

    with ExitStack() as stack:
        catalog = stack.enter_context(postgres_database(pg_admin, "aoi_stack_catalog"))
        prefect_db = stack.enter_context(postgres_database(pg_admin, "aoi_stack_prefect"))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AOI_", "PREFECT_", "RAY_"))}
        base |= {"AOI_DATASETS_DIR": str(datasets_dir), **CLUSTER_ENV}
        api = stack.enter_context(prefect_server_on(prefect_db, tmp_path / "prefect-server", base))
        ray_address = stack.enter_context(loopback_ray(cpus_per_node=1))
        port = free_port()
        # The one switch: the same code as the embedded default, pointed at the stack by settings alone.
        env = {
            **base,
            **LENIENT_GATE,
            "AOI_HOME": str(aoi_home),
            "AOI_DB_URL": catalog,
            "AOI_FEAST_ONLINE": online,
            "PREFECT_API_URL": api,
            "PREFECT_HOME": str(tmp_path / "prefect-client"),
            "RAY_ADDRESS": ray_address,
            "AOI_MONITORING__WORK_POOL": POOL,
            "AOI_SERVING__PORT": str(port),
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
        }

        # A first production model, trained on the cluster.
        run_aoi(env, "ingest", str(train), "--source", "color", "--machine", "vrs-stack", "--no-progress")
        run_aoi(env, "dataset", "blind", "pku-stack-blind", "--folder", str(blind), "--source", "color")
        run_aoi(env, "dataset", "build", "pku-stack-v1", "--source", "color", "--seed", "0", "--split", "6:2:2")
        first = run_aoi(
            env,
            "train",
            "--dataset",
            "pku-stack-v1",
            "--workers",
            "2",
            "--epochs",
            "1",
            "--per-class",
            "8",
            "--batch-size",
            "8",
            "--input-size",
            "32",
        )
        assert first["ray_cluster"]["address"] == ray_address and first["ray_cluster"]["nodes"] == 2
        first_promotion = stack.enter_context(
            background([AOI, "promote", first["model_version"], "--json"], env, logs / "promote-first.log")
        )
        paused = wait_for_paused_promote(api, set(), logs / "promote-first.log")
        run_aoi(env, "approve", paused, "--reviewer", "stack-test", "--comment", "first production model")
        assert first_promotion.wait(timeout=120) == 0, (logs / "promote-first.log").read_text()[-3000:]

        # The served model, the worker, and the deployments.
        stack.enter_context(background([AOI, "serve"], env, logs / "serve.log"))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{url}/readyz"), 120, "aoi serve did not become ready", logs / "serve.log")
        assert classify(url, blind)["model_version"] == first["model_version"]
        deployed = run_aoi(env, "deploy")
        assert {d["deployment"] for d in deployed["deployments"]} >= {"retrain/color", "monitor/every-interval"}
        stack.enter_context(background([AOI, "worker"], env, logs / "worker.log"))

        # Retraining through its deployment, run by the worker, paused at the approval.
        started = subprocess.run(
            [PREFECT, "deployment", "run", "retrain/color", "--param", "kind=color", "--param", "reason=stack test"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        [retrain_run] = [
            r for r in flow_runs(api) if r.get("deployment_id") and r["parameters"].get("reason") == "stack test"
        ]
        paused = wait_for_paused_promote(api, {paused}, logs / "worker.log", watch=retrain_run["id"], timeout_s=900)
        approved = run_aoi(env, "approve", paused, "--reviewer", "stack-test", "--comment", "retrained on week 48")
        assert approved["status"] == "approved", approved
        wait_until(
            lambda: flow_run(api, retrain_run["id"])["state_type"] in ("COMPLETED", "FAILED", "CRASHED"),
            300,
            "the retrain run did not finish after its approval",
            logs / "worker.log",
        )
        assert flow_run(api, retrain_run["id"])["state_type"] == "COMPLETED", (logs / "worker.log").read_text()[-4000:]

        models = {m["version"]: m for m in run_aoi(env, "models")}
        [new] = [v for v, m in models.items() if m["stage"] == "production"]
        assert new != first["model_version"] and models[first["model_version"]]["stage"] != "production"
        datasets = {d["name"]: d for d in run_aoi(env, "dataset", "list")}
        assert any(d.get("parent") == "pku-stack-v1" for d in datasets.values()), datasets

        # The running service switched to the new model by itself and answers over HTTP with it.
        wait_until(lambda: classify(url, blind)["model_version"] == new, 60, "the service kept the old model")
        assert (
            redis.Redis.from_url(online).dbsize() > 0
        )  # the machine's tone statistics, materialised by the retrain run


def classify(url: str, folder: Path) -> dict:
    image = sorted(folder.glob("*/*.jpg"))[0]
    response = httpx.post(
        f"{url}/classify",
        files={"image": (image.name, image.read_bytes(), "image/jpeg")},
        data={"kind": "color", "machine_id": "vrs-stack"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_paused_promote(
    api: str, seen: set[str], log: Path, watch: str | None = None, timeout_s: float = 300
) -> str:
    """The id of a promote run paused for approval (not one of ``seen``); fails early if ``watch`` ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        paused = [r["id"] for r in flow_runs(api, states=["PAUSED"]) if r["id"] not in seen]
        if paused:
            return paused[0]
        if watch and flow_run(api, watch)["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            raise AssertionError(f"the run ended without pausing for approval:\n{log.read_text()[-4000:]}")
        time.sleep(2)
    raise AssertionError(f"no promote run paused for approval within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")
