"""The monitor flow against a real Prefect server with the deployments registered: a drifted window creates
exactly one retrain flow run through the deployment; a clean window none; a second drifted check in the same
episode none; the episode closes only on a clean window after its retraining ended."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import DriftCheck, DriftEpisode
from monitoring import history, steps
from tests.evaluation.models import GRAY, gray_data, trained_model
from tests.flows.helpers import aoi
from tests.monitoring.helpers import T0, log_answers
from tests.serving.helpers import promote

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]
SMALL = {"MONITORING__MIN_SAMPLES": 60, "MONITORING__MIN_MACHINE_SAMPLES": 30, "MONITORING__WORK_POOL": "aoi-test-pool"}


def retrain_runs(kind: str = "gray") -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, FlowRunFilter

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"retrain/{kind}")
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}), flow_run_filter=FlowRunFilter()
        )


def end_run(run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelled(), force=True)


def check(start, hours: float = 1.0, *options: str, code: int = 0) -> dict:
    return aoi(
        "monitor",
        "--kind",
        "gray",
        "--since",
        start.isoformat(),
        "--until",
        (start + timedelta(hours=hours)).isoformat(),
        *options,
        code=code,
    )


@pytest.fixture
def production(configure, tmp_path):
    settings = configure(**SMALL)
    gray_data(tmp_path, folders={k: 12 for k in GRAY})
    version = trained_model(settings, epochs=1)
    promote(settings, version)
    return settings, version, steps.reference(settings, version)


def test_one_drift_episode_triggers_one_retraining(production):
    settings, version, reference = production
    deployed = aoi("deploy")
    names = {d["deployment"]: d for d in deployed["deployments"]}
    assert names["retrain/gray"]["schedule"] == f"cron {settings.monitoring.retrain_cron}"
    assert names["monitor/every-interval"]["schedule"] == f"every {settings.monitoring.monitor_interval_s} s"
    assert {"ingest/on-demand", "train/on-demand", "promote/on-demand", "retrain/color"} <= set(names)

    windows = [T0 + timedelta(hours=h) for h in range(6)]
    for h, dim in [(0, None), (1, {"m2": 0.8}), (2, {"m2": 0.8}), (3, {"m2": 0.8}), (4, None), (5, {"m2": 0.8})]:
        log_answers(settings, version, "gray", reference, 100, windows[h], dim=dim, seed=h)

    clean = check(windows[0])
    assert clean["drift"] is False and clean["samples"] == 300 and clean["kinds"]["gray"]["decision"] == "clean", clean[
        "machines"
    ]
    assert retrain_runs() == []

    drifted = check(windows[1])
    gray = drifted["kinds"]["gray"]
    assert drifted["drift"] is True and gray["decision"] == "drift: retraining triggered"
    # the kind drifted through one machine; the whole window's own verdict is its own figure
    assert gray["overall_drift"] == (gray["drift_share"] >= settings.monitoring.drift_share)
    assert (
        drifted["machines"]["gray/m2"]["drift"] is True
        and "brightness" in drifted["machines"]["gray/m2"]["drifted_columns"]
    )
    assert drifted["machines"]["gray/m1"]["drift"] is False and drifted["machines"]["gray/m3"]["drift"] is False
    runs = retrain_runs()
    assert len(runs) == 1 and str(runs[0].id) == gray["retraining"]["flow_run_id"]
    assert runs[0].parameters["kind"] == "gray" and "m2" in runs[0].parameters["reason"]

    again = check(windows[2])
    assert again["drift"] is True and again["kinds"]["gray"]["decision"].startswith(
        "drift: retraining already triggered"
    )
    assert len(retrain_runs()) == 1, "a second drifted check in the same episode starts nothing"

    end_run(gray["retraining"]["flow_run_id"])
    assert check(windows[3])["kinds"]["gray"]["decision"].startswith("drift: retraining already triggered"), (
        "the retraining ended, but no clean window has been seen since"
    )
    closed = check(windows[4])
    assert closed["drift"] is False and closed["kinds"]["gray"]["decision"].endswith("closed")
    assert check(windows[5])["kinds"]["gray"]["decision"] == "drift: retraining triggered"
    assert len(retrain_runs()) == 2, "a new episode, a new retraining"

    with db.session(settings.catalog_url) as s:
        checks = s.exec(select(DriftCheck).order_by(col(DriftCheck.id))).all()
        episodes = s.exec(select(DriftEpisode).order_by(col(DriftEpisode.id))).all()
    assert [c.drift for c in checks] == [False, True, True, True, False, True]
    assert [e.closed_at is not None for e in episodes] == [True, False] and episodes[1].open_kind == "gray"
    assert checks[1].machines["m2"]["drift"] is True and checks[1].report_path.endswith(".html")
    # every check is in the Evidently workspace too (`evidently ui` shows the history)
    assert len(history.runs(settings, "gray")) == len(checks)
    assert all(c.live_accuracy["scopes"][0]["confirmed"] == 0 for c in checks), "no answer confirmed yet"


def test_too_few_samples_says_so_and_triggers_nothing(production):
    settings, version, reference = production
    log_answers(settings, version, "gray", reference, 10, T0, seed=9, dim={"m2": 0.5})
    result = check(T0)
    gray = result["kinds"]["gray"]
    assert result["drift"] is None and gray["decision"] == "too few samples" and gray["retraining"] is None
    assert gray["overall_drift"] is None
    assert "too few samples to say: 30 < 60" in gray["reasons"][0]


def test_no_trigger_reports_drift_without_opening_an_episode(production):
    settings, version, reference = production
    log_answers(settings, version, "gray", reference, 40, T0, seed=4, dim={"m1": 0.7})
    result = check(T0, 1.0, "--no-trigger")
    assert result["drift"] is True and result["kinds"]["gray"]["decision"] == "drift: not triggered (--no-trigger)"
    with db.session(settings.catalog_url) as s:
        assert s.exec(select(DriftEpisode)).all() == []


def test_a_kind_without_a_production_model_is_refused(configure):
    configure(**SMALL)
    refused = aoi("monitor", "--kind", "color", code=2)
    assert "no production color model" in refused["error"]


def test_answers_the_line_confirms_wrong_are_drift_alone_and_start_one_retraining(production, configure):
    """Inputs unchanged on every machine, but the line confirms m2's answers wrong (a SIMULATION of a model gone
    stale on one machine, tone unchanged): live accuracy alone flags m2 and starts the episode's one retraining."""
    from aoi.catalog.models import Evaluation, LineFeedback, Prediction

    settings, version, reference = production
    settings = configure(**SMALL, MONITORING__MIN_CONFIRMED=40)
    aoi("deploy")
    with db.session(settings.catalog_url) as s:
        s.add(
            Evaluation(
                model_version=version,
                dataset="g-blind",
                split="blind",
                images=200,
                threshold=0.5,
                accuracy=0.9,
                accepted_accuracy=0.95,
                unknown_rate=0.0,
            )
        )
        s.commit()
    for h in (0, 1):
        log_answers(settings, version, "gray", reference, 100, T0 + timedelta(hours=h), seed=h)
    with db.session(settings.catalog_url) as s:
        answers = s.exec(select(Prediction).where(Prediction.at >= T0 + timedelta(hours=1))).all()
        for p in answers:
            # the one-epoch test model answers most images Unknown at its threshold, and an Unknown answer is neither
            # right nor wrong: the line's answers here are accepted ones (one column of thirteen: no input drift)
            p.unknown = False
            s.add(p)
            wrong = p.machine_id == "m2" and int(p.request_id, 16) % 10 < 5  # half of m2's answers
            truth = ("OPEN" if p.model_label != "OPEN" else "SHORT") if wrong else p.model_label
            s.add(LineFeedback(request_id=p.request_id, label=truth, by="vrs", source="import"))
        s.commit()

    started = len(retrain_runs())  # the session's Prefect server keeps other tests' runs
    before = check(T0)
    assert before["drift"] is False and before["kinds"]["gray"]["decision"] == "clean", "nothing confirmed yet"
    stale = check(T0 + timedelta(hours=1))
    gray = stale["kinds"]["gray"]
    assert stale["drift"] is True and gray["decision"] == "drift: retraining triggered", gray["live_accuracy"]
    assert all(not m["drift"] for m in gray["machines"].values()), "the inputs did not drift"
    scopes = {r["scope"]: r for r in stale["live_accuracy"]}
    assert scopes["m2"]["drift"] is True and scopes["m2"]["n"] >= 40, scopes["m2"]
    assert scopes["m1"]["drift"] is False and scopes["m3"]["drift"] is False
    reasons = gray["live_accuracy_reasons"]
    assert any(r.startswith("live accuracy on m2 ") for r in reasons), reasons
    assert not any(r.startswith(("live accuracy on m1 ", "live accuracy on m3 ")) for r in reasons), reasons
    runs = [r for r in retrain_runs() if str(r.id) == gray["retraining"]["flow_run_id"]]
    assert len(retrain_runs()) == started + 1 and "live accuracy on m2" in runs[0].parameters["reason"]
    assert check(T0 + timedelta(hours=1))["kinds"]["gray"]["decision"].startswith("drift: retraining already")
    assert len(retrain_runs()) == started + 1, "one retraining per episode"
