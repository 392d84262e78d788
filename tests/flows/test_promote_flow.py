"""The promote flow on a real Prefect test server: a failed gate never pauses; a paused run resumed with approve
promotes, with reject does not; an unanswered one times out as a rejection; rollback restores the previous model;
the catalog shows who and why at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import Approval
from promotion import approval, stages
from tests.evaluation.models import gray_data, trained_model
from tests.flows.helpers import aoi

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]
AOI = str(Path(sys.executable).with_name("aoi"))
# Every rule passes: these tests are about the approval, not about how good a 1-epoch model is.
LENIENT = {
    "GATE__MIN_BLIND_ACCURACY": 0,
    "GATE__MARGIN_OVER_PRODUCTION": -1,
    "GATE__MAX_UNKNOWN_RATE": 1,
    "GATE__MIN_CLASS_RECALL": 0,
    "GATE__MAX_TONE_DROP": 1,
    "GATE__APPROVAL_POLL_S": 1,
}


def stage(version: str) -> str:
    return next(m["stage"] for m in aoi("models") if m["version"] == version)


def start_promote(version: str, *options: str) -> subprocess.Popen:
    """`aoi promote` in its own process, as a user would start it; it blocks while the run is paused."""
    return subprocess.Popen(
        [AOI, "promote", version, "--json", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def paused_run(settings, version: str, timeout: float = 240) -> str:
    """The flow run id of ``version``'s approval, once the run is paused waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session(settings.catalog_url) as s:
            row = s.exec(
                select(Approval).where(Approval.model_version == version, Approval.status == "waiting")
            ).first()
        if row is not None and approval.state_of(row.flow_run_id).is_paused():
            return row.flow_run_id
        time.sleep(0.5)
    raise AssertionError(f"{version}: no paused promote run within {timeout} s")


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def test_a_failed_gate_never_pauses_and_cannot_be_approved(configure, tmp_path):
    settings = configure(GATE__MIN_BLIND_ACCURACY=1.0)
    gray_data(tmp_path)
    version = trained_model(settings, epochs=0)  # an untrained network: far from 100% on the blind set
    result = aoi("promote", version)
    assert result["decision"] == "gate failed" and result["stage"] == "candidate"
    rules = {r["rule"]: r for r in result["verdict"]["rules"]}
    assert (
        not rules["blind accuracy on g-blind-0717"]["passed"]
        and rules["blind accuracy on g-blind-0717"]["limit"] == 1.0
    )
    # 3 blind images per class: each class is warned about, beside the rules (warnings never decide the verdict)
    few = [w for w in result["verdict"]["warnings"] if w["warning"] == "few images"]
    assert len({w["label"] for w in few}) == len(few) == 7 and all(w["figure"] == 3 for w in few)
    run_id = result["verdict"]["flow_run_id"]
    assert not approval.state_of(run_id).is_paused() and approval.state_of(run_id).is_completed()
    refused = aoi("approve", run_id, "--reviewer", "mallory", code=2)
    assert "no approval is waiting" in refused["error"]
    assert stage(version) == "candidate" and aoi("stages") == []


def test_approve_promotes_reject_does_not_and_rollback_restores_the_previous_model(configure, tmp_path):
    settings = configure(**LENIENT)
    gray_data(tmp_path)
    first, second, third = (trained_model(settings, epochs=1, seed=s) for s in (0, 1, 2))

    process = start_promote(first)
    run_id = paused_run(settings, first)
    assert stage(first) == "candidate", "nothing changes while the run waits"
    assert "refused" in aoi("approve", run_id, "--reviewer", "", code=2)["error"]
    assert approval.state_of(run_id).is_paused(), "an invalid answer leaves the run paused"
    decided = aoi("approve", run_id, "--reviewer", "alice", "--comment", "blind 0717 fine")
    # The claimed name, the OS account `aoi approve` ran as, and what the (test) Prefect server authenticated.
    recorded = f"alice (os:{stages.os_user()}) [prefect:unauthenticated]"
    assert (decided["status"], decided["stage"], decided["reviewer"]) == ("approved", "production", recorded)
    assert finish(process)["decision"] == "approved"

    process = start_promote(second)
    run_id = paused_run(settings, second)
    decided = aoi("approve", run_id, "--reviewer", "bob", "--reject", "--comment", "looks at the background")
    assert (decided["status"], decided["stage"]) == ("rejected", "rejected")
    assert finish(process)["stage"] == "rejected"
    assert stage(first) == "production"
    assert "no approval is waiting" in aoi("approve", run_id, "--reviewer", "bob", code=2)["error"]

    process = start_promote(third)
    verdict_run = paused_run(settings, third)
    aoi("approve", verdict_run, "--reviewer", "alice")
    verdict = finish(process)["verdict"]
    assert verdict["production_version"] == first  # production was measured on the same blind sets
    assert (stage(first), stage(third)) == ("archived", "production")

    rolled = aoi("rollback", "gray", "--by", "carol", "--reason", "line reports more escapes")
    assert (rolled["production"], rolled["rolled_back"]) == (first, third)
    assert (stage(first), stage(third)) == ("production", "rolled_back")
    assert "none to go back to" in aoi("rollback", "gray", "--by", "carol", "--reason", "again", code=2)["error"]

    history = [(h["model_version"], h["from"], h["to"], h["by"]) for h in aoi("stages", "--kind", "gray")]
    alice, bob = recorded, f"bob (os:{stages.os_user()}) [prefect:unauthenticated]"
    carol = f"carol (os:{stages.os_user()})"  # a rollback from the terminal: no Prefect in between
    assert history == [
        (first, "candidate", "production", alice),
        (second, "candidate", "rejected", bob),
        (first, "production", "archived", alice),
        (third, "candidate", "production", alice),
        (third, "production", "rolled_back", carol),
        (first, "archived", "production", carol),
    ]
    reasons = [h["reason"] for h in aoi("stages", "--model", second)]
    assert reasons == ["looks at the background"]


def test_an_unanswered_approval_times_out_as_a_rejection(configure, tmp_path):
    settings = configure(**LENIENT)
    gray_data(tmp_path)
    version = trained_model(settings, epochs=1)
    result = finish(start_promote(version, "--timeout", "4"))
    assert (result["decision"], result["stage"]) == ("timed_out", "rejected")
    assert "no decision within 4 s" in aoi("stages", "--model", version)[0]["reason"]
