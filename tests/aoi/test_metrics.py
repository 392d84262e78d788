import io

import numpy as np
import pytest
from PIL import Image

from aoi.metrics import TONE_FIELDS, BadImage, estimate_jpeg_quality, measure
from tests.helpers import board, encode, image_bytes


def test_flat_gray_image_has_its_level_as_brightness_and_no_colour():
    m = measure(image_bytes(mode="L", color=(117,)))
    assert m.brightness == pytest.approx(117)
    assert (m.r_minus_g, m.r_minus_b, m.g_minus_b, m.b_diff) == (0, 0, 0, 0)
    assert (m.mode, m.format, m.compressed, m.jpeg_quality) == ("L", "PNG", False, None)


def test_tone_metrics_of_a_flat_colour_follow_their_definitions():
    m = measure(image_bytes(size=(40, 20), color=(200, 150, 100)))
    assert m.brightness == pytest.approx(0.299 * 200 + 0.587 * 150 + 0.114 * 100)
    assert (m.mean_r, m.mean_g, m.mean_b) == (200, 150, 100)
    assert (m.r_minus_g, m.r_minus_b, m.g_minus_b) == (50, 100, 50)
    assert m.b_diff == pytest.approx((200 + 150) / 2 - 100)
    assert (m.width, m.height) == (40, 20)
    assert m.bytes_per_pixel == pytest.approx(m.byte_size / 800)


@pytest.mark.parametrize("quality", [5, 20, 50, 75, 90, 95, 100])
def test_jpeg_quality_is_recovered_from_the_quantisation_table(quality):
    data = encode(np.stack([board(seed=quality)] * 3, axis=2), fmt="PNG")
    rgb = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=quality)
    m = measure(out.getvalue())
    assert m.jpeg_quality == quality
    assert m.compressed is True


def test_quality_estimate_rejects_a_malformed_table():
    with pytest.raises(BadImage):
        estimate_jpeg_quality([1, 2, 3])


def test_reduced_size_decode_stays_within_one_gray_level_on_generated_jpegs():
    for seed in range(5):
        data = encode(np.stack([board(size=(640, 480), seed=seed)] * 3, axis=2))
        fast, full = measure(data), measure(data, min_side=10**9)
        for field in TONE_FIELDS:
            assert abs(getattr(fast, field) - getattr(full, field)) <= 1.0, field


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello, not an image" * 20, "not an image"),
        (image_bytes(size=(64, 64), fmt="JPEG")[:400], "truncated"),
        (image_bytes(size=(2000, 2000), mode="L", color=(0,)), "decompression bomb"),
        (image_bytes(mode="CMYK", fmt="JPEG"), "unsupported mode CMYK"),
        (image_bytes(mode="RGBA"), "unsupported mode RGBA"),
    ],
    ids=["empty", "text", "truncated", "bomb", "cmyk", "rgba"],
)
def test_bad_bytes_are_refused_with_a_reason(data, reason):
    with pytest.raises(BadImage, match=reason):
        measure(data, max_pixels=1_000_000)
