"""Live accuracy of confirmed answers (``monitoring.live``): the bound, what counts as right, the scopes, the verdict
it adds to a drift check (one retraining per episode, as input drift), the check's row, and `aoi predictions`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import DriftCheck, DriftEpisode, Evaluation, LineFeedback, Prediction, table_of
from aoi.image_metrics import TONE_FIELDS
from monitoring import check, live, policy, steps
from tests.flows.helpers import aoi
from tests.monitoring.helpers import T0

LABELS = ("SHORT", "OPEN", "SPUR", "MOUSE_BITE")
VERSION = "gray-test-1"
SMALL = {"MONITORING__MIN_CONFIRMED": 50}


def confirmed_answers(
    settings,
    machine: str | None,
    part: str | None,
    right: int,
    wrong: int,
    unknown: int = 0,
    not_defect: int = 0,
    start=T0,
    version: str = VERSION,
    kind: str = "gray",
    latency_ms=5.0,
    unconfirmed: int = 0,
    seed: int = 0,
) -> list[str]:
    """Answers logged as the service logs them, and the line's confirmation of each (but ``unconfirmed``)."""
    rng = np.random.default_rng(seed)
    predictions, feedback = [], []
    outcomes = ["right"] * right + ["wrong"] * wrong + ["unknown"] * unknown + ["not_defect"] * not_defect
    outcomes += ["unconfirmed"] * unconfirmed
    for i, outcome in enumerate(outcomes):
        said = str(rng.choice(LABELS))
        truth = {
            "right": said,
            "wrong": next(label for label in LABELS if label != said),
            "unknown": said,
            "not_defect": live.NOT_DEFECT,
        }.get(outcome)
        request_id = uuid.uuid4().hex
        predictions.append(
            {
                "request_id": request_id,
                "at": start + timedelta(seconds=i),
                "latency_ms": float(latency_ms(i) if callable(latency_ms) else latency_ms),
                "kind": kind,
                "model_version": version,
                "machine_id": machine,
                "part_no": part,
                "label": "UNKNOWN" if outcome == "unknown" else said,
                "coarse_label": "X",
                "model_label": said,
                "confidence": 0.5 if outcome == "unknown" else 0.999,
                "unknown": outcome == "unknown",
                "route": "auto",
                "sha256": "0" * 64,
                "format": "PNG",
                "bytes_per_pixel": 0.5,
                "width": 32,
                "height": 32,
                **{field: 140.0 for field in TONE_FIELDS},
            }
        )
        if truth is not None:
            feedback.append({"request_id": request_id, "label": truth, "by": "vrs-station", "source": "import"})
    with db.get_engine(settings.catalog_url).begin() as connection:
        connection.execute(table_of(Prediction).insert(), predictions)
        if feedback:
            connection.execute(table_of(LineFeedback).insert(), feedback)
    return [p["request_id"] for p in predictions]


def blind_evaluation(settings, accepted_accuracy: float, images: int = 400, unknown_rate: float = 0.1, name="blind-a"):
    with db.session(settings.catalog_url) as s:
        s.add(
            Evaluation(
                model_version=VERSION,
                dataset=name,
                split="blind",
                images=images,
                threshold=0.9,
                accuracy=accepted_accuracy - 0.05,
                accepted_accuracy=accepted_accuracy,
                unknown_rate=unknown_rate,
            )
        )
        s.commit()


def window():
    return check.Window(T0, T0 + timedelta(hours=1))


def test_the_upper_bound_covers_the_true_accuracy_as_often_as_it_says():
    rng = np.random.default_rng(7)
    for p, n in [(0.95, 100), (0.85, 300), (0.7, 60)]:
        draws = rng.binomial(n, p, 4000)
        below = np.mean([live.upper_bound(int(k), n, 0.95) < p for k in draws])
        assert 0.02 <= below <= 0.08, (p, n, below)  # one-sided 95%: the truth is above the bound about 5% of draws
    assert live.upper_bound(90, 100, 0.95) > 0.9 > live.upper_bound(80, 100, 0.95)
    assert live.upper_bound(100, 100, 0.95) == 1.0 and live.upper_bound(0, 0, 0.95) == 1.0


