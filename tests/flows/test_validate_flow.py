"""The validate flow through the CLI: specs, exclusions with the failed checks named, restore, reports."""

from __future__ import annotations

import numpy as np
import pytest

from tests.flows.helpers import IN_SPEC, aoi, ingest, vrs_images
from tests.helpers import encode, write

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_images_pushed_out_of_spec_are_excluded_with_the_check_named_and_can_be_restored(settings, tmp_path):
    good = ingest(vrs_images(tmp_path / "good", 6), "--source", "color")
    bright = ingest(vrs_images(tmp_path / "bright", 4, scale=1.3, seed=1), "--source", "color")
    passed = aoi("validate", "--batch", str(good["batch_id"]), "--spec", "vrs-capture-2023")
    assert (passed["evaluated"], passed["passed"], passed["excluded"]) == (6, 6, 0)
    failed = aoi("validate", "--batch", str(bright["batch_id"]), "--spec", "vrs-capture-2023")
    assert (failed["evaluated"], failed["excluded"]) == (4, 4)
    assert failed["failed_by_check"]["brightness outside 130..188"] == 4
    assert "r_minus_g outside 3..15" in failed["failed_by_check"]
    rows = aoi("images", "--status", "excluded")
    assert len(rows) == 4 and all("brightness outside 130..188" in r["status_reason"] for r in rows)
    assert (settings.reports_dir / "data_docs" / "index.html").exists()
    assert all(p.endswith(".png") and settings.home.as_posix() in p for p in failed["pictures"])
    assert aoi("restore", "--run", str(failed["run_id"]), "--by", "tester", "--note", "lamp replaced")["restored"] == 4
    assert aoi("images", "--status", "excluded") == []
    assert {r["status"] for r in aoi("images")} == {"labeled"}


def test_a_mix_of_compressed_and_uncompressed_images_is_its_own_failure(settings, tmp_path):
    vrs_images(tmp_path / "mix", 3)
    arr = np.full((48, 48, 3), IN_SPEC, dtype=np.uint8)
    write(tmp_path / "mix" / "Spur" / "lossless.png", encode(arr, fmt="PNG", mode="RGB"))
    batch = ingest(tmp_path / "mix", "--source", "color")["batch_id"]
    result = aoi("validate", "--batch", str(batch), "--spec", "vrs-capture-2023")
    assert [f["check"] for f in result["set_failures"]] == ["mixed compressed and uncompressed images in one set"]
    assert result["set_failures"][0]["counts"] == {"True": 3, "False": 1}
    assert result["failed_by_check"] == {"format not in ['JPEG']": 1, "not compressed (spec requires compressed)": 1}


def test_derived_specs_get_versions_and_bad_specs_are_refused(settings, tmp_path):
    batch = ingest(vrs_images(tmp_path / "ref", 5), "--source", "color")["batch_id"]
    first = aoi("spec", "derive", "ref-tone", "--from", f"batch:{batch}", "--k", "2")
    second = aoi("spec", "derive", "ref-tone", "--from", str(batch), "--per-machine")
    assert (first["spec"], second["spec"]) == ("ref-tone@1", "ref-tone@2")
    assert first["applies_to"] == "color" and "mean ± 2σ of 5 images" in first["source"]
    assert [s["key"] for s in aoi("spec", "list")] == ["ref-tone@1", "ref-tone@2"]
    write(tmp_path / "bad.yaml", b"name: bad\ntone:\n  brightness: {min: 200, max: 100}\n")
    assert (
        "lower limit 200.0 exceeds upper limit 100.0" in aoi("spec", "add", str(tmp_path / "bad.yaml"), code=2)["error"]
    )
    write(tmp_path / "clash.yaml", b"name: ref-tone\nversion: 1\ntone:\n  brightness: {min: 0, max: 1}\n")
    assert "already exists with other limits" in aoi("spec", "add", str(tmp_path / "clash.yaml"), code=2)["error"]
    assert "no spec nope" in aoi("validate", "--batch", str(batch), "--spec", "nope", code=2)["error"]
