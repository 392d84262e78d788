"""The demo's review stage: run `aoi promote` as its own process (as an engineer would), and when the run pauses
for approval, show where a reviewer would answer in the Prefect UI, then answer from this terminal instead."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aoi.settings import Settings


def promote_and_approve(
    settings: Settings,
    version: str,
    ui_url: str,
    reviewer: str,
    comment: str,
    say: Callable[[str], None],
    timeout_s: float = 900,
) -> dict:
    """The promote run's result; a passed gate is approved by ``reviewer`` from here."""
    from aoi.catalog import db
    from promotion import approval, stages

    aoi = str(Path(sys.executable).with_name("aoi"))
    process = subprocess.Popen([aoi, "promote", version, "--json"], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    try:
        while process.poll() is None and time.monotonic() < deadline:
            waiting = stages.waiting_approval(settings, version=version)
            run_id = waiting.flow_run_id if waiting is not None else None
            if waiting is not None and run_id is not None and approval.state_of(run_id).is_paused():
                say(
                    f"{version} passed its gate and waits for a reviewer. In the Prefect UI: "
                    f"{ui_url}/runs/flow-run/{run_id} (Resume, fill in the form). "
                    f"The demo answers from the terminal instead: aoi approve {run_id} --reviewer "
                    f"{reviewer}"
                )
                approval.resume(run_id, approve=True, reviewer=stages.claimed_by(reviewer), comment=comment)
                while (
                    stages.approval(settings, db.saved_id(waiting))["status"] == "waiting"
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.5)
                break
            time.sleep(1)
        out, _ = process.communicate(timeout=max(deadline - time.monotonic(), 30))
    finally:
        if process.poll() is None:
            process.kill()
    if process.returncode != 0:
        return {
            "model_version": version,
            "decision": "error",
            "stage": "candidate",
            "error": f"aoi promote exited with {process.returncode}",
        }
    return json.loads(out)
