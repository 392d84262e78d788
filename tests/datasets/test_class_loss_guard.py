"""The guard on every dataset build: a validation that removes too much of a class refuses the build."""

from __future__ import annotations

import pytest
from sqlmodel import col

from aoi.catalog import db
from aoi.catalog.models import DatasetVersion, Image, ImageStatus
from datasets.versions import ClassLossError, DatasetError, build, describe
from tests.datasets.helpers import add_images


def exclude(url: str, label: str, n: int) -> None:
    with db.session(url) as s:
        for image in s.query(Image).filter(Image.label == label).order_by(col(Image.id)).limit(n):
            image.status = ImageStatus.excluded
            s.add(image)
        s.commit()


def test_a_rule_that_removes_more_than_the_limit_of_a_class_refuses_the_build(settings):
    url = settings.catalog_url
    add_images(url, 40)  # 40 each of PASS, OPEN, SHORT
    exclude(url, "SHORT", 9)  # 22.5%
    exclude(url, "OPEN", 8)  # 20%: at the limit, not over it
    with pytest.raises(ClassLossError) as err:
        build(url, "v1", source="gray", spec_key="tone@2", max_class_loss=0.2)
    message = str(err.value)
    assert "rule 'not excluded by validation (spec tone@2)' removes 22% of class SHORT (9 of 40 images)" in message
    assert "OPEN" not in message and "--allow-class-loss" in message and "\n" not in message
    with db.session(url) as s:
        assert s.query(DatasetVersion).count() == 0  # nothing frozen
    assert build(url, "v1", source="gray", max_class_loss=0.25)["class_loss_allowed"] is False


def test_allow_class_loss_builds_and_is_recorded_in_the_version_and_its_cleaning_table(settings):
    url = settings.catalog_url
    add_images(url, 20)
    exclude(url, "PASS", 15)
    version = build(url, "v1", source="gray", max_class_loss=0.2, allow_class_loss=True)
    step = version["cleaning"][1]
    assert step["over_limit"] == {"PASS": 0.75} and step["allow_class_loss"] is True and step["max_class_loss"] == 0.2
    assert version["class_loss_allowed"] is True and describe(url, "v1")["class_loss_allowed"] is True
    assert version["counts"] and sum(version["cleaning"][-1]["after"].values()) == 45
    # The cap and the blind wall remove what the builder asked for by name: never judged.
    capped = build(url, "v2", source="gray", per_class=2, max_class_loss=0.8, parent="v1")  # the cap takes 90%
    assert capped["class_loss_allowed"] is False


def test_labels_with_few_images_are_warned_about_and_a_bad_limit_refused(settings):
    url = settings.catalog_url
    add_images(url, 12)
    version = build(url, "v1", source="gray", min_label_images=20)
    assert version["warnings"] == [
        f"label {c} has 12 images, fewer than 20 (AOI_INGEST__MIN_LABEL_IMAGES)" for c in ("OPEN", "PASS", "SHORT")
    ]
    with pytest.raises(DatasetError, match="between 0 and 1"):
        build(url, "v2", source="gray", max_class_loss=1.5)
