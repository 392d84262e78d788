"""The review pages with a real Prefect server (the session's test harness): a reviewer's decision on the model
page resumes the paused promote run as the Prefect UI's form does; the datasets page starts build-dataset."""

from __future__ import annotations

import re
from html import unescape
from typing import cast
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import Approval, ModelVersion, StageChange, UserRole
from tests.workbench import review_rows
from tests.workbench.helpers import logged_in, token
from tests.workbench.review_flows import PausedRun
from tests.workbench.review_rows import CANDIDATE, PRODUCTION

pytestmark = pytest.mark.usefixtures("prefect_api")


def group(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern``'s first match in ``text`` (the test fails when there is none)."""
    match = re.search(pattern, text, flags)
    assert match, f"no {pattern!r} in the page"
    return match.group(1)


@pytest.fixture
def fast_poll(configure):
    return configure(GATE__APPROVAL_POLL_S=1)


@pytest.mark.slow  # a flow run paused and resumed: about 20 s
def test_approve_on_the_model_page_resumes_the_paused_promote_run(fast_poll):
    from promotion import approval
    from workbench.app import create_app

    settings = fast_poll
    review_rows.review_catalog(settings)
    run = PausedRun(review_rows.promotion_records(settings))
    run_id = run.wait_paused(settings, CANDIDATE)
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.reviewer, "rita")
        page = client.get(f"/models/{CANDIDATE}").text
        assert run_id in page and 'id="approve"' in page
        answer = client.post(
            f"/models/{CANDIDATE}/decision",
            data={"decision": "approve", "comment": "blind 0717 holds", "csrf_token": token(client)},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"].endswith("?decided=approved#approval")
        result = run.finish()
        # The run took the form and recorded the logged-in user, with the Prefect login the flow adds.
        recorded = "web:rita [prefect:unauthenticated]"
        assert (result["status"], result["stage"], result["reviewer"]) == ("approved", "production", recorded)
        assert approval.state_of(run_id).is_completed()
        with db.session(settings.catalog_url) as s:
            stages = {m.version: m.stage for m in s.exec(select(ModelVersion)).all()}
            changes = s.exec(select(StageChange).where(StageChange.flow_run_id == run_id)).all()
            row = s.exec(select(Approval).where(Approval.flow_run_id == run_id)).one()
        assert (stages[CANDIDATE], stages[PRODUCTION]) == ("production", "archived")
        assert {(c.model_version, c.to_stage, c.by) for c in changes} == {
            (CANDIDATE, "production", recorded),
            (PRODUCTION, "archived", recorded),
        }
        assert row.comment == "blind 0717 holds"
        shown = client.get(f"/models/{CANDIDATE}?decided=approved").text
        assert 'id="approve"' not in shown and recorded in shown and "approved" in shown
        again = client.post(f"/models/{CANDIDATE}/decision", data={"decision": "reject", "csrf_token": token(client)})
        assert again.status_code == 409  # decided: nothing waits any more


def test_the_build_button_starts_the_build_dataset_deployment(settings):
    from prefect import Flow, flow
    from prefect.client.orchestration import get_client

    from flows.deployments import ROOT, ensure_work_pool
    from workbench.app import create_app

    review_rows.datasets(settings)
    ensure_work_pool(settings.monitoring.work_pool)
    source = cast(Flow, flow.from_source(source=str(ROOT), entrypoint="flows/dataset.py:build_dataset"))
    deployment_id = source.deploy(
        name="on-demand", work_pool_name=settings.monitoring.work_pool, print_next_steps=False, ignore_warnings=True
    )
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.engineer)
        form = {"new_name": "g-v1.2", "per_class": "40", "split": "8:1:1", "seed": "3"}
        started = client.post("/datasets/g-v1.1/build", data={**form, "csrf_token": token(client, "/datasets/g-v1.1")})
    assert started.status_code == 202, started.text
    link = unescape(group(r'id="started">.*?<a href="([^"]+)"', started.text, re.S))
    run_id = UUID(link.rsplit("/", 1)[-1])
    assert link.endswith(f"/runs/flow-run/{run_id}")
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(run_id)
        try:
            assert flow_run.deployment_id == deployment_id
            assert flow_run.parameters == {
                "name": "g-v1.2",
                "source": "gray",
                "spec": None,
                "per_class": 40,
                "split": "8:1:1",
                "seed": 3,
                "parent": "g-v1.1",
            }
        finally:  # no worker here: leave no scheduled run for a later test's worker to pick up
            prefect.delete_flow_run(run_id)