def test_the_bound_not_the_point_estimate_decides(configure):
    config = configure(**SMALL).monitoring
    # 0.88 is below 0.95 - 0.05, but 60 answers cannot tell it from 0.90: no drift
    assert live.verdict(53, 60, 0.95, config)[0] is False
    drift, bound, why = live.verdict(420, 600, 0.95, config)
    assert drift is True and bound < 0.90 and why.startswith("0.70 (bound ") and "< blind 0.95 - 0.05" in why
    assert live.verdict(20, 30, 0.95, config)[0] is None, "too few confirmed answers: no verdict"
    assert live.verdict(420, 600, None, config)[0] is None, "no blind accuracy: no verdict"


def test_live_accuracy_per_scope_counts_only_accepted_answers_with_a_fine_class_truth(configure):
    settings = configure(**SMALL)
    blind_evaluation(settings, 0.95)
    confirmed_answers(settings, "vrs-01", "P-1001", right=95, wrong=5, unknown=12, not_defect=7, unconfirmed=20)
    confirmed_answers(settings, "vrs-03", "P-1001", right=70, wrong=30, unknown=3, seed=1)
    confirmed_answers(settings, "vrs-04", None, right=20, wrong=20, seed=2)
    confirmed_answers(settings, "vrs-03", "P-1001", right=0, wrong=50, start=T0 - timedelta(hours=2), seed=3)
    result = steps.live_accuracy(settings, "gray", VERSION, window())
    by_scope = {row["scope"]: row for row in result["scopes"]}
    assert result["blind"]["accuracy"] == 0.95
    ok = by_scope["vrs-01"]
    assert (ok["confirmed"], ok["n"], ok["correct"], ok["unknown"], ok["not_defect"]) == (119, 100, 95, 12, 7)
    assert ok["drift"] is False and ok["accuracy"] == 0.95
    stale = by_scope["vrs-03/P-1001"]
    assert (stale["n"], stale["correct"], stale["drift"]) == (100, 70, True), "the window's answers only"
    assert stale["bound"] < 0.9 and by_scope["vrs-03"]["drift"] is True
    assert by_scope["vrs-04"]["drift"] is None and "too few confirmed answers" in by_scope["vrs-04"]["reason"]
    assert by_scope["part P-1001"]["n"] == 200 and by_scope["all"]["n"] == 240
    assert "vrs-04/None" not in by_scope and "vrs-01/P-1001" in by_scope
    reasons = live.drift_reasons(result)
    assert any(r.startswith("live accuracy on vrs-03/P-1001 0.70 (bound 0.") for r in reasons), reasons
    assert all("vrs-01" not in r for r in reasons)
    assert any(r.startswith("live accuracy on gray 0.") for r in reasons), "the whole kind is named by its kind"


def test_the_blind_figure_pools_the_newest_evaluation_of_each_blind_set(configure):
    settings = configure()
    assert live.blind_accuracy(settings, VERSION) is None
    blind_evaluation(settings, 0.5, name="blind-a")
    blind_evaluation(settings, 0.9, images=100, unknown_rate=0.0, name="blind-a")  # newer: replaces the first
    blind_evaluation(settings, 0.8, images=300, unknown_rate=0.0, name="blind-b")
    figure = live.blind_accuracy(settings, VERSION)
    assert figure is not None and figure["blind_sets"] == ["blind-a", "blind-b"] and figure["accepted_answers"] == 400
    assert figure["accuracy"] == pytest.approx((0.9 * 100 + 0.8 * 300) / 400, abs=1e-4)


def _scopes_with(live_figures: dict) -> dict:
    """A check whose inputs are clean everywhere, with the given live accuracy."""
    clean = {"samples": 300, "drift": False, "reasons": []}
    return {"overall": clean, "machines": {"vrs-03": dict(clean)}, "parts": {}, "report": None} | {
        "live_accuracy": live_figures
    }


