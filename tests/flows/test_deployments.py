"""Every deployment's entrypoint loads the way a worker loads it: as a script from a fresh interpreter in the
project folder (``flows/`` first on sys.path), giving a flow of the deployment's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aoi.settings import Settings
from flows.deployments import PROJECT_FILE, ROOT, deployments
from monitoring.check import RETRAIN_DEPLOYMENT

LOAD = """
import json, sys
from prefect.flows import load_flow_from_entrypoint
flows = {entry: load_flow_from_entrypoint(entry, use_placeholder_flow=False).name for entry in sys.argv[1:]}
print(json.dumps(flows))
"""


def test_every_entrypoint_loads_as_the_worker_loads_it(tmp_path):
    declared = deployments(Settings(home=tmp_path))
    entries = sorted({str(ROOT / d["entrypoint"]) for d in declared})
    done = subprocess.run([sys.executable, "-c", LOAD, *entries], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    flows = json.loads(done.stdout.strip().splitlines()[-1])
    names = [f"{flows[str(ROOT / d['entrypoint'])]}/{d['name']}" for d in declared]
    assert len(set(names)) == len(names)  # `prefect deploy --all` would register two as one
    # the names the monitor starts on drift, and the schedule's own
    retrain = {RETRAIN_DEPLOYMENT.format(kind=kind) for kind in ("gray", "color")}
    assert retrain | {"monitor/every-interval"} <= set(names)
    assert {n: d["parameters"]["kind"] for n, d in zip(names, declared) if n in retrain} == {
        "retrain/gray": "gray",
        "retrain/color": "color",
    }


def test_no_flow_module_shadows_a_package():
    """A worker puts the entrypoint's folder, flows/, first on sys.path: a flows/ingest.py would be imported as
    `ingest` by its own `from ingest import steps`, a flows/demo.py as `demo` by flows/line.py, and the run
    fails (the loading test above, all in one process, does not always see it)."""
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages >= {"aoi", "ingest", "demo", "flows"}
    assert not packages & {p.stem for p in (ROOT / "flows").glob("*.py")}


def test_schedules_come_from_settings(tmp_path):
    settings = Settings(home=tmp_path, monitoring={"retrain_cron": "0 2 * * 0", "monitor_interval_s": 600})
    by_name = {(d["entrypoint"], d["name"]): d for d in deployments(settings)}
    gray, color = by_name["flows/retrain.py:retrain", "gray"], by_name["flows/retrain.py:retrain", "color"]
    assert gray["cron"] == color["cron"] == "0 2 * * 0"
    assert color["parameters"] == {"kind": "color", "reason": "scheduled"}
    assert by_name["flows/monitor.py:monitor", "every-interval"]["interval"] == 600
    on_demand = [d for (_, name), d in by_name.items() if name == "on-demand"]
    assert len(on_demand) == 7 and all("cron" not in d and "interval" not in d for d in on_demand)


def test_the_project_file_holds_the_settings_defaults():
    """`prefect deploy --all` registers the file's values, `aoi deploy` the settings': alike by default."""
    from aoi.settings import MonitoringSettings

    defaults = {name: field.default for name, field in MonitoringSettings.model_fields.items()}
    declared = yaml.safe_load(PROJECT_FILE.read_text())
    crons = {s["cron"] for d in declared["deployments"] for s in d.get("schedules", []) if "cron" in s}
    intervals = {s["interval"] for d in declared["deployments"] for s in d.get("schedules", []) if "interval" in s}
    pools = {d["work_pool"]["name"] for d in declared["deployments"]}
    assert (crons, intervals, pools) == (
        {defaults["retrain_cron"]},
        {defaults["monitor_interval_s"]},
        {defaults["work_pool"]},
    )


def _registered(names: list[str]) -> dict:
    """What the server holds for each ``flow/deployment`` name, less what differs by nature between two
    registrations (ids, timestamps, a schedule's anchor)."""
    from prefect.client.orchestration import get_client

    out = {}
    with get_client(sync_client=True) as client:
        for name in names:
            d = client.read_deployment_by_name(name)
            out[name] = {
                "entrypoint": d.entrypoint,
                "work_pool": d.work_pool_name,
                "parameters": d.parameters,
                "pull_steps": d.pull_steps,
                "schedules": sorted(
                    json.dumps(s.schedule.model_dump(mode="json", exclude={"anchor_date"}), sort_keys=True)
                    for s in d.schedules
                    if s.active
                ),
            }
    return out


@pytest.mark.slow
def test_prefect_deploy_all_registers_what_aoi_deploy_registers(prefect_api, settings):
    from flows.deployments import deploy

    names = [d["deployment"] for d in deploy(settings)["deployments"]]
    by_aoi = _registered(names)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    prefect = str(Path(sys.executable).with_name("prefect"))
    done = subprocess.run(
        [prefect, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    by_prefect = _registered(names)
    assert by_prefect == by_aoi
    assert by_aoi["retrain/gray"]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    assert len(by_aoi["monitor/every-interval"]["schedules"]) == 1


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
