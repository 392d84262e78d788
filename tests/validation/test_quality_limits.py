"""Limits on image quality (sharpness, smear): a blurred image is excluded with the limit named; an image
measured before the quality metrics existed (NULL) is not judged on them."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image as PILImage
from PIL import ImageFilter
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import Image, ImageStatus
from aoi.image_metrics import measure
from aoi.store import ImageStore, sha256_of
from ingest import records
from ingest.candidate import Candidate
from ingest.pipeline import Measured
from tests.helpers import board
from validation import records as validation_records
from validation import steps
from validation.engines import run_pandas
from validation.specs import SpecError, parse_spec

SPEC = parse_spec("""
name: focus
applies_to: gray
tone:
  brightness: {min: 0, max: 255}
quality:
  sharpness: {min: 2000}
  smear: {max: 0.05}
""")


def _jpeg(seed: int, blur: float = 0.0) -> bytes:
    image = PILImage.fromarray(board(size=(256, 256), seed=seed))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_quality_limits_parse_and_unknown_quality_metrics_are_refused():
    assert SPEC.quality["sharpness"].min == 2000 and parse_spec(SPEC.to_yaml()) == SPEC
    assert parse_spec("name: q\nquality: {smear: {max: 0.1}}").quality["smear"].max == 0.1  # quality alone is a spec
    with pytest.raises(SpecError, match=r"unknown quality metric\(s\) \['focus'\]"):
        parse_spec("name: q\nquality: {focus: {min: 1}}")
    with pytest.raises(SpecError, match=r"unknown tone metric\(s\) \['sharpness'\]"):
        parse_spec("name: q\ntone: {sharpness: {min: 1}}")


def _catalogue(settings) -> tuple[int, dict[str, bytes]]:
    """Two sharp boards, two blurred ones, all stored; the one named 'old' as a row from before revision 0009."""
    url = settings.catalog_url
    db.upgrade(url)
    batch = records.open_batch(url, "folder", "/in", {"source": "gray"})
    blobs = {"sharp-0": _jpeg(0), "sharp-1": _jpeg(1), "blurred": _jpeg(2, blur=3.0), "old": _jpeg(3, blur=3.0)}
    items = []
    for name, data in blobs.items():
        candidate = Candidate(file=f"Spur/{name}.jpg", origin=f"in/Spur/{name}.jpg", label="SPUR")
        items.append(Measured(candidate, data, sha256_of(data), measure(data)))
    ImageStore(settings.store_dir).put_many((item.data, item.sha256) for item in items)
    records.record_chunk(url, batch, items, [], None)
    with db.session(url) as s:  # quality never measured
        old = s.exec(select(Image).where(Image.file_name == "old.jpg")).one()
        old.sharpness = old.smear = None
        s.add(old)
        s.commit()
    return batch, blobs


def test_an_image_below_the_sharpness_limit_is_excluded_with_the_limit_named(settings):
    url = settings.catalog_url
    batch, blobs = _catalogue(settings)
    assert measure(blobs["blurred"]).sharpness < 2000 < min(measure(blobs[k]).sharpness for k in ("sharp-0", "sharp-1"))

    frame = steps.metrics_frame(settings, validation_records.Scope(batch_id=batch))
    assert frame["sharpness"].isna().sum() == 1  # NULL stays unknown, not 0
    verdict = run_pandas(SPEC, validation_records.applicable(SPEC, frame))
    spec_id = validation_records.register_spec(settings, SPEC)
    run = steps.start_run(settings, spec_id, validation_records.Scope(batch_id=batch))
    assert steps.exclude(settings, run, SPEC, verdict) == 1
    with db.session(url) as s:
        rows = {r.file_name: r for r in s.exec(select(Image)).all()}
    assert rows["blurred.jpg"].status == ImageStatus.excluded
    assert "sharpness outside 2000..inf" in rows["blurred.jpg"].status_reason
    assert "spec focus@1" in rows["blurred.jpg"].status_reason
    assert {n for n, r in rows.items() if r.status == ImageStatus.excluded} == {"blurred.jpg"}


def test_images_from_before_the_quality_metrics_get_them_from_their_stored_bytes(settings):
    from typer.testing import CliRunner

    from cli import app

    _, blobs = _catalogue(settings)
    result = CliRunner().invoke(app, ["store", "measure-quality", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"measured": 1, "too_small": 0, "missing": 0, "unreadable": 0}
    with db.session(settings.catalog_url) as s:
        old = s.exec(select(Image).where(Image.file_name == "old.jpg")).one()
    expected = measure(blobs["old"])
    assert (old.sharpness, old.smear) == (pytest.approx(expected.sharpness), expected.smear)
    again = CliRunner().invoke(app, ["store", "measure-quality", "--json"])
    assert json.loads(again.output)["measured"] == 0  # nothing left to fill
