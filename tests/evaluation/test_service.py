"""Evaluate, calibrate, robustness and compare through the CLI on a registered model and a real catalog."""

from __future__ import annotations

import pytest

from tests.evaluation.models import gray_data, trained_model
from tests.flows.test_ingest_flow import aoi

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def gray_model(settings, tmp_path) -> str:
    gray_data(tmp_path)
    return trained_model(settings, epochs=1)


def test_evaluate_on_a_blind_set_stores_figures_and_writes_a_report(settings, gray_model):
    result = aoi("evaluate", gray_model, "--dataset", "g-blind-0717")
    assert result["split"] == "blind" and result["images"] == 21
    confusion = result["confusion"]
    assert sum(map(sum, confusion)) == 21 and len(result["labels"]) == 7
    assert result["accuracy"] == pytest.approx(sum(confusion[i][i] for i in range(7)) / 21)
    assert result["threshold"] == settings.evaluation.unknown_threshold  # not calibrated yet: the default
    assert 0.0 <= result["unknown_rate"] <= 1.0 and set(result["per_class"]) == set(result["labels"])
    assert sum(map(sum, result["confusion_coarse"])) == 21 and result["coarse_labels"][0] == "PASS"
    page = open(result["report"]).read()
    wrong = 21 - sum(confusion[i][i] for i in range(7))
    assert page.count("<img") >= 2 + 2 * min(wrong, settings.evaluation.report_max_errors) - 2
    looser = aoi("evaluate", gray_model, "--dataset", "g-blind-0717", "--threshold", "0.2", "--no-report")
    assert looser["unknown_rate"] <= result["unknown_rate"] and looser["report"] is None
    assert looser["accuracy"] == result["accuracy"]  # the filter never changes the plain accuracy


def test_bad_evaluation_requests_get_a_clear_error(settings, gray_model, tmp_path):
    assert "no model version nope" in aoi("evaluate", "nope", "--dataset", "g-blind-0717", code=2)["error"]
    assert "no dataset version x" in aoi("evaluate", gray_model, "--dataset", "x", code=2)["error"]
    assert "it has no valid split" in aoi("evaluate", gray_model, "--dataset", "g-blind-0717", "--split", "valid",
                                          code=2)["error"]  # fmt: skip
    assert "threshold must be in" in aoi("evaluate", gray_model, "--dataset", "g-v1", "--threshold", "0", code=2)["error"]


def test_calibration_uses_the_valid_split_and_becomes_the_models_threshold(settings, gray_model):
    result = aoi("calibrate", gray_model, "--max-unknown", "0.5")
    assert result["split"] == "valid" and result["dataset"] == "g-v1" and result["unknown_rate"] <= 0.5
    evaluated = aoi("evaluate", gray_model, "--dataset", "g-v1", "--split", "valid", "--no-report")
    assert evaluated["threshold"] == result["threshold"]
    assert evaluated["accepted_accuracy"] == pytest.approx(result["accepted_accuracy"])
    assert "exactly one" in aoi("calibrate", gray_model, code=2)["error"]


def test_robustness_tables_cover_every_factor_and_codec(settings, gray_model):
    result = aoi("robustness", gray_model, "--dataset", "g-blind-0717")
    assert list(result["tone"]) == ["L"] and list(result["tone"]["L"]) == ["0.5", "0.9", "1.0", "1.1", "1.5"]
    assert list(result["compression"]) == ["as stored", "PNG", "JPEG-95", "JPEG-75", "JPEG-50"]
    plain = aoi("evaluate", gray_model, "--dataset", "g-blind-0717", "--no-report")["accuracy"]
    # PNG is lossless: re-encoding changes nothing; factor 1.0 is the image as stored
    assert result["tone"]["L"]["1.0"] == result["compression"]["PNG"] == result["compression"]["as stored"] == plain
    assert result["training_compression"].startswith("PNG (lossless)")


def test_compare_puts_models_side_by_side_with_blind_sets_last(settings, gray_model):
    other = trained_model(settings, epochs=1, seed=3)
    result = aoi("compare", gray_model, other, "--datasets", "g-blind-0717")
    assert result["columns"] == [gray_model, other]
    rows = [r["row"] for r in result["rows"]]
    for row in ("classes", "cleaning spec", "compression of training data", "sampling", "valid accuracy",
                "valid accuracy with Unknown filter"):  # fmt: skip
        assert row in rows
    assert rows[-2:] == ["g-blind-0717: accuracy", "g-blind-0717: accuracy with Unknown"]
    assert result["markdown"].splitlines()[0] == f"|  | {gray_model} | {other} |"
