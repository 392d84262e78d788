"""The platform manual's upload rules: minimum size and maximum aspect ratio, quarantined naming the rule."""

import pytest

from aoi.settings import IngestSettings, Settings
from ingest.candidate import Candidate
from ingest.pipeline import decode_and_measure, read_and_hash
from tests.helpers import image_bytes


def measure_all(sizes, **limits):
    candidates = [
        Candidate(
            file=f"{w}x{h}.png",
            origin=f"/in/{w}x{h}.png",
            label="SPUR",
            load=lambda w=w, h=h: image_bytes(size=(w, h), seed=w * 1000 + h),
        )
        for w, h in sizes
    ]
    loaded, _ = read_and_hash(candidates)
    return decode_and_measure(loaded, Settings(ingest=IngestSettings(**limits)))


def test_images_under_the_minimum_size_or_too_elongated_are_quarantined_naming_the_rule():
    measured, rejected = measure_all([(30, 30), (29, 64), (64, 29), (180, 30), (181, 30), (128, 128), (64, 640)])
    assert sorted(m.candidate.file for m in measured) == ["128x128.png", "180x30.png", "30x30.png"]
    reasons = {r.candidate.file: r.reason for r in rejected}
    assert reasons["29x64.png"] == (
        "upload rule min size: 29x64 px is under the minimum 30x30 px (AOI_INGEST__MIN_WIDTH, AOI_INGEST__MIN_HEIGHT)"
    )
    assert "min size: 64x29 px" in reasons["64x29.png"]
    assert reasons["181x30.png"] == (
        "upload rule max aspect ratio: 181x30 px is 6.0:1, over 6:1 (AOI_INGEST__MAX_ASPECT_RATIO)"
    )
    assert "10.0:1" in reasons["64x640.png"]
    assert all(r.data for r in rejected)  # the bytes go to the quarantine store


def test_the_rules_are_settings():
    measured, rejected = measure_all([(20, 20), (640, 64)], min_width=16, min_height=16, max_aspect_ratio=12)
    assert len(measured) == 2 and not rejected
    with pytest.raises(ValueError):
        IngestSettings(max_aspect_ratio=0.5)
