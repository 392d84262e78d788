"""Live accuracy on the real colour set: a small colour model trained on PKU less boards 11 and 12, evaluated on
those boards as a blind set (its per-image answers), then the study: false alarms on unchanged machines and a
10-point drop on one machine, at the confirmed answers per machine the README states."""

from __future__ import annotations

import pytest

from monitoring import live_study
from tests.evaluation.models import trained_model
from tests.flows.helpers import aoi, ingest
from tests.serving.helpers import promote

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.study, pytest.mark.usefixtures("prefect_api")]


def test_a_ten_point_drop_is_found_and_unchanged_machines_rarely_alarm(settings, datasets_dir):
    batch = ingest(datasets_dir / "pku-pcb-roi", "--source", "color")
    aoi(
        "dataset",
        "blind",
        "pku-blind-11-12",
        "--batch",
        str(batch["batch_id"]),
        "--name-pattern",
        r"^(11|12)_",
        "--source",
        "color",
    )
    aoi("dataset", "build", "pku-v1", "--source", "color", "--seed", "0")
    version = trained_model(settings, "pku-v1", epochs=1)
    promote(settings, version, kind="color")
    # a low threshold: the small test model is unsure of most crops, and the study draws from accepted answers only
    aoi("evaluate", version, "--dataset", "pku-blind-11-12", "--threshold", "0.05", "--no-report")
    result = aoi(
        "live-accuracy-study", "--model", version, "--kind", "color", "--windows", "100", "--sizes", "200,1600"
    )
    assert result["answers"]["source"] == "evaluation" and result["pool"] > 500, result
    small, large = result["rows"]
    assert small["false_alarm_rate"] <= 0.05 and large["false_alarm_rate"] <= 0.05, result
    assert large["detection_rate"] >= 0.95, result
    assert result["smallest_window_meeting_goals"] == 1600 or small["detection_rate"] >= 0.95
    assert live_study.evaluated_answers(settings, version) is not None
