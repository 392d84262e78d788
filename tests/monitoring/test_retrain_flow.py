"""The retrain flow: it starts from the production model, ingests the inbox, builds a child dataset version,
trains with the production run's settings (Ray) and sends the new candidate through the gate."""

from __future__ import annotations

import pytest

from monitoring import retraining
from tests.evaluation.models import GRAY, gray_data, trained_model
from tests.flows.helpers import aoi
from tests.helpers import class_folder
from tests.serving.helpers import promote


def test_without_a_production_model_there_is_nothing_to_retrain(settings):
    with pytest.raises(retraining.RetrainError, match="no production gray model"):
        retraining.plan(settings, "gray")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_retrain_builds_a_child_version_trains_it_and_gates_it(configure, tmp_path):
    settings = configure(GATE__MIN_BLIND_ACCURACY=1.0, MONITORING__INBOX=tmp_path / "inbox")  # gate fails: no pause
    gray_data(tmp_path, folders={k: 10 for k in GRAY})
    production = trained_model(settings, epochs=1)
    promote(settings, production)
    class_folder(tmp_path / "inbox" / "gray" / "week-47", {k: 3 for k in GRAY}, seed=11)
    (tmp_path / "inbox" / "gray" / "notes.txt").write_text("not a batch")
    # Answers the service kept, labelled in the review queue: the retrain flow takes them as one more batch.
    from aoi.catalog import db
    from tests.workbench.kept_helpers import kept_answers
    from workbench import review_queue

    kept = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.4), ("SPUR", 0.5)])
    with db.session(settings.catalog_url) as s:
        for request_id, label in zip(kept, ("OPEN", "OPEN", "SKIP"), strict=True):
            review_queue.decide(s, request_id, label, "erin")

    plan = retraining.plan(settings, "gray")
    assert plan.parent_dataset == "g-v1" and plan.production_version == production
    assert plan.batches == [(str(tmp_path / "inbox" / "gray" / "week-47"), "folder")]
    assert plan.training["input_size"] == 32 and plan.training["per_class"] == 8

    from flows.retrain import retrain

    result = retrain("gray", reason="test").as_dict()
    assert result["ingest"][0]["added"] == 21
    assert (result["ingest"][1]["format"], result["ingest"][1]["by_label"]) == ("review", {"OPEN": 2})
    child = aoi("dataset", "show", result["dataset"]["name"])
    assert child["parent"] == "g-v1" and child["images"] == 70 + 21 + 2
    line = {step["rule"]: step for step in child["cleaning"]}["confirmed from the line"]
    assert (line["images"], line["since_parent"]) == (2, 2)
    model = result["model"]["model_version"]
    assert model != production and result["promotion"]["decision"] == "gate failed"
    # Calibrated before its gate, as the demo does for its first models: the gate judged it at its own threshold.
    calibration = result["calibration"]
    stored = {m["version"]: m["threshold"] for m in aoi("models")}[model]
    judged_at = result["promotion"]["verdict"]["unknown_threshold"]  # the verdict says at which threshold
    unknown_rule = {r["rule"]: r for r in result["promotion"]["verdict"]["rules"]}["Unknown rate on blind sets"]
    if calibration["threshold"] is not None:
        assert stored == calibration["threshold"] and calibration["dataset"] == result["dataset"]["name"]
        assert judged_at["calibrated"] is True and judged_at["value"] == stored
    else:  # no threshold reaches the target on this tiny valid split: the default stays, and the result says why
        assert stored is None and "skipped" in calibration
        assert judged_at["calibrated"] is False
    assert f"Unknown threshold {judged_at['value']:.4f}" in unknown_rule["detail"]
    stages = {m["version"]: m["stage"] for m in aoi("models")}
    assert stages == {production: "production", model: "candidate"}
