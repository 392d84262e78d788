"""Every deployment's entrypoint loads the way a worker loads it: as a script from a fresh interpreter in the
project folder (``flows/`` first on sys.path), giving a flow of the deployment's name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aoi.settings import Settings
from flows.deployments import ROOT, deployments

LOAD = """
import json, sys
from prefect.flows import load_flow_from_entrypoint
flows = {entry: load_flow_from_entrypoint(entry, use_placeholder_flow=False).name for entry in sys.argv[1:]}
print(json.dumps(flows))
"""


def test_every_entrypoint_loads_as_the_worker_loads_it(tmp_path):
    wanted = {str(ROOT / d["entrypoint"]): d["flow"] for d in deployments(Settings(home=tmp_path))}
    done = subprocess.run([sys.executable, "-c", LOAD, *wanted], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == wanted


def test_schedules_come_from_settings(tmp_path):
    settings = Settings(home=tmp_path, monitoring={"retrain_cron": "0 2 * * 0", "monitor_interval_s": 600})
    by_name = {f"{d['flow']}/{d['name']}": d for d in deployments(settings)}
    assert by_name["retrain/gray"]["cron"] == by_name["retrain/color"]["cron"] == "0 2 * * 0"
    assert by_name["retrain/color"]["parameters"] == {"kind": "color", "reason": "scheduled"}
    assert by_name["monitor/every-interval"]["interval"] == 600
    assert all("cron" not in d and "interval" not in d for n, d in by_name.items() if n.endswith("/on-demand"))


def test_the_worker_does_not_inherit_a_process_local_metrics_folder(monkeypatch):
    from flows.prefect_server import worker_env

    # Importing Feast points this at a temporary folder of the importing process (the demo's); a worker that
    # inherited it failed every flow run that imports Feast once that folder was gone.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/feast_metrics_x")
    monkeypatch.setenv("AOI_HOME", "/somewhere")
    env = worker_env()
    assert "PROMETHEUS_MULTIPROC_DIR" not in env and env["AOI_HOME"] == "/somewhere"


def test_the_work_pool_is_created_with_its_type_and_another_type_is_refused(prefect_api, tmp_path):
    from flows.deployments import ensure_work_pool
    from flows.prefect_server import worker_command

    assert ensure_work_pool("aoi-test-typed-pool", "process") is True
    assert ensure_work_pool("aoi-test-typed-pool", "process") is False  # exists: left as it is
    with pytest.raises(ValueError, match="is a process pool, but AOI_MONITORING__WORK_POOL_TYPE is kubernetes"):
        ensure_work_pool("aoi-test-typed-pool", "kubernetes")
    settings = Settings(home=tmp_path, monitoring={"work_pool": "aoi-k8s", "work_pool_type": "kubernetes"})
    assert worker_command(settings)[-4:] == ["--pool", "aoi-k8s", "--type", "kubernetes"]
