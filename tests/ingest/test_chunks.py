"""An ingest chunk is bounded by bytes as well as by count: its images are all in memory at once."""

import json
import os
import random

import pytest
from pydantic import ValidationError

from aoi.labels import LabelMap
from aoi.settings import IngestSettings
from ingest.importers import ImportContext, get_importer
from ingest.pipeline import chunks, read_and_hash
from tests.helpers import board, encode, write, zip_of


def _check(found, limits: IngestSettings) -> list[int]:
    """Loads every chunk; asserts each holds at most chunk_size images and chunk_max_bytes bytes; returns sizes."""
    held, seen = [], []
    for chunk in chunks(found.candidates, limits.chunk_size, limits.chunk_max_bytes):
        loaded, rejected = read_and_hash(chunk)
        assert rejected == []
        assert len(chunk) <= limits.chunk_size
        held.append(sum(len(item.data) for item in loaded))
        assert held[-1] <= limits.chunk_max_bytes
        seen += chunk
    assert seen == found.candidates  # every candidate once, in order
    return held


@pytest.mark.parametrize("container", ["folder", "zip", "csv"])
def test_no_chunk_holds_more_bytes_than_the_limit(tmp_path, container):
    rng = random.Random(7)
    files = {f"Spur/{n:03d}.png": os.urandom(rng.randint(1_000, 200_000)) for n in range(60)}
    limits = IngestSettings(max_file_bytes=250_000, chunk_max_bytes=500_000, chunk_size=50)
    ctx = ImportContext(limits=limits, labels=LabelMap.load())
    if container == "zip":
        source, fmt = zip_of(tmp_path / "in.zip", files), "folder"
    else:
        for name, data in files.items():
            write(tmp_path / "in" / name, data)
        source, fmt = tmp_path / "in", "folder"
        if container == "csv":
            write(tmp_path / "in" / "m.csv", ("path,label\n" + "".join(f"{n},Spur\n" for n in files)).encode())
            source, fmt = tmp_path / "in" / "m.csv", "csv"
    held = _check(get_importer(fmt)(source, ctx), limits)
    assert sum(held) == sum(len(d) for d in files.values())
    assert len(held) >= sum(held) / limits.chunk_max_bytes  # the byte bound, not the count, made these chunks
    assert max(held) > limits.chunk_max_bytes / 2  # ... and chunks are not needlessly small


def test_crop_chunks_are_bounded_before_any_source_is_read(tmp_path):
    png = encode(board(size=(600, 600), seed=3), fmt="PNG")
    shapes = [
        {"label": "Spur", "points": [[x, y], [x + w, y + w]]}
        for x, y, w in [(10, 10, 20), (0, 0, 500), (50, 50, 300), (100, 100, 40), (5, 5, 580)]
    ]
    members = {"b.png": png, "b.json": json.dumps({"imagePath": "b.png", "shapes": shapes}).encode()}
    limits = IngestSettings(max_file_bytes=1_200_000, chunk_max_bytes=1_500_000, chunk_size=256, max_pixels=1_000_000)
    found = get_importer("labelme")(zip_of(tmp_path / "lm.zip", members), ImportContext(limits, LabelMap.load()))
    held = _check(found, limits)
    assert len(held) >= 2  # five crops of up to 596x596 RGB would not fit one chunk


def test_a_chunk_byte_limit_below_the_file_limit_is_refused():
    with pytest.raises(ValidationError, match=r"chunk_max_bytes .* must be at least max_file_bytes"):
        IngestSettings(max_file_bytes=10_000_000, chunk_max_bytes=1_000_000)
