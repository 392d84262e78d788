"""The real public data sets (AOI_DATASETS_DIR): ingest counts and the reduced-decode bound of the metrics."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from aoi.catalog.queries import label_counts, quarantine
from aoi.image_metrics import TONE_FIELDS, measure
from aoi.labels import LabelMap
from tests.flows.helpers import aoi, ingest, manifest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


def test_pku_colour_crops_ingest_as_2953_labelled_colour_images_in_6_labels(settings, datasets_dir):
    result = ingest(datasets_dir / "pku-pcb-roi", "--source", "color")
    folders = {p.name: len(list(p.glob("*.jpg"))) for p in (datasets_dir / "pku-pcb-roi").iterdir() if p.is_dir()}
    labels = LabelMap.load()
    expected = {labels.resolve(name): n for name, n in folders.items()}
    assert result["added"] == sum(folders.values()) == 2953
    assert result["by_label"] == expected and len(expected) == 6
    assert {(r["source"], r["status"]) for r in label_counts(settings.catalog_url)} == {("color", "labeled")}


def _boxes_by_type(pcbdata: Path) -> tuple[Counter, Counter]:
    """Boxes per DeepPCB type in every annotation file, and those of images known to be unusable."""
    total: Counter[int] = Counter()
    quirky: Counter[int] = Counter()
    for txt in pcbdata.glob("group*/*_not/*.txt"):
        for line in txt.read_text().split("\n"):
            if line.strip():
                kind = int(re.split(r"[,\s]+", line.strip())[4])
                total[kind] += 1
                if txt.stem == "44000020":  # README: coloured boxes drawn into this tested image
                    quirky[kind] += 1
    return total, quirky


@pytest.mark.slow
def test_deeppcb_gives_one_crop_per_usable_box_plus_its_pass_window(settings, datasets_dir):
    result = ingest(datasets_dir / "DeepPCB", "--format", "deeppcb")
    total, quirky = _boxes_by_type(datasets_dir / "DeepPCB" / "PCBData")
    labels = LabelMap.load()
    usable = {labels.deeppcb(kind): n - quirky[kind] for kind, n in total.items()}
    defects = {k: v for k, v in result["by_label"].items() if k != "PASS"}
    assert defects == usable
    entries = quarantine(settings.catalog_url)
    assert len(entries) == sum(quirky.values()) > 0
    assert all("44000020_test.jpg" in e["file"] and "colour" in e["reason"] for e in entries)
    # Every usable box also gave a PASS window; identical windows (templates repeat) are stored once.
    boxes = sum(total.values())
    assert result["by_label"]["PASS"] + result["duplicates"] == boxes
    assert result["discovered"] == 2 * boxes
    gray = {r["source"] for r in label_counts(settings.catalog_url)}
    assert gray == {"gray"}

    # The official test list as a blind set, then a version that must hold none of it.
    test_list = datasets_dir / "DeepPCB" / "PCBData" / "test.txt"
    pairs = {f"deeppcb:{Path(line.split()[0]).stem}" for line in test_list.read_text().splitlines() if line.strip()}
    blind = aoi(
        "dataset",
        "blind",
        "deeppcb-official-test",
        "--batch",
        str(result["batch_id"]),
        "--groups-from",
        str(test_list),
        "--date",
        "2026-07-17",
    )
    version = aoi("dataset", "build", "deeppcb-v1", "--source", "gray", "--seed", "1")
    assert blind["images"] + version["images"] == result["batch_totals"]["added"]
    assert version["dropped_blind"] == blind["images"] > 0 and len(pairs) == 500  # the README: 500 test pairs
    assert {r["group"] for r in manifest("deeppcb-official-test")} <= pairs
    assert not {r["group"] for r in manifest("deeppcb-v1")} & pairs
    assert blind["taxonomy"] == version["taxonomy"] == sorted(result["by_label"])


def test_reduced_size_decode_keeps_every_tone_metric_within_one_gray_level_on_the_real_sets(datasets_dir):
    files = sorted(datasets_dir.glob("pku-pcb-roi/*/*.jpg")) + sorted(datasets_dir.glob("DeepPCB/PCBData/*/*/*.jpg"))
    assert len(files) > 5000
    worst = dict.fromkeys(TONE_FIELDS, 0.0)
    for path in files:
        data = path.read_bytes()
        fast, full = measure(data), measure(data, min_side=10**9)
        for field in TONE_FIELDS:
            worst[field] = max(worst[field], abs(getattr(fast, field) - getattr(full, field)))
    assert max(worst.values()) <= 1.0, worst
