"""Stage changes in the catalog (SQLite and PostgreSQL): no approval without a passed gate, one decision per
approval, and every change recorded with who and why."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlmodel import Session, select

from aoi.catalog import db
from aoi.catalog.models import ModelVersion, TrainingRun
from promotion import stages
from promotion.gate import rule


def _candidate(settings, version: str) -> None:
    with db.session(settings.catalog_url) as s:
        run = TrainingRun(kind="gray", dataset="g-v1", arch="resnet18")
        s.add(run)
        s.commit()
        s.add(
            ModelVersion(
                version=version,
                kind="gray",
                run_id=run.id,
                dataset="g-v1",
                arch="resnet18",
                bento_tag=f"aoi-gray:{version}",
            )
        )
        s.commit()


def test_a_failed_verdict_cannot_open_an_approval_and_a_decision_is_taken_once(catalog_url, settings):
    db.upgrade(catalog_url)
    _candidate(settings, "gray-r1")
    failed = stages.record_verdict(
        settings, "gray-r1", "gray", [rule("blind accuracy on b", 0.5, ">=", 0.9)], ["b"], None, "run-1"
    )
    assert failed["passed"] is False
    with pytest.raises(stages.PromotionError, match="did not pass"):
        stages.open_approval(settings, failed["verdict_id"], "run-1")
    warning = {"label": "OPEN", "warning": "low recall", "figure": 0.8, "limit": 0.9, "message": "OPEN: recall 80%"}
    passed = stages.record_verdict(
        settings, "gray-r1", "gray", [rule("blind accuracy on b", 0.95, ">=", 0.9)], ["b"], None, "run-2", [warning]
    )
    assert passed["passed"] is True and passed["warnings"] == [warning]  # a warning never fails the verdict
    assert [v["warnings"] for v in stages.verdicts(settings, "gray-r1")] == [[], [warning]]
    approval_id = stages.open_approval(settings, passed["verdict_id"], "run-2")
    with pytest.raises(stages.PromotionError, match="reviewer's name"):
        stages.decide(settings, approval_id, True, "  ")
    decided = stages.decide(settings, approval_id, True, "alice", "fine on b")
    assert (decided["status"], decided["stage"]) == ("approved", "production")
    with pytest.raises(stages.PromotionError, match="not waiting"):
        stages.decide(settings, approval_id, False, "bob")
    assert stages.production(settings, "gray").version == "gray-r1"
    assert [(h["from"], h["to"], h["by"], h["reason"]) for h in stages.history(settings, "gray")] == [
        ("candidate", "production", "alice", "fine on b")
    ]


def _gated(settings, version: str, production_version: str | None) -> int:
    verdict = stages.record_verdict(
        settings, version, "gray", [rule("blind accuracy on b", 0.95, ">=", 0.9)], ["b"], production_version, None
    )
    return stages.open_approval(settings, verdict["verdict_id"], None)


def test_two_approvals_at_once_make_exactly_one_production_model(catalog_url, settings):
    import threading

    db.upgrade(catalog_url)
    for version in ("gray-r1", "gray-r2", "gray-r3"):
        _candidate(settings, version)
    stages.decide(settings, _gated(settings, "gray-r1", None), True, "alice")
    approvals = {version: _gated(settings, version, "gray-r1") for version in ("gray-r2", "gray-r3")}
    barrier, outcomes = threading.Barrier(2), {}

    def approve(version: str) -> None:
        barrier.wait()
        try:
            outcomes[version] = stages.decide(settings, approvals[version], True, f"reviewer of {version}")["status"]
        except stages.PromotionError as err:
            outcomes[version] = str(err)

    threads = [threading.Thread(target=approve, args=(v,)) for v in approvals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with db.session(catalog_url) as s:
        stage_of = {m.version: m.stage for m in s.exec(select(ModelVersion)).all()}
    winner = next(v for v, outcome in outcomes.items() if outcome == "approved")
    loser = next(v for v in approvals if v != winner)
    assert stage_of == {"gray-r1": "archived", winner: "production", loser: "candidate"}
    assert f"its gate compared it with gray-r1, but gray production is now {winner}" in outcomes[loser]
    assert stages.approval(settings, approvals[loser])["status"] == "superseded"
    assert [h["to"] for h in stages.history(settings, "gray")] == ["production", "archived", "production"]


def test_the_catalog_itself_refuses_a_second_production_model_of_a_kind(catalog_url, settings):
    from sqlalchemy.exc import IntegrityError

    db.upgrade(catalog_url)
    for version in ("gray-r1", "gray-r2"):
        _candidate(settings, version)
    stages.decide(settings, _gated(settings, "gray-r1", None), True, "alice")
    with db.session(catalog_url) as s:  # a writer that bypasses stages.decide
        row = s.exec(select(ModelVersion).where(ModelVersion.version == "gray-r2")).one()
        row.stage = "production"
        s.add(row)
        with pytest.raises(IntegrityError):
            s.commit()
    with db.session(catalog_url) as s:  # other kinds and other stages are not limited
        run = s.exec(select(TrainingRun)).first()
        s.add(
            ModelVersion(
                version="color-r1",
                kind="color",
                stage="production",
                run_id=run.id,
                dataset="c",
                arch="resnet18",
                bento_tag="aoi-color:r1",
            )
        )
        s.commit()
    assert stages.production(settings, "gray").version == "gray-r1"


def test_upgrading_a_catalog_with_two_production_models_of_a_kind_keeps_the_latest(catalog_url, settings):
    from datetime import datetime, timedelta

    assert db.upgrade(catalog_url, "0007") == "0007"
    engine = db.make_engine(catalog_url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(engine) as s:
        run = TrainingRun(kind="gray", dataset="g-v1", arch="resnet18")
        s.add(run)
        s.commit()
        for n, (version, kind) in enumerate([("gray-a", "gray"), ("gray-b", "gray"), ("color-a", "color")]):
            s.add(
                ModelVersion(
                    version=version,
                    kind=kind,
                    stage="production",
                    run_id=run.id,
                    dataset="d",
                    arch="resnet18",
                    bento_tag=f"t:{version}",
                    stage_changed_at=start + timedelta(hours=n),
                )
            )
        s.commit()
    engine.dispose()
    assert db.upgrade(catalog_url) == db.head_revision()
    with db.session(catalog_url) as s:
        stage_of = {m.version: m.stage for m in s.exec(select(ModelVersion)).all()}
    assert stage_of == {"gray-a": "archived", "gray-b": "production", "color-a": "production"}
    assert [(h["model_version"], h["from"], h["to"], h["by"]) for h in stages.history(settings, "gray")] == [
        ("gray-a", "production", "archived", "migration 0008")
    ]


def test_a_rollback_returns_production_to_the_model_it_replaced(catalog_url, settings):
    db.upgrade(catalog_url)
    for version in ("gray-r1", "gray-r2"):
        _candidate(settings, version)
    stages.decide(settings, _gated(settings, "gray-r1", None), True, "alice")
    stages.decide(settings, _gated(settings, "gray-r2", "gray-r1"), True, "bob")
    assert stages.production(settings, "gray").version == "gray-r2"
    assert stages.rollback(settings, "gray", "carol", "worse on the line")["production"] == "gray-r1"
    with db.session(catalog_url) as s:
        assert {m.version: m.stage for m in s.exec(select(ModelVersion)).all()} == {
            "gray-r1": "production",
            "gray-r2": "rolled_back",
        }
