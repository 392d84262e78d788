"""The workbench's handle on Prefect: start a deployment (the datasets page's build button) and resume a paused
``promote`` run with a reviewer's decision (the model page's approve / reject), through Prefect's API.

The server is the one the ``aoi`` commands use: ``PREFECT_API_URL`` when set, else this AOI_HOME's local server
with its basic-auth string. The workbench never starts a server from a web request: when none answers, the page
says so and how to start one (``aoi ui``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import httpx

from aoi.settings import Settings

BUILD_DATASET = "build-dataset/on-demand"  # prefect.yaml: the build-dataset flow's deployment


class PrefectUnreachable(RuntimeError):
    """No Prefect server answers (or the local port is another installation's); the message says what to do."""


@dataclass(frozen=True)
class PrefectApi:
    api_url: str
    ui_url: str
    auth: str | None

    def flow_run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/flow-run/{run_id}"


def answers(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect server answers its health check at ``api_url`` (the check needs no credentials)."""
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def reach(settings: Settings) -> PrefectApi:
    """The Prefect server to talk to, checked to answer; PrefectUnreachable when none does."""
    from flows import prefect_server

    # As the aoi commands do (flows.prefect_server.client_env): Prefect's own files stay under AOI_HOME, never in
    # the user's home folder. Read once, when this process first imports Prefect.
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not answers(configured, timeout=5):
            raise PrefectUnreachable(f"no Prefect server answers at PREFECT_API_URL={configured}")
        return PrefectApi(configured, configured.removesuffix("/api"), os.environ.get("PREFECT_API_AUTH_STRING"))
    api_url, ui_url = prefect_server.local_urls(settings)
    if not answers(api_url):
        raise PrefectUnreachable(
            f"the Prefect server of this installation is not running (nothing answers at {api_url}): "
            f"start it with `aoi ui`, then try again"
        )
    auth = prefect_server.auth_string(settings)
    try:
        prefect_server.check_owner(settings, api_url, auth)
    except prefect_server.PrefectUnavailable as err:
        raise PrefectUnreachable(str(err)) from None
    return PrefectApi(api_url, ui_url, auth)


@contextmanager
def client_of(api: PrefectApi) -> Iterator[None]:
    """Prefect's client settings pointed at ``api`` for the calls made inside (this thread's context only)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api.api_url, PREFECT_API_AUTH_STRING: api.auth}):
        yield


@dataclass(frozen=True)
class StartedRun:
    flow_run_id: str
    name: str
    url: str


def start_deployment(settings: Settings, deployment: str, parameters: dict) -> StartedRun:
    """Start ``deployment`` with ``parameters`` and return at once (a worker picks the run up)."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    api = reach(settings)
    with client_of(api):
        try:
            # Called from sync code, run_deployment runs to completion and returns the flow run, not a coroutine.
            run = cast(FlowRun, run_deployment(deployment, parameters=parameters, timeout=0))
        except ObjectNotFound:
            raise PrefectUnreachable(
                f"Prefect has no deployment {deployment}: register the deployments with `aoi deploy`"
            ) from None
    return StartedRun(str(run.id), run.name, api.flow_run_url(str(run.id)))


def decide(
    settings: Settings,
    flow_run_id: str,
    approval_id: int,
    *,
    approve: bool,
    reviewer: str,
    comment: str,
    wait_s: float,
) -> dict:
    """Answer the paused promote run's form exactly as the Prefect UI's Resume button does, then wait up to
    ``wait_s`` for the flow to record the decision; returns the approval as the catalog has it then."""
    from promotion import approval, stages

    api = reach(settings)
    with client_of(api):
        approval.resume(flow_run_id, approve=approve, reviewer=reviewer, comment=comment)
    deadline = time.monotonic() + wait_s
    result = stages.approval(settings, approval_id)
    while result["status"] == "waiting" and time.monotonic() < deadline:
        time.sleep(0.25)
        result = stages.approval(settings, approval_id)
    return {**result, "flow_run_url": api.flow_run_url(flow_run_id)}


def run_state(settings: Settings, flow_run_id: str) -> str | None:
    """The flow run's state name, or None when Prefect cannot be asked."""
    from promotion import approval

    try:
        api = reach(settings)
        with client_of(api):
            state = approval.state_of(flow_run_id)
    except Exception:  # a page shows "unknown" rather than failing on Prefect's account
        return None
    return state.name if state is not None else None
