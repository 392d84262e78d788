"""Every deployment's entrypoint loads the way a worker loads it: as a script from a fresh interpreter in the
project folder (``flows/`` first on sys.path), giving a flow of the deployment's name."""

from __future__ import annotations

import json
import subprocess
import sys

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
