import io
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from aoi.image_metrics import QUALITY_FIELDS, QUALITY_MIN_SIDE, TONE_FIELDS, BadImage, estimate_jpeg_quality, measure
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


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


class Quality(NamedTuple):
    sharpness: float
    smear: float


def quality_of(image: Image.Image) -> Quality:
    """Sharpness and smear of the image saved as JPEG; both exist for the images these tests draw."""
    m = measure(_jpeg(image))
    assert m.sharpness is not None and m.smear is not None
    return Quality(m.sharpness, m.smear)


@pytest.mark.parametrize("size", [(200, 200), (640, 480)])
def test_sharpness_falls_as_the_image_blurs(size):
    for seed in range(3):
        sharp = Image.fromarray(board(size=size, seed=seed))
        values = [
            quality_of(sharp.filter(ImageFilter.GaussianBlur(sigma)) if sigma else sharp).sharpness
            for sigma in (0, 1, 2, 4)
        ]
        assert values == sorted(values, reverse=True) and values[1] < 0.8 * values[0], values
        assert values[-1] < 0.2 * values[0], values


def test_smear_rises_with_a_smeared_patch_and_an_out_of_focus_dust_blot():
    for seed in range(3):
        clean = Image.fromarray(board(size=(320, 320), seed=seed))
        smeared = clean.copy()  # a quarter of the image under a smear that blurs what lies beneath
        smeared.paste(clean.crop((60, 60, 220, 220)).filter(ImageFilter.GaussianBlur(6)), (60, 60))
        mask = Image.new("L", clean.size, 0)
        ImageDraw.Draw(mask).ellipse((100, 80, 260, 240), fill=255)
        # dust on the optics: out of focus, it veils and softens what lies under it, with a soft rim
        veiled = Image.blend(clean.filter(ImageFilter.GaussianBlur(4)), Image.new("L", clean.size, 120), 0.5)
        dusty = Image.composite(veiled, clean, mask.filter(ImageFilter.GaussianBlur(8)))
        base, smear, dust = (quality_of(image) for image in (clean, smeared, dusty))
        assert base.smear == 0.0  # sharp traces on a flat board: no soft edges at all
        assert 0.1 < smear.smear <= 0.25, smear.smear  # at most the share of the image the smear covers
        assert 0.0 < dust.smear < smear.smear, dust.smear
        assert smear.sharpness < 0.85 * base.sharpness and dust.sharpness < 0.85 * base.sharpness


def test_an_image_soft_all_over_is_unsharp_not_smeared_and_a_smear_on_it_still_shows():
    """A crop upscaled from a small box is soft everywhere (PKU's crops): that is sharpness's business; smear
    counts what is softer than the rest of the image."""
    for seed in range(2):
        small = Image.fromarray(board(size=(100, 100), seed=seed))
        crisp, soft = (
            quality_of(small.resize((200, 200), f)) for f in (Image.Resampling.NEAREST, Image.Resampling.BILINEAR)
        )
        assert soft.sharpness < 0.3 * crisp.sharpness and soft.smear == crisp.smear == 0.0
        upscaled = small.resize((200, 200), Image.Resampling.BILINEAR)
        smeared = upscaled.copy()
        smeared.paste(upscaled.crop((40, 40, 140, 140)).filter(ImageFilter.GaussianBlur(4)), (40, 40))
        assert quality_of(smeared).smear > 0.1


def test_quality_metrics_are_deterministic_and_of_a_gray_and_a_colour_copy_alike():
    gray = board(size=(256, 256), seed=7)
    a, b = measure(_png(Image.fromarray(gray))), measure(_png(Image.fromarray(gray)))
    assert (a.sharpness, a.smear) == (b.sharpness, b.smear)
    colour = measure(_png(Image.fromarray(np.stack([gray] * 3, axis=2))))  # gray content stored as RGB
    assert colour.sharpness == pytest.approx(a.sharpness) and colour.smear == pytest.approx(a.smear)


def test_quality_is_judged_at_the_quality_scale_whatever_the_format_or_min_side():
    """A JPEG decodes by DCT scaling, a PNG is box-reduced: both land on the same 128..255 px scale, so a larger
    min_side (a sharper tone decode) does not change what sharpness means."""
    image = Image.fromarray(board(size=(640, 640), seed=3))
    jpeg, png = _jpeg(image), _png(image)
    default, full = measure(jpeg), measure(jpeg, min_side=10**9)
    assert full.sharpness == pytest.approx(default.sharpness, rel=0.25)
    assert measure(png).sharpness == pytest.approx(default.sharpness, rel=0.25)
    assert QUALITY_MIN_SIDE == 128


def test_quality_is_none_where_it_cannot_be_judged():
    tiny = measure(image_bytes(size=(6, 6)))
    assert (tiny.sharpness, tiny.smear) == (None, None)
    off = measure(image_bytes(size=(64, 64)), quality=False)
    assert all(getattr(off, f) is None for f in QUALITY_FIELDS) and off.brightness > 0
    flat = measure(image_bytes(size=(64, 64), mode="L", color=(90,)))
    assert (flat.sharpness, flat.smear) == (0.0, 0.0)
