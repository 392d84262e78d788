"""False alarms and misses of the drift check on the real colour set: PKU cleaned by a class-blind tone spec (as the
demo derives it), boards 11 and 12 held out as a blind set, a small colour model trained on the rest; the monitor's
reference is what the line sent (uncleaned), the windows are drawn from the held-out boards' crops as stored (no
cleaning filtered them), one machine's lamp at 90% light."""

from __future__ import annotations

import pytest

from monitoring import study
from tests.evaluation.models import trained_model
from tests.flows.helpers import aoi, ingest
from tests.serving.helpers import promote

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.study, pytest.mark.usefixtures("prefect_api")]


# Measured (README, "Monitoring"): 100 held-out crops a machine of two boards the reference never saw alarmed in 3 of
# 3 windows: tone differs by board and the PKU images carry no part numbers. The goal stands; the gap is known.
@pytest.mark.xfail(
    reason="new boards without part numbers alarm at 100 answers a machine (docs/measurements.md#new-boards-alarm)",
    strict=False,
)
def test_a_lamp_at_90_percent_is_found_and_the_lines_own_crops_rarely_alarm(settings, datasets_dir):
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
    aoi("spec", "derive", "blind-tone", "--from", f"batch:{batch['batch_id']}", "--k", "1.5")
    aoi("dataset", "build", "pku-v1", "--source", "color", "--spec", "blind-tone", "--seed", "0", "--allow-class-loss")
    version = trained_model(settings, "pku-v1", epochs=1)
    promote(settings, version, kind="color")
    result = study.run(settings, version, "color", windows=20, sizes=(100,), light=0.9, progress=False)
    row = result["rows"][0]
    # every held-out crop, whatever the spec said of it (MISSING_HOLE included), and a reference of every image
    assert result["pool"] > 550 and result["pool_labels"]["MISSING_HOLE"] > 80, result
    assert result["reference_samples"] > 2200 and result["reference"] == "line"
    assert row["false_alarm_rate"] <= 0.10, row
    assert row["detection_rate"] >= 0.95, row
