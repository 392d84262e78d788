"""Dataset versions through the CLI: build with a spec, blind sets from a folder and a DeepPCB list, manifests."""

from __future__ import annotations

import pytest

from tests.flows.helpers import aoi, ingest, manifest, vrs_images
from tests.helpers import mini_deeppcb

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_build_with_a_spec_leaves_out_excluded_images_and_blind_ones(settings, tmp_path):
    ingest(vrs_images(tmp_path / "good", 8), "--source", "color")
    ingest(vrs_images(tmp_path / "bright", 3, scale=1.3, seed=1), "--source", "color")
    blind = aoi(
        "dataset",
        "blind",
        "color-blind-0717",
        "--folder",
        str(vrs_images(tmp_path / "held", 2, seed=2)),
        "--source",
        "color",
        "--date",
        "2026-07-17",
    )
    assert blind["role"] == "blind" and blind["images"] == 2
    # The blind wall leaves 11 SPUR; the spec removes 3 of them (27%), over AOI_DATASETS__MAX_CLASS_LOSS: accepted by
    # name, and recorded.
    version = aoi(
        "dataset",
        "build",
        "color-v1",
        "--source",
        "color",
        "--spec",
        "vrs-capture-2023",
        "--split",
        "1:1:0",
        "--allow-class-loss",
    )
    assert version["validation"]["excluded"] == 3 and version["spec_key"] == "vrs-capture-2023@1"
    assert version["class_loss_allowed"] and version["cleaning"][1]["over_limit"] == {"SPUR": round(3 / 11, 4)}
    assert [step["after"] for step in version["cleaning"]] == [{"SPUR": 11}, {"SPUR": 8}]
    assert version["dropped_blind"] == 2 and version["images"] == 8
    rows = manifest("color-v1")
    assert len(rows) == 8 and {r["split"] for r in rows} == {"train", "valid"}
    assert not {r["sha256"] for r in rows} & {r["sha256"] for r in manifest("color-blind-0717")}
    listed = {v["name"]: v["role"] for v in aoi("dataset", "list")}
    assert listed == {"color-blind-0717": "blind", "color-v1": "train"}
    assert aoi("dataset", "show", "color-v1")["counts"] == version["counts"]
    assert "immutable" in aoi("dataset", "build", "color-v1", "--source", "color", code=2)["error"]
    assert "no dataset version nope" in aoi("dataset", "show", "nope", code=2)["error"]


def test_deeppcb_official_test_list_becomes_a_blind_set(settings, tmp_path):
    mini_deeppcb(tmp_path / "DeepPCB")
    batch = ingest(tmp_path / "DeepPCB", "--format", "deeppcb")["batch_id"]
    blind = aoi(
        "dataset",
        "blind",
        "deeppcb-test",
        "--batch",
        str(batch),
        "--groups-from",
        str(tmp_path / "DeepPCB" / "PCBData" / "test.txt"),
    )
    assert {r["group"] for r in manifest("deeppcb-test")} == {"deeppcb:10000001"}
    assert blind["counts"] == {"blind": {"PASS": 1, "PINHOLE": 1}}
    version = aoi("dataset", "build", "gray-v1", "--source", "gray")
    assert "deeppcb:10000001" not in {r["group"] for r in manifest("gray-v1")}
    assert version["dropped_blind"] == 2


def test_a_blind_folder_holding_content_already_used_for_training_is_refused_by_content(settings, tmp_path):
    import shutil

    ingest(vrs_images(tmp_path / "train", 4), "--source", "color")
    aoi("dataset", "build", "v1", "--source", "color")
    shutil.copytree(tmp_path / "train" / "Spur", tmp_path / "again" / "Spur")  # same bytes under the same names
    for path in (tmp_path / "again" / "Spur").iterdir():
        path.rename(path.with_name("copy_" + path.name))  # ... and under other names
    vrs_images(tmp_path / "again", 1, seed=9)  # plus one new image
    blind = aoi("dataset", "blind", "b1", "--folder", str(tmp_path / "again"), "--source", "color")
    assert blind["images"] == 1 and blind["dropped_blind"] == 4
    assert not {r["sha256"] for r in manifest("v1")} & {r["sha256"] for r in manifest("b1")}