def test_a_confirmed_drop_alone_is_drift_and_opens_one_episode(configure):
    settings = configure(**SMALL)
    blind_evaluation(settings, 0.95)
    confirmed_answers(settings, "vrs-03", "P-1001", right=65, wrong=35)
    confirmed_answers(settings, "vrs-01", "P-1001", right=96, wrong=4, seed=1)
    scopes = _scopes_with(steps.live_accuracy(settings, "gray", VERSION, window()))
    assert check.verdict_of(scopes) is True
    assert check.drifted_machines(scopes) == ["vrs-03"]
    assert "live accuracy on vrs-03 0.65" in check.reasons(scopes)
    first = steps.decide(settings, "gray", True, check.drifted_machines(scopes), True, lambda _: False)
    assert first.trigger and first.text == "drift: retraining triggered"
    again = steps.decide(settings, "gray", check.verdict_of(scopes), ["vrs-03"], True, lambda _: False)
    assert not again.trigger and again.text.startswith("drift: retraining already triggered")
    with db.session(settings.catalog_url) as s:
        assert [e.machines for e in s.exec(select(DriftEpisode)).all()] == [["vrs-03"]]
    assert policy.open_episode(settings, "gray") is not None

    check_id = steps.record(settings, "gray", VERSION, window(), pd.DataFrame(), scopes, True, first, flow_run_id=None)
    with db.session(settings.catalog_url) as s:
        kept = db.get_row(s, DriftCheck, check_id).live_accuracy
    assert kept is not None and kept["blind"]["accuracy"] == 0.95
    stored = {r["scope"]: r for r in kept["scopes"]}
    assert stored["vrs-03"]["drift"] is True and stored["vrs-01"]["drift"] is False

    summary = check.summarise("gray", VERSION, window(), pd.DataFrame(), 0, scopes, True, first, None, check_id)
    assert {r["scope"] for r in summary["live_accuracy"]} >= {"all", "vrs-03", "vrs-01", "part P-1001"}
    assert summary["live_accuracy_reasons"] and "live accuracy" in check.markdown(summary)
    combined = check.combine({"gray": summary})
    assert combined["live_accuracy"] == summary["live_accuracy"]
    assert steps.MonitorResult(**combined).as_dict()["live_accuracy"][0]["kind"] == "gray"


def test_an_unchanged_line_or_too_few_answers_is_no_drift(configure):
    settings = configure(**SMALL)
    blind_evaluation(settings, 0.95)
    confirmed_answers(settings, "vrs-01", None, right=91, wrong=9)  # 0.91: within 0.95 - 0.05 by its bound
    confirmed_answers(settings, "vrs-02", None, right=6, wrong=4, seed=1)  # 0.6, but only 10 answers
    scopes = _scopes_with(steps.live_accuracy(settings, "gray", VERSION, window()))
    machines = {r["scope"]: r["drift"] for r in scopes["live_accuracy"]["scopes"]}
    assert machines["vrs-01"] is False and machines["vrs-02"] is None
    assert check.verdict_of(scopes) is False and check.drifted_machines(scopes) == []


def test_predictions_show_live_accuracy_latency_and_errors_per_model(configure):
    settings = configure()
    confirmed_answers(settings, "vrs-01", None, right=80, wrong=20, unknown=5, not_defect=3, unconfirmed=10)
    confirmed_answers(
        settings,
        "vrs-01",
        None,
        right=0,
        wrong=0,
        unconfirmed=100,
        version="gray-test-2",
        seed=1,
        latency_ms=lambda i: float(i + 1),
    )
    result = aoi("predictions")
    rows = {r["model_version"]: r for r in result["by_model"]}
    first, second = rows[VERSION], rows["gray-test-2"]
    assert (first["confirmed"], first["confirmed_accepted"], first["errors"]) == (108, 100, 20)
    assert first["live_accuracy"] == 0.8 and first["latency_p50_ms"] == 5.0
    assert second["confirmed"] == 0 and second["live_accuracy"] is None and second["errors"] == 0
    assert second["latency_p50_ms"] == pytest.approx(50.5) and second["latency_p99_ms"] == pytest.approx(99.01)
