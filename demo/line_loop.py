"""The demo closes the loop from the line: the answers the service kept fill the review queue, an
engineer labels a few from the terminal, and (a SIMULATION) the line confirms one machine's answers wrong.

- ``settled``: wait until the service has written what it kept and logged (``GET /model``), so that the queue and
  the prediction log hold every answer sent.
- ``waiting``: the kept answers waiting for a label, per kind and reason.
- ``label_from_terminal``: ``aoi review label REQUEST_ID LABEL --by demo-engineer`` for a few waiting answers, as
  an engineer types it (each its own process, as ``demo/review.py`` runs ``aoi promote``). Only answers whose bytes
  may train: a blind image sent to the service stays behind the blind wall whatever a person calls it, so the
  lamp-ageing stage's re-shot images (new bytes, neither blind nor catalogued) are the ones worth labelling. The
  true label is the simulation's: the class of the crop each shot was made from.
- ``confirm_stale_machine``: SIMULATION of a model gone stale on one machine whose tone did not change: the VRS
  station confirms that machine's answers through ``POST /feedback``, and for a share of the answers the model got
  right it reports another class, so that the machine's live accuracy drops far beyond
  ``AOI_MONITORING__MAX_ACCURACY_DROP`` while its inputs stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import HashClaim, Image, KeptAnswer, KeptAnswerStatus
from aoi.settings import Settings
from demo.exports import connected

ENGINEER = "demo-engineer"  # the workbench account the demo labels as (an engineer)
LABEL_AT_MOST = 5
STALE_MACHINE = "VRS-03"  # not the ageing machine (demo.lamp_ageing.AGEING_MACHINE): its tone stays as it was
WRONG_SHARE = 0.5  # of the answers the model got right on the stale machine, the share the line confirms wrong
STATION = "vrs-station (SIMULATION)"  # who confirms on the stale machine
STALE_NOTICE = (
    f"SIMULATION: a model gone stale on {STALE_MACHINE} (its tone unchanged): the VRS station confirms that "
    f"machine's answers through POST /feedback and calls {WRONG_SHARE:.0%} of the ones the model got right "
    "another class"
)


class LoopError(RuntimeError):
    """A step of the loop that could not run (the service did not settle, a command failed); the message says why."""


def settled(http: httpx.Client, timeout_s: float = 120.0) -> dict:
    """Wait until the service has written every answer it kept and logged; its ``kept_answers`` figures."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = http.get("/model").raise_for_status().json()
        kept, logged = described["kept_answers"], described["prediction_log"]
        if not kept["queued"] and not logged["pending"]:
            return kept
        if time.monotonic() > deadline:
            raise LoopError(
                f"the service still holds {kept['queued']} kept answers and {logged['pending']} log rows "
                f"after {timeout_s:.0f} s"
            )
        time.sleep(0.5)


def kept_answers(settings: Settings, service: str | httpx.Client, timeout_s: float = 120.0) -> dict:
    """Once the service has written what it kept: its figures, and the answers waiting per kind and reason."""
    with connected(settings, service) as http:
        kept = settled(http, timeout_s)
    return {"kept": kept["kept"], "by_reason": kept["by_reason"], "waiting": waiting(settings)}


def waiting(settings: Settings) -> dict[str, dict[str, int]]:
    """kind -> reason -> kept answers waiting for a label."""
    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(KeptAnswer.kind, KeptAnswer.reason, func.count())
            .where(KeptAnswer.status == KeptAnswerStatus.waiting)
            .group_by(col(KeptAnswer.kind), col(KeptAnswer.reason))
        ).all()
    out: dict[str, dict[str, int]] = {}
    for kind, reason, n in sorted(rows):
        out.setdefault(kind, {})[reason] = int(n)
    return out


def new_bytes(settings: Settings, shas: Iterable[str]) -> set[str]:
    """The digests neither in a blind set nor catalogued: labelled, they become training images of their own."""
    wanted = sorted(set(shas))
    known: set[str] = set()
    with db.session(settings.catalog_url) as s:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            known |= set(s.exec(select(HashClaim.sha256).where(col(HashClaim.sha256).in_(chunk))).all())
            known |= set(s.exec(select(Image.sha256).where(col(Image.sha256).in_(chunk))).all())
    return set(wanted) - known


def read_truth(path: Path) -> list[dict]:
    """The simulation's record of each answer it sent (``demo.lamp_ageing.send``): request id, machine, the sent
    bytes' digest, the true class, the model's answer."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def to_label(settings: Settings, truth: list[dict], at_most: int, skip_machines: Iterable[str] = ()) -> list[dict]:
    """Up to ``at_most`` waiting kept answers of the simulation's shots whose bytes may train, the least confident
    first (the queue's default order), each with its true class."""
    skip = set(skip_machines)
    by_sha = {row["sha256"]: row for row in truth if row["machine_id"] not in skip}
    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(KeptAnswer)
            .where(KeptAnswer.status == KeptAnswerStatus.waiting, col(KeptAnswer.sha256).in_(sorted(by_sha)))
            .order_by(col(KeptAnswer.confidence), col(KeptAnswer.id))
        ).all()
        answers = [(a.request_id, a.sha256, a.kind, a.reason, a.machine_id, a.label) for a in rows]
    fresh = new_bytes(settings, (a[1] for a in answers))
    chosen = []
    for request_id, sha, kind, reason, machine, answered in answers:
        if sha in fresh and by_sha[sha].get("true_label"):
            chosen.append(
                {
                    "request_id": request_id,
                    "kind": kind,
                    "reason": reason,
                    "machine_id": machine,
                    "answered": answered,
                    "true_label": by_sha[sha]["true_label"],
                }
            )
            fresh.discard(sha)  # one answer per image
        if len(chosen) >= at_most:
            break
    return chosen


