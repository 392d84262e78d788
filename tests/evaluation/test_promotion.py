"""Stage changes in the catalog (SQLite and PostgreSQL): no approval without a passed gate, one decision per
approval, and every change recorded with who and why."""

from __future__ import annotations

import pytest

from aoi.catalog import db
from aoi.catalog.models import ModelVersion, TrainingRun
from evaluation import promotion
from evaluation.gate import rule


def _candidate(settings, version: str) -> None:
    with db.session(settings.catalog_url) as s:
        run = TrainingRun(kind="gray", dataset="g-v1", arch="resnet18")
        s.add(run)
        s.commit()
        s.add(ModelVersion(version=version, kind="gray", run_id=run.id, dataset="g-v1", arch="resnet18",
                           bento_tag=f"aoi-gray:{version}"))  # fmt: skip
        s.commit()


def test_a_failed_verdict_cannot_open_an_approval_and_a_decision_is_taken_once(catalog_url, settings):
    db.upgrade(catalog_url)
    _candidate(settings, "gray-r1")
    failed = promotion.record_verdict(settings, "gray-r1", "gray", [rule("blind accuracy on b", 0.5, ">=", 0.9)],
                                      ["b"], None, "run-1")  # fmt: skip
    assert failed["passed"] is False
    with pytest.raises(promotion.PromotionError, match="did not pass"):
        promotion.open_approval(settings, failed["verdict_id"], "run-1")
    warning = {"label": "OPEN", "warning": "low recall", "figure": 0.8, "limit": 0.9, "message": "OPEN: recall 80%"}
    passed = promotion.record_verdict(settings, "gray-r1", "gray", [rule("blind accuracy on b", 0.95, ">=", 0.9)],
                                      ["b"], None, "run-2", [warning])  # fmt: skip
    assert passed["passed"] is True and passed["warnings"] == [warning]  # a warning never fails the verdict
    assert [v["warnings"] for v in promotion.verdicts(settings, "gray-r1")] == [[], [warning]]
    approval_id = promotion.open_approval(settings, passed["verdict_id"], "run-2")
    with pytest.raises(promotion.PromotionError, match="reviewer's name"):
        promotion.decide(settings, approval_id, True, "  ")
    decided = promotion.decide(settings, approval_id, True, "alice", "fine on b")
    assert (decided["status"], decided["stage"]) == ("approved", "production")
    with pytest.raises(promotion.PromotionError, match="not waiting"):
        promotion.decide(settings, approval_id, False, "bob")
    assert promotion.production(settings, "gray").version == "gray-r1"
    assert [(h["from"], h["to"], h["by"], h["reason"]) for h in promotion.history(settings, "gray")] == [
        ("candidate", "production", "alice", "fine on b")
    ]
