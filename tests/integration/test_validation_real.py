"""Validation on the real PKU colour crops: derived limits, in-spec images pass, pushed-out images fail."""

from __future__ import annotations

import io
import statistics

import numpy as np
import pytest
from PIL import Image

from tests.flows.helpers import aoi, ingest
from tests.helpers import write

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]
METRICS = ("brightness", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff")


def test_derive_validate_and_push_images_out_of_spec_on_the_pku_set(settings, datasets_dir, tmp_path):
    batch = ingest(datasets_dir / "pku-pcb-roi", "--source", "color")["batch_id"]
    spec = aoi("spec", "derive", "pku-tone", "--from", f"batch:{batch}", "--k", "1.5")
    rows = aoi("images", "--batch", str(batch))
    for metric in METRICS:  # mean ± kσ, computed here independently of validation/specs.py
        values = [r[metric] for r in rows]
        mean, sd = statistics.fmean(values), statistics.stdev(values)
        assert spec["tone"][metric]["min"] == pytest.approx(mean - 1.5 * sd, abs=1e-9)
        assert spec["tone"][metric]["max"] == pytest.approx(mean + 1.5 * sd, abs=1e-9)

    result = aoi("validate", "--batch", str(batch), "--spec", "pku-tone@1")
    inside = {r["id"] for r in rows if all(spec["tone"][m]["min"] <= r[m] <= spec["tone"][m]["max"] for m in METRICS)}
    excluded = {r["id"] for r in aoi("images", "--batch", str(batch), "--status", "excluded")}
    assert result["passed"] == len(inside) > 0 and excluded == {r["id"] for r in rows} - inside

    # Every channel x 1.3 (a brighter lamp) on in-spec images, re-encoded as JPEG like the originals.
    limits = spec["tone"]["brightness"]
    chosen = [r for r in rows if r["id"] in inside and r["brightness"] * 1.3 > limits["max"]][:20]
    assert len(chosen) == 20
    for r in chosen:
        original = (datasets_dir / "pku-pcb-roi").glob(f"*/{r['file_name']}")
        arr = np.asarray(Image.open(next(original)).convert("RGB"), dtype=np.float64) * 1.3
        out = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=r["jpeg_quality"])
        write(tmp_path / "bright" / "Spur" / f"x13_{r['file_name']}", out.getvalue())
    pushed = ingest(tmp_path / "bright", "--source", "color")["batch_id"]
    verdict = aoi("validate", "--batch", str(pushed), "--spec", "pku-tone@1")
    assert verdict["excluded"] == 20 and verdict["passed"] == 0
    assert verdict["failed_by_check"][f"brightness outside {limits['min']:g}..{limits['max']:g}"] == 20
