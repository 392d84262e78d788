"""A promote run reduced to its approval, for the workbench's approval tests: it opens the approval for a passed
gate verdict, pauses with the same form and the same wait as ``flows/promote.py`` (promotion.approval), and
applies the decision with the same ``stages.decide``. The gate's evaluations are left out: they take a trained
model and minutes, and the page under test only answers the pause."""

from __future__ import annotations

import threading
import time

from prefect import flow
from prefect.runtime import flow_run

from aoi.settings import Settings, get_settings
from promotion import approval, stages


@flow(name="promote-approval", log_prints=True)
def awaiting_approval(verdict_id: int) -> dict:
    settings = get_settings()
    run_id = str(flow_run.id)
    approval_id = stages.open_approval(settings, verdict_id, run_id)
    form = approval.wait_for_decision(settings.gate.approval_timeout_s, settings.gate.approval_poll_s)
    return stages.decide(settings, approval_id, form.approve, form.reviewer, form.comment)


class PausedRun:
    """``awaiting_approval`` in a thread of this process; ``result`` once it ended."""

    def __init__(self, verdict_id: int):
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(verdict_id,), daemon=True)
        self.thread.start()

    def _run(self, verdict_id: int) -> None:
        try:
            self.result = awaiting_approval(verdict_id)
        except BaseException as err:  # reported by the test
            self.error = err

    def wait_paused(self, settings: Settings, version: str, timeout: float = 60) -> str:
        """The flow run id once the run is paused waiting for ``version``'s approval."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise self.error
            row = stages.waiting_approval(settings, version=version)
            if row is not None and row.flow_run_id and approval.state_of(row.flow_run_id).is_paused():
                return row.flow_run_id
            time.sleep(0.3)
        raise AssertionError(f"no paused run for {version} within {timeout} s")

    def finish(self, timeout: float = 60) -> dict:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the run did not end"
        return self.result
