"""False alarms and misses of the drift check on the real colour set: a small colour model trained on PKU,
the monitor's reference less the test split, windows drawn from the test split, one machine's lamp at 90% light."""

from __future__ import annotations

import pytest

from monitoring import study
from tests.evaluation.models import trained_model
from tests.flows.test_ingest_flow import aoi, ingest
from tests.serving.conftest import promote

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def test_a_lamp_at_90_percent_is_found_and_undrifted_windows_rarely_alarm(settings, datasets_dir):
    ingest(datasets_dir / "pku-pcb-roi", "--source", "color")
    aoi("dataset", "build", "pku-v1", "--source", "color", "--seed", "0")
    version = trained_model(settings, "pku-v1", epochs=1)
    promote(settings, version, kind="color")
    result = study.run(settings, version, "color", windows=20, sizes=(100,), light=0.9, progress=False)
    row = result["rows"][0]
    assert result["pool"] > 250 and result["reference_samples"] > 2000 and result["reference_answers"] > 250
    assert row["false_alarm_rate"] <= 0.10, row
    assert row["detection_rate"] >= 0.95, row
