"""Evaluate, calibrate, robustness and compare through the CLI on a registered model and a real catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Evaluation, Image
from tests.evaluation.models import gray_data, trained_model
from tests.flows.helpers import aoi

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def gray_model(settings, tmp_path) -> str:
    gray_data(tmp_path)
    return trained_model(settings, epochs=1)


def _shoot_on(settings, machine: str, part: str, labels: set[str]) -> set[str]:
    """Record ``machine`` and ``part`` on the catalog's images of ``labels`` (as ``aoi ingest --machine --part``
    would have); the others keep none, as the public sets have none. Returns their content hashes."""
    with db.session(settings.catalog_url) as s:
        rows = s.exec(select(Image).where(col(Image.label).in_(labels))).all()
        for row in rows:
            row.machine_id, row.part_no = machine, part
            s.add(row)
        s.commit()
        return {row.sha256 for row in rows}


def test_evaluate_on_a_blind_set_stores_figures_and_writes_a_report(settings, gray_model):
    _shoot_on(settings, "AOI-1", "P-7", {"SHORT", "SPUR"})
    result = aoi("evaluate", gray_model, "--dataset", "g-blind-0717")
    assert result["split"] == "blind" and result["images"] == 21
    confusion = result["confusion"]
    assert sum(map(sum, confusion)) == 21 and len(result["labels"]) == 7
    assert result["accuracy"] == pytest.approx(sum(confusion[i][i] for i in range(7)) / 21)
    assert result["threshold"] == settings.evaluation.unknown_threshold  # not calibrated yet: the default
    assert 0.0 <= result["unknown_rate"] <= 1.0 and set(result["per_class"]) == set(result["labels"])
    assert sum(map(sum, result["confusion_coarse"])) == 21 and result["coarse_labels"][0] == "PASS"
    # The blind-test table: every image once, in its answer's column or in UNKNOWN; recall counts Unknown as missed.
    unknown = result["confusion_unknown"]
    assert unknown["columns"] == [*result["labels"], "UNKNOWN"] and unknown["labels"] == result["labels"]
    assert [sum(row) for row in unknown["matrix"]] == [sum(row) for row in confusion]
    assert sum(row[-1] for row in unknown["matrix"]) == round(result["unknown_rate"] * 21)
    for i, label in enumerate(result["labels"]):
        assert unknown["recall"][label] == pytest.approx(unknown["matrix"][i][i] / 3)
        assert unknown["recall"][label] <= result["per_class"][label]["recall"] + 1e-9
    # Per machine and per part: the 6 SHORT and SPUR images were shot on AOI-1 / P-7, the 15 others on nothing known.
    for key, name, value in (("per_machine", "machine_id", "AOI-1"), ("per_part", "part_no", "P-7")):
        groups = {g[name]: g for g in result[key]}
        assert list(groups) == [value, None] and (groups[value]["images"], groups[None]["images"]) == (6, 15)
        assert set(groups[value]["recall"]) == {"SHORT", "SPUR"}
        pooled = sum(g["accuracy"] * g["images"] for g in groups.values()) / 21
        assert pooled == pytest.approx(result["accuracy"])
    # 3 blind images per class: every class is too rare for its recall to mean much (AOI_GATE__WARN_MIN_BLIND_IMAGES)
    rare = {w["label"] for w in result["warnings"] if w["warning"] == "few images"}
    assert rare == set(result["labels"]) and "only 3 images in this blind set" in result["warnings"][0]["message"]
    weak = {w["label"] for w in result["warnings"] if w["warning"] == "low recall"}
    assert weak == {k for k, v in result["per_class"].items() if v["recall"] < settings.gate.warn_recall_below}
    with db.session(settings.catalog_url) as s:  # stored with the evaluation
        row = s.get(Evaluation, result["evaluation_id"])
        assert (row.per_machine, row.per_part, row.confusion_unknown) == (
            result["per_machine"],
            result["per_part"],
            result["confusion_unknown"],
        )
    page = Path(result["report"]).read_text()
    assert "Blind-test table" in page and "AOI-1" in page and "P-7" in page and "only 3 images" in page
    wrong = 21 - sum(confusion[i][i] for i in range(7))
    assert page.count("<img") >= 2 + 2 * min(wrong, settings.evaluation.report_max_errors) - 2
    looser = aoi("evaluate", gray_model, "--dataset", "g-blind-0717", "--threshold", "0.2", "--no-report")
    assert looser["unknown_rate"] <= result["unknown_rate"] and looser["report"] is None
    assert looser["accuracy"] == result["accuracy"]  # the filter never changes the plain accuracy
    _answers_agree_with_the_figures(settings, result)
    _answers_agree_with_the_figures(settings, looser)  # its own rows, at its own threshold
    _the_workbench_draws_where_the_model_looked(settings, gray_model)


def _the_workbench_draws_where_the_model_looked(settings, version: str) -> None:
    """The error pages' Grad-CAM: the image with the map of the model's answer on it, computed once, then cached."""
    import io

    from PIL import Image as PILImage

    from workbench.heatmaps import cache_path, heatmap_png

    with db.session(settings.catalog_url) as s:
        image = s.exec(select(Image).where(Image.status == "labeled")).first()
    assert image is not None
    data = heatmap_png(settings, version, image.sha256)
    picture = PILImage.open(io.BytesIO(data))
    assert picture.format == "PNG" and picture.size == (image.width, image.height) and picture.mode == "RGB"
    cached = cache_path(settings, version, image.sha256)
    assert cached.read_bytes() == data and cached.is_relative_to(settings.home / "cache" / "gradcam")
    cached.write_bytes(b"kept")  # the second call reads the cache, it does not compute again
    assert heatmap_png(settings, version, image.sha256) == b"kept"


def test_bad_evaluation_requests_get_a_clear_error(settings, gray_model, tmp_path):
    assert "no model version nope" in aoi("evaluate", "nope", "--dataset", "g-blind-0717", code=2)["error"]
    assert "no dataset version x" in aoi("evaluate", gray_model, "--dataset", "x", code=2)["error"]
    assert (
        "it has no valid split"
        in aoi("evaluate", gray_model, "--dataset", "g-blind-0717", "--split", "valid", code=2)["error"]
    )
    assert (
        "threshold must be in" in aoi("evaluate", gray_model, "--dataset", "g-v1", "--threshold", "0", code=2)["error"]
    )


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
    for row in (
        "classes",
        "cleaning spec",
        "compression of training data",
        "sampling",
        "valid accuracy",
        "valid accuracy with Unknown filter",
    ):
        assert row in rows
    assert rows[-2:] == ["g-blind-0717: accuracy", "g-blind-0717: accuracy with Unknown"]
    assert result["markdown"].splitlines()[0] == f"|  | {gray_model} | {other} |"


def _answers_agree_with_the_figures(settings, result: dict) -> None:
    """Every image's answer is stored with the evaluation (evaluation_image) and rebuilds its stored figures."""
    from aoi.catalog.models import EvaluationImage

    labels, n = result["labels"], result["images"]
    with db.session(settings.catalog_url) as s:
        rows = s.exec(select(EvaluationImage).where(EvaluationImage.evaluation_id == result["evaluation_id"])).all()
        blind = {i.id: i.label for i in s.exec(select(Image).where(Image.status == "labeled")).all()}
    assert len(rows) == n == len({r.image_id for r in rows})
    # The true label is the catalog's; the rows rebuild the stored confusion matrix cell by cell.
    assert all(r.true_label == blind[r.image_id] for r in rows if r.image_id in blind)
    rebuilt = [[0] * len(labels) for _ in labels]
    for r in rows:
        rebuilt[labels.index(r.true_label)][labels.index(r.predicted)] += 1
    assert rebuilt == result["confusion"]
    assert sum(r.true_label == r.predicted for r in rows) / n == pytest.approx(result["accuracy"])
    # The Unknown filter from the stored confidences gives the stored figures at the evaluation's threshold.
    kept = [r for r in rows if r.confidence >= result["threshold"]]
    assert 1 - len(kept) / n == pytest.approx(result["unknown_rate"])
    if kept:
        right = sum(r.true_label == r.predicted for r in kept) / len(kept)
        assert right == pytest.approx(result["accepted_accuracy"])
    for r in rows:  # top 3, most probable first; the first is the answer
        assert len(r.top) == 3 and r.top[0][0] == r.predicted
        assert r.top[0][1] == pytest.approx(r.confidence) and r.top[0][1] >= r.top[1][1] >= r.top[2][1]
        assert len({label for label, _ in r.top}) == 3 and all(label in labels for label, _ in r.top)
