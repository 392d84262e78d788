"""The human approval as Prefect sees it: a form (``ApprovalForm``) the paused ``promote`` flow waits for.

The reviewer fills it in the Prefect UI (the paused run shows a "Resume" button with these fields), or from a
terminal with ``aoi approve FLOW_RUN_ID``; both resume the same pause. A run left waiting past the timeout is
resumed by a watchdog with a rejection, so the decision is recorded as timed out instead of the run just
failing (Prefect ends a timed-out pause as Failed, which the flow cannot catch).
"""

from __future__ import annotations

import threading

from prefect.input import RunInput
from pydantic import Field

from evaluation.promotion import TIMEOUT_REVIEWER


class ApprovalForm(RunInput):
    """Promote this candidate to production?"""

    approve: bool = Field(description="Yes: the candidate becomes production for its kind. No: it is rejected.")
    reviewer: str = Field(min_length=1, max_length=128, description="Your name: recorded with the decision.")
    comment: str = Field("", max_length=2000, description="Why: recorded with the decision.")


class ApprovalError(RuntimeError):
    pass


def wait_for_decision(timeout_s: int, poll_s: int) -> ApprovalForm:
    """Pause the current flow run until a person (or the timeout watchdog) answers the form."""
    from prefect.flow_runs import pause_flow_run
    from prefect.runtime import flow_run

    run_id = flow_run.id
    watchdog = threading.Timer(timeout_s, _expire, args=(run_id, timeout_s))
    watchdog.daemon = True
    watchdog.start()
    try:
        # The pause itself outlives the watchdog by a few polls, so the watchdog's answer is what ends it.
        return pause_flow_run(wait_for_input=ApprovalForm, timeout=timeout_s + 3 * poll_s + 30, poll_interval=poll_s)
    finally:
        watchdog.cancel()


def _expire(run_id: str, timeout_s: int) -> None:
    try:
        resume(run_id, approve=False, reviewer=TIMEOUT_REVIEWER, comment=f"no decision within {timeout_s} s")
    except ApprovalError:
        pass  # someone answered in the meantime


def state_of(run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def resume(run_id: str, *, approve: bool, reviewer: str, comment: str = "") -> None:
    """Answer the paused run's form, as the UI's Resume button does. Refused unless the run is paused."""
    from prefect.flow_runs import resume_flow_run

    state = state_of(run_id)
    if state is None or not state.is_paused():
        raise ApprovalError(f"flow run {run_id} is not waiting for approval (state: {state.name if state else 'none'})")
    resume_flow_run(run_id, run_input=ApprovalForm(approve=approve, reviewer=reviewer, comment=comment).model_dump())
