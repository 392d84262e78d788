"""What the monitor's reference holds: what the line sent of the dataset version's source, uncleaned, less blind
sets, calibration shots and what came after the version; answers of unseen images lent to the rest by class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update
from sqlmodel import col

from aoi.catalog import db
from aoi.catalog.models import Image, ImageStatus
from monitoring import frames
from tests.flows.helpers import aoi, ingest
from tests.helpers import class_folder


@pytest.mark.usefixtures("prefect_api")
def test_the_reference_is_every_labelled_image_of_the_source_cleaned_or_not(settings, tmp_path):
    line = ingest(class_folder(tmp_path / "line", {"Short": 6, "Spur": 6, "Missing_hole": 6}), "--source", "color")
    with db.get_engine(settings.catalog_url).begin() as connection:  # as a class-blind tone spec would
        excluded = connection.execute(
            update(Image)
            .where(col(Image.file_name).like("%missing_hole%"))
            .values(status=ImageStatus.excluded, status_reason="tone")
        ).rowcount
    assert excluded == 6
    blind = class_folder(tmp_path / "blind", {"Short": 3, "Spur": 3}, seed=5, board="11")
    aoi("dataset", "blind", "b-11", "--folder", str(blind), "--source", "color")
    shots = ingest(
        class_folder(tmp_path / "shots", {"Short": 4}, seed=6),
        "--source",
        "color",
        "--reference",
        "--machine",
        "vrs-1",
        "--part",
        "REF-BOARD",
    )
    built = aoi(
        "dataset", "build", "c-v1", "--source", "color", "--split", "2:1:0", "--group-by", "none", "--allow-class-loss"
    )  # the spec removes every MISSING_HOLE on purpose
    assert "MISSING_HOLE" not in built["taxonomy"]
    ingest(class_folder(tmp_path / "later", {"Short": 4}, seed=7), "--source", "color")

    inputs = frames.line_inputs(settings, "c-v1")
    assert len(inputs) == line["added"] == 18 and shots["added"] == 4
    assert set(inputs.loc[inputs["label"] == "MISSING_HOLE", "split"]) == {frames.OUTSIDE}
    assert set(inputs.loc[inputs["label"] != "MISSING_HOLE", "split"]) == {"train", "valid"}
    assert inputs[list(frames.TONE_FIELDS)].notna().all().all() and "part_no" in inputs


def test_answers_of_unseen_images_are_lent_to_the_train_split_by_class():
    inputs = pd.DataFrame(
        {
            "sha256": list("abcdefgh"),
            "label": ["S"] * 5 + ["M"] * 2 + ["X"],
            "split": ["train", "train", "train", "valid", "outside", "outside", "outside", "train"],
        }
    )
    answered = pd.DataFrame(
        {
            "sha256": ["d", "e", "f", "g"],
            "confidence": [0.9, 0.5, 0.7, 0.8],
            "model_label": ["S", "M", "M", "M"],
            "unknown": [False, True, True, True],
        }
    )
    frame = frames.with_class_answers(inputs, answered).set_index("sha256")
    assert set(frame.loc[["a", "b", "c"], "answer_of"]) <= {"d", "e"}  # another unseen image of class S
    assert frame.loc["f", "answer_of"] == "f" and np.isnan(frame.loc["h", "confidence"])  # class X: none to lend
    for sha in "abc":
        donor = frame.loc[sha, "answer_of"]
        assert frame.loc[sha, "confidence"] == frame.loc[donor, "confidence"]
    from monitoring.drift import distinct_answers

    assert distinct_answers(frame.reset_index()) == 4
