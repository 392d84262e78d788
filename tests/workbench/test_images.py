"""The image page: picture (a crop on its parent), metrics against the spec of its source, dataset versions,
answers, history; the bytes and the parent picture."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aoi.catalog import db
from aoi.catalog.models import (
    DatasetMember,
    DatasetVersion,
    Evaluation,
    EvaluationImage,
    Exclusion,
    Image,
    ImageChange,
    Prediction,
    UserRole,
    ValidationRun,
)
from aoi.image_metrics import TONE_FIELDS
from aoi.store import ImageStore
from tests.workbench.helpers import START, fill_catalog, logged_in, png
from workbench.app import create_app

# The tone columns a prediction row carries (the Tone fields: mypy does not see them on the table model).
TONE: dict[str, Any] = dict.fromkeys(TONE_FIELDS, 1.0)


@pytest.fixture
def page(configure):
    """(client logged in as a viewer, settings, ids of 12 generated rows, the first 3 with bytes)."""
    settings = configure()
    ids = fill_catalog(settings, 12, with_bytes=3)
    with TestClient(create_app(settings)) as client:
        yield logged_in(client, UserRole.viewer), settings, ids


def _image(settings, image_id: int) -> Image:
    with db.session(settings.catalog_url) as s:
        image = s.get(Image, image_id)
        assert image is not None
        return image


def test_unknown_image_is_404(page):
    client, _, _ = page
    assert client.get("/images/999999").status_code == 404
    assert client.get("/images/999999/full").status_code == 404


def test_the_page_shows_metadata_and_the_full_picture(page):
    client, settings, ids = page
    image = _image(settings, ids[1])
    html = client.get(f"/images/{ids[1]}").text
    assert image.file_name in html and image.sha256 in html and image.machine_id in html
    assert f'src="/images/{ids[1]}/full"' in html and 'id="batch"' in html
    full = client.get(f"/images/{ids[1]}/full")
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    assert full.content == ImageStore(settings.store_dir).get(image.sha256)


def test_history_lists_changes_newest_first_with_validation_exclusions(page):
    client, settings, ids = page
    from validation.records import register_spec
    from validation.specs import parse_spec

    spec_id = register_spec(
        settings, parse_spec("name: test-tone\napplies_to: any\ntone:\n  brightness: {min: 0, max: 255}\n")
    )
    with db.session(settings.catalog_url) as s:
        run = ValidationRun(spec_id=spec_id, scope="source:gray", status="succeeded")
        s.add(run)
        s.commit()
        s.add(Exclusion(image_id=ids[0], run_id=run.id or 0, reasons=["brightness 300 > 255"], created_at=START))
        for minutes, (action, old, new, why) in enumerate(
            [
                ("relabel", "Short", "Spur", "it is a spur"),
                ("exclude", None, None, "blurred"),
                ("restore", None, None, "sharp enough"),
            ]
        ):
            s.add(
                ImageChange(
                    image_id=ids[0],
                    action=action,
                    old_label=old,
                    new_label=new,
                    old_status="labeled",
                    new_status="excluded" if action == "exclude" else "labeled",
                    reason=why,
                    by="alice",
                    via="web",
                    at=START + timedelta(days=1, minutes=minutes),
                )
            )
        s.commit()
    html = client.get(f"/images/{ids[0]}").text
    actions = re.findall(r'<tr data-action="([^"]+)">', html)
    assert actions == ["restore", "exclude", "relabel", "excluded by validation"]
    assert "Short → Spur" in html and "it is a spur" in html and "alice" in html
    assert "brightness 300 &gt; 255" in html and "test-tone@1" in html
    other = client.get(f"/images/{ids[1]}").text
    assert 'data-action="' not in other and "No changes since it was ingested" in other


def test_dataset_versions_and_answers_that_concern_the_image(page):
    client, settings, ids = page
    image = _image(settings, ids[2])
    with db.session(settings.catalog_url) as s:
        for name, split in (("color-v1", "train"), ("color-v2", "valid")):
            version = DatasetVersion(name=name, role="train", source="color")
            s.add(version)
            s.commit()
            s.add(
                DatasetMember(
                    dataset_id=version.id or 0, image_id=ids[2], sha256=image.sha256, label="Open", split=split
                )
            )
        other = DatasetVersion(name="gray-v9", role="train", source="gray")
        s.add(other)
        s.commit()
        s.add(
            DatasetMember(
                dataset_id=other.id or 0, image_id=ids[3], sha256=_image(settings, ids[3]).sha256, split="test"
            )
        )
        evaluation = Evaluation(model_version="color-m3", dataset="blind-2026", split="blind", threshold=0.9)
        s.add(evaluation)
        s.commit()
        s.add(
            EvaluationImage(
                evaluation_id=evaluation.id or 0,
                image_id=ids[2],
                true_label="Open",
                predicted="Short",
                confidence=0.61,
                top=[["Short", 0.61], ["Open", 0.3], ["Spur", 0.09]],
            )
        )
        for i, sha in enumerate((image.sha256, "f" * 64)):
            s.add(
                Prediction(
                    request_id=f"req{i}",
                    latency_ms=3.0,
                    kind="color",
                    model_version="color-m2",
                    machine_id="VRS-7",
                    sha256=sha,
                    label="SPUR-ANSWER" if i == 0 else "OTHER-ANSWER",
                    coarse_label="x",
                    model_label="Spur",
                    confidence=0.97,
                    unknown=False,
                    route="accept",
                    format="PNG",
                    bytes_per_pixel=1.0,
                    width=10,
                    height=10,
                    **TONE,
                )
            )
        s.commit()
    html = client.get(f"/images/{ids[2]}").text
    datasets = html[html.index('id="datasets"') : html.index("Answers given")]
    assert "color-v1" in datasets and "color-v2" in datasets and "gray-v9" not in datasets
    assert "SPUR-ANSWER" in html and "OTHER-ANSWER" not in html and "VRS-7" in html
    assert "color-m3" in html and "blind-2026" in html and "Short 0.610" in html and "(Unknown)" in html


def test_metrics_are_judged_against_the_spec_of_the_image_source(page):
    client, settings, ids = page
    from validation.records import register_spec
    from validation.specs import parse_spec

    # fill_catalog: brightness 100 + k % 50; row 1 is color (brightness 101), row 0 gray
    register_spec(
        settings,
        parse_spec(
            "name: color-limits\napplies_to: color\ntone:\n  brightness: {min: 90, max: 100.5}\n"
            "quality:\n  sharpness: {min: 10}\ncompression:\n  formats: [JPEG]\n"
        ),
    )
    with db.session(settings.catalog_url) as s:
        s.add(DatasetVersion(name="color-v1", role="train", source="color", spec_key="color-limits@1"))
        s.commit()
    html = client.get(f"/images/{ids[1]}").text
    assert "color-limits@1" in html and "color-v1" in html

    def verdict(metric: str) -> str:
        row = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', html, re.S)
        assert row is not None, metric
        return re.findall(r'<td class="([^"]*)">', row.group(1))[-1]

    assert verdict("brightness") == "fail"  # 101 > 100.5
    assert verdict("sharpness") == "pass"
    assert verdict("format") == "fail"  # PNG, the spec wants JPEG
    assert verdict("r_minus_g") == ""  # not limited
    gray = client.get(f"/images/{ids[0]}").text
    assert "color-limits" not in gray and "no spec applies to gray" in gray


def test_a_crop_is_shown_with_its_box_on_the_parent(page):
    client, settings, ids = page
    parent = png(77, (200, 150))
    parent_sha = ImageStore(settings.store_dir).put(parent)
    with db.session(settings.catalog_url) as s:
        image = s.get(Image, ids[0])
        assert image is not None
        image.parent_file, image.parent_sha256, image.bbox = "board_7.png", parent_sha, "20,30,84,94"
        s.add(image)
        orphan = s.get(Image, ids[1])
        assert orphan is not None
        orphan.parent_file, orphan.parent_sha256, orphan.bbox = "/nowhere/board.png", "0" * 64, "1,2,3,4"
        s.add(orphan)
        s.commit()
    html = client.get(f"/images/{ids[0]}").text
    assert f'href="/images/{ids[0]}/parent"' in html and 'viewBox="0 0 200 150"' in html
    box = re.search(r'<rect id="crop-box" x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', html)
    assert box is not None and box.groups() == ("20", "30", "64", "64")
    response = client.get(f"/images/{ids[0]}/parent")
    assert response.status_code == 200 and response.content == parent
    # a crop whose parent is nowhere: the crop itself, and a word why
    html = client.get(f"/images/{ids[1]}").text
    assert 'id="crop-box"' not in html and f'src="/images/{ids[1]}/full"' in html and "not available" in html
    assert client.get(f"/images/{ids[1]}/parent").status_code == 404


def test_a_parent_file_outside_the_store_is_read_from_its_path(page, tmp_path):
    client, settings, ids = page
    parent = tmp_path / "board.png"
    parent.write_bytes(png(5, (120, 90)))
    with db.session(settings.catalog_url) as s:
        image = s.get(Image, ids[0])
        assert image is not None
        image.parent_file, image.bbox = str(parent), "0,0,30,30"
        s.add(image)
        s.commit()
    html = client.get(f"/images/{ids[0]}").text
    assert 'viewBox="0 0 120 90"' in html and 'id="crop-box"' in html
    assert client.get(f"/images/{ids[0]}/parent").content == parent.read_bytes()


def test_the_page_leaves_room_for_curation_and_a_viewer_sees_no_form(page):
    client, _, ids = page
    html = client.get(f"/images/{ids[0]}").text
    forms = re.findall(r'<form [^>]*method="post"[^>]*action="([^"]*)"', html)
    assert forms == ["/logout"]  # a viewer gets no curation form here


def test_gallery_tiles_link_to_image_pages(page):
    client, _, ids = page
    html = client.get("/gallery").text
    for image_id in ids:
        assert f'href="/images/{image_id}"' in html
    assert html.count('name="image_id"') == len(ids) and 'id="selection"' in html
