"""The human approval as Prefect sees it: a form (``ApprovalForm``) the paused ``promote`` flow waits for.

The reviewer fills it in the Prefect UI (the paused run shows a "Resume" button with these fields), or from a
terminal with ``aoi approve FLOW_RUN_ID``; both resume the same pause. A run left waiting past the timeout is
resumed by a watchdog with a rejection, so the decision is recorded as timed out instead of the run just
failing (Prefect ends a timed-out pause as Failed, which the flow cannot catch).

Who decided: the form's ``reviewer`` is a name the person types, so the flow records it with the identity that
was authenticated, in brackets: the user of the Prefect credential the resume had to carry (``[prefect:aoi]``;
one shared basic-auth string, so it tells an installation's reviewers from outsiders, not one reviewer from
another). ``aoi approve`` adds the operating-system account it runs as (``alice (os:jdoe) [prefect:aoi]``);
from the UI only the claimed name and the credential are known. A name that only the timeout watchdog may
use is a person's claim like any other when the watchdog did not send it.
"""

from __future__ import annotations

import contextlib
import threading

from prefect.input import RunInput
from pydantic import Field

from promotion.stages import TIMEOUT_REVIEWER


class ApprovalForm(RunInput):
    """Promote this candidate to production?"""

    approve: bool = Field(description="Yes: the candidate becomes production for its kind. No: it is rejected.")
    reviewer: str = Field(
        min_length=1,
        max_length=128,
        description="Your name: recorded with the decision, beside the identity that logged in.",
    )
    comment: str = Field("", max_length=2000, description="Why: recorded with the decision.")


class ApprovalError(RuntimeError):
    pass


REVIEWER_MAX = 128  # the catalog's approval.reviewer column


def prefect_principal() -> str:
    """The identity the Prefect server authenticated: the user part of the basic-auth string clients must send."""
    from prefect.settings import get_current_settings

    secret = get_current_settings().api.auth_string
    value = secret.get_secret_value() if secret is not None else ""
    return f"prefect:{value.split(':', 1)[0]}" if value else "prefect:unauthenticated"


def attributed(form: ApprovalForm, principal: str) -> str:
    """What the catalog records as the reviewer: the claimed name, then the authenticated identity in brackets."""
    suffix = f" [{principal}]"
    return form.reviewer[: REVIEWER_MAX - len(suffix)] + suffix


def wait_for_decision(timeout_s: int, poll_s: int) -> ApprovalForm:
    """Pause the current flow run until a person (or the timeout watchdog) answers the form; the returned form's
    reviewer is attributed (see the module's docstring)."""
    from prefect.flow_runs import pause_flow_run
    from prefect.runtime import flow_run

    run_id = flow_run.id
    fired = threading.Event()
    watchdog = threading.Timer(timeout_s, _expire, args=(run_id, timeout_s, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        # The pause itself outlives the watchdog by a few polls, so the watchdog's answer is what ends it.
        form = pause_flow_run(wait_for_input=ApprovalForm, timeout=timeout_s + 3 * poll_s + 30, poll_interval=poll_s)
    finally:
        watchdog.cancel()
    return recorded_form(form, fired.is_set(), prefect_principal())


def recorded_form(form: ApprovalForm, watchdog_fired: bool, principal: str) -> ApprovalForm:
    """The form as the catalog records it: the watchdog's own rejection as is, any other answer attributed."""
    if watchdog_fired and form.reviewer == TIMEOUT_REVIEWER and not form.approve:
        return form
    return form.model_copy(update={"reviewer": attributed(form, principal)})


def _expire(run_id: str, timeout_s: int, fired: threading.Event) -> None:
    fired.set()
    with contextlib.suppress(ApprovalError):  # someone may have answered in the meantime
        resume(run_id, approve=False, reviewer=TIMEOUT_REVIEWER, comment=f"no decision within {timeout_s} s")


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