def aoi_command(*args: str, stdin: str | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """``aoi ARGS`` as its own process, as an engineer runs it."""
    aoi = str(Path(sys.executable).with_name("aoi"))
    return subprocess.run([aoi, *args], input=stdin, capture_output=True, text=True, timeout=timeout_s)


def ensure_engineer(name: str = ENGINEER) -> None:
    """The demo's engineer account (``aoi users add``), made when missing with a random password nobody needs:
    the queue records who decided, and only an engineer or a reviewer may."""
    listed = aoi_command("users", "list", "--json")
    if listed.returncode == 0 and name in {u["name"] for u in json.loads(listed.stdout)}:
        return
    added = aoi_command("users", "add", name, "--role", "engineer", "--json", stdin=secrets.token_urlsafe(24) + "\n")
    if added.returncode != 0:
        raise LoopError(f"aoi users add {name} failed: {_last_line(added)}")


def label_from_terminal(
    settings: Settings,
    truth_file: Path,
    at_most: int = LABEL_AT_MOST,
    by: str = ENGINEER,
    skip_machines: Iterable[str] = (STALE_MACHINE,),
) -> dict:
    """Label up to ``at_most`` waiting kept answers that may train with their true classes, one ``aoi review
    label`` each; what was labelled (the commands as typed) and what was refused."""
    chosen = to_label(settings, read_truth(truth_file), at_most, skip_machines)
    labelled, failed = [], []
    if chosen:
        ensure_engineer(by)
    for answer in chosen:
        args = ("review", "label", answer["request_id"], answer["true_label"], "--by", by)
        done = aoi_command(*args, "--json")
        command = "aoi " + " ".join(args)
        if done.returncode == 0:
            labelled.append({**answer, "command": command, "status": json.loads(done.stdout)["status"]})
        else:
            failed.append({**answer, "command": command, "error": _last_line(done)})
    return {
        "by": by,
        "labelled": labelled,
        "failed": failed,
        "note": "re-shot images (new bytes): the retraining run's 'confirmed-answers' step makes them training "
        "images; blind images sent to the service stay behind the blind wall",
    }


def _last_line(done: subprocess.CompletedProcess) -> str:
    text = (done.stderr or done.stdout or "").strip().splitlines()
    return text[-1][:300] if text else f"exit {done.returncode}"


def wrong(request_id: str, share: float) -> bool:
    """Whether the simulation confirms this right answer wrong (a hash of the request id: the same every run)."""
    draw = int.from_bytes(hashlib.sha256(f"stale/{request_id}".encode()).digest()[:8], "big") / 2**64
    return draw < share


def stale_label(row: dict, classes: tuple[str, ...], share: float) -> str:
    """The label the simulated VRS station confirms for one answer of the stale machine: the truth, except for a
    ``share`` of the accepted answers the model got right, which it calls the model's runner-up class instead."""
    truth = row["true_label"]
    if row["unknown"] or row["model_label"] != truth or not wrong(row["request_id"], share):
        return truth
    runner_up = [label for label in row.get("runner_up", []) if label != row["model_label"] and label in classes]
    return runner_up[0] if runner_up else next(c for c in classes if c != row["model_label"])


def confirm_stale_machine(
    settings: Settings,
    service: str | httpx.Client,
    truth_file: Path,
    machine: str = STALE_MACHINE,
    share: float = WRONG_SHARE,
    by: str = STATION,
) -> dict:
    """Confirm every answer of ``machine`` through ``POST /feedback`` (see ``stale_label``); what was sent."""
    from training.taxonomy import Taxonomy

    rows = [r for r in read_truth(truth_file) if r["machine_id"] == machine and r.get("true_label")]
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    confirmed_wrong = accepted = 0
    classes: dict[str, tuple[str, ...]] = {}
    with connected(settings, service) as http:
        for row in rows:
            fine = classes.setdefault(row["kind"], Taxonomy.load(row["kind"]).fine)
            label = stale_label(row, fine, share)
            response = http.post("/feedback", json={"request_id": row["request_id"], "label": label, "by": by})
            statuses[response.status_code] += 1
            if response.status_code != 200:
                if len(errors) < 5:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                continue
            if not row["unknown"]:
                accepted += 1
                confirmed_wrong += label != row["model_label"]
    return {
        "simulation": STALE_NOTICE,
        "machine": machine,
        "share": share,
        "confirmed": statuses[200],
        "accepted_answers": accepted,
        "confirmed_wrong": confirmed_wrong,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


def stale_verdict(checked: dict, kind: str, machine: str = STALE_MACHINE) -> dict:
    """What the monitor said of the stale machine: its live-accuracy row and its input-drift verdict."""
    result = checked["kinds"].get(kind, {})
    live = next((r for r in result.get("live_accuracy", []) if r["scope"] == machine), None)
    inputs = result.get("machines", {}).get(machine, {})
    return {
        "machine": machine,
        "live_accuracy": live,
        "input_drift": inputs.get("drift"),
        "input_reasons": inputs.get("reasons", []),
        "flagged_by_live_accuracy": bool(live and live["drift"]),
        "flagged_by_inputs": bool(inputs.get("drift")),
    }
