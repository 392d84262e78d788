"""Dataset versions and blind sets on SQLite and PostgreSQL; the blind wall against every order of operations."""

from __future__ import annotations

import threading

import pytest

from aoi.catalog import db
from aoi.catalog.models import Image, ImageStatus
from datasets.versions import DatasetError, build, describe, list_versions, manifest, register_blind
from tests.datasets.helpers import add_images


def shas(url, name, splits=None):
    return {r["sha256"] for r in manifest(url, name) if splits is None or r["split"] in splits}


def test_build_freezes_a_group_aware_version_with_a_cleaning_table(catalog_url):
    add_images(catalog_url, 40)
    with db.session(catalog_url) as s:  # one excluded image: the cleaning table must show it
        image = db.get_row(s, Image, 1)
        image.status = ImageStatus.excluded
        s.add(image)
        s.commit()
    v = build(catalog_url, "g-v1", source="gray", per_class=30, seed=3)
    assert v["role"] == "train" and v["taxonomy"] == ["OPEN", "PASS", "SHORT"]
    assert [step["rule"] for step in v["cleaning"]] == [
        "not in a blind test set",
        "not excluded by validation",
        "at most 30 per class (seed 3)",
    ]
    assert v["cleaning"][1]["before"] == {"OPEN": 40, "PASS": 40, "SHORT": 40}
    assert v["cleaning"][1]["after"]["PASS"] == 39 and v["cleaning"][2]["after"] == {
        "OPEN": 30,
        "PASS": 30,
        "SHORT": 30,
    }
    rows = manifest(catalog_url, "g-v1")
    assert len(rows) == v["images"] == 90
    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in groups.values())
    assert build(catalog_url, "g-v1-again", source="gray", per_class=30, seed=3)["counts"] == v["counts"]
    with pytest.raises(DatasetError, match="immutable"):
        build(catalog_url, "g-v1", source="gray")
    child = build(catalog_url, "g-v2", source="gray", parent="g-v1")
    assert child["lineage"] == ["g-v1"]
    assert [x["name"] for x in list_versions(catalog_url)] == ["g-v1", "g-v1-again", "g-v2"]


def test_blind_first_then_build_drops_blind_images(catalog_url):
    add_images(catalog_url, 30)
    blind = register_blind(catalog_url, "blind-0717", groups={f"src:0:{g}" for g in range(5)}, date="2026-07-17")
    assert blind["role"] == "blind" and blind["images"] == 15 and blind["blind_date"] == "2026-07-17"
    v = build(catalog_url, "v1", source="gray")
    assert v["dropped_blind"] == 15 and v["images"] == 75
    assert not shas(catalog_url, "v1") & shas(catalog_url, "blind-0717")


def test_build_first_then_blind_drops_images_already_used_for_training(catalog_url):
    add_images(catalog_url, 10)
    build(catalog_url, "v1", source="gray")
    fresh = add_images(catalog_url, 4, seed=1)
    blind = register_blind(catalog_url, "blind-0720", source="gray", name_pattern=r"^img_00[0-3]_")
    assert blind["dropped_blind"] == 12 and blind["images"] == 12  # 4 groups old (dropped), 4 groups new
    assert shas(catalog_url, "blind-0720") == {r["sha256"] for r in manifest(catalog_url, "blind-0720")}
    assert not shas(catalog_url, "v1") & shas(catalog_url, "blind-0720")
    with pytest.raises(DatasetError, match="already in training sets"):
        register_blind(catalog_url, "blind-old", batch_id=1)
    v2 = build(catalog_url, "v2", source="gray")
    assert v2["dropped_blind"] == 12 and not shas(catalog_url, "v2") & shas(catalog_url, "blind-0720")
    assert fresh


def test_bad_requests_are_refused(catalog_url):
    add_images(catalog_url, 3)
    with pytest.raises(DatasetError, match="select the blind images"):
        register_blind(catalog_url, "b")
    with pytest.raises(DatasetError, match="YYYY-MM-DD"):
        register_blind(catalog_url, "b", batch_id=1, date="17/07")
    with pytest.raises(DatasetError, match="no labelled color images"):
        build(catalog_url, "c", source="color")
    with pytest.raises(DatasetError, match="parent dataset version nope"):
        build(catalog_url, "c", source="gray", parent="nope")
    with pytest.raises(DatasetError, match="no dataset version nope"):
        describe(catalog_url, "nope")


def test_a_build_and_a_blind_registration_racing_never_share_an_image(catalog_url):
    add_images(catalog_url, 60)
    errors = []

    def run(fn):
        try:
            fn()
        except DatasetError as err:  # losing every image to the other side is a refusal, not a leak
            errors.append(err)

    threads = [
        threading.Thread(target=run, args=(lambda: build(catalog_url, "race-v1", source="gray"),)),
        threading.Thread(target=run, args=(lambda: register_blind(catalog_url, "race-blind", batch_id=1),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = {v["name"] for v in list_versions(catalog_url)}
    if {"race-v1", "race-blind"} <= names:
        assert not shas(catalog_url, "race-v1") & shas(catalog_url, "race-blind")
    assert names, errors
