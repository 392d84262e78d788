"""Tone and compression metrics of one image: the single definition used at ingest, validation,
serving and monitoring.

Tone (per-image means, 0..255):
- ``brightness``: mean luma, ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B), what Pillow's ``convert("L")`` gives;
- ``mean_r``, ``mean_g``, ``mean_b`` and the differences ``r_minus_g``, ``r_minus_b``, ``g_minus_b``;
- ``b_diff``, the capture spec's "B difference": how far blue sits below the other two channels,
  ``(R + G) / 2 - B``. Its spec range 19..43 is the midpoint of the R-B (21..49) and G-B (15..37) ranges,
  which is what this definition gives.

Compression: ``format``, ``jpeg_quality`` (estimated from the luminance quantisation table against the
IJG standard table, 1..100; None for non-JPEG), ``bytes_per_pixel`` and ``compressed`` (lossy or not).

Image quality (on the gray luma of the image at its *quality scale*: reduced by 1, 2, 4 or 8, the largest
divisor that keeps both sides at or above ``QUALITY_MIN_SIDE`` = 128 pixels; so DeepPCB's 640x640 scans are
judged at 160x160 and PKU's 128x128 crops at full size; None when the image is smaller than 10 pixels a side):
- ``sharpness``: variance of the 4-neighbour Laplacian, gray levels squared. Focus and motion blur lower it;
  it also scales with contrast (80% light gives about 0.64 of it), so compare it within one kind of image.
- ``smear``: share of the image (0..1) covered by 8x8-pixel blocks whose edges are soft: the block has edges
  (mean of (gx² + gy²) / 4 over central differences above 4, a slope of 2 gray levels a pixel) but little
  curvature (mean squared Laplacian under a quarter of that, an edge spread over more than about 2 pixels, and
  under a quarter of the image's own median block ratio, so that an image soft all over, such as a crop upscaled
  from a small box, counts what is softer than the rest). A smear, a drop of flux or an out-of-focus dust blot on
  the optics softens the edges under it; a sharp, clean image has none (0 on every DeepPCB scan).

Speed: a JPEG is decoded once at reduced size (libjpeg DCT scaling through Pillow's ``draft``), no smaller than
``min_side`` pixels a side and no smaller than the quality scale. Block means survive DCT scaling, so every
tone metric stays within one gray level of the full decode; ``tests/aoi/test_metrics.py`` proves that bound
on generated images and ``tests/integration/test_real_sets.py`` on the real data sets. Other formats are
decoded whole and reduced to the quality scale by box averaging (what DCT scaling approximates).
``bench/metrics.py`` states what the quality metrics cost.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

LOSSY_FORMATS = frozenset({"JPEG", "WEBP", "MPO"})

# IJG (libjpeg) standard luminance quantisation table, natural (row-major) order, quality 50.
_IJG_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.int64,
)


class BadImage(ValueError):
    """The bytes are not an image this system accepts; ``str(err)`` is the reason a person reads."""


@dataclass(frozen=True, slots=True)
class ImageMetrics:
    format: str
    width: int
    height: int
    mode: str
    byte_size: int
    brightness: float
    mean_r: float
    mean_g: float
    mean_b: float
    r_minus_g: float
    r_minus_b: float
    g_minus_b: float
    b_diff: float
    jpeg_quality: int | None
    bytes_per_pixel: float
    compressed: bool
    sharpness: float | None = None
    smear: float | None = None

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Tone(BaseModel):
    """Per-image means (0..255) from aoi.image_metrics, the same function ingest and validation use."""

    brightness: float
    mean_r: float
    mean_g: float
    mean_b: float
    r_minus_g: float
    r_minus_b: float
    g_minus_b: float
    b_diff: float


# The tone fields, declared once (Tone): the image and prediction tables' columns, the service's answer, the
# validation specs and monitoring read these names.
TONE_FIELDS = tuple(Tone.model_fields)
# What is judged jointly (docs/domain.md#joint-tone: one channel alone says little): brightness and every channel
# difference. The machines' tone statistics (Feast) and a derived spec's default metrics.
JOINT_TONE_FIELDS = ("brightness", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff")
QUALITY_FIELDS = ("sharpness", "smear")
QUALITY_MIN_SIDE = 128  # part of the definition of sharpness and smear: never a setting, or stored values drift
_SMEAR_BLOCK = 8  # pixels a side, at the quality scale
_EDGE_FLOOR = 4.0  # mean of (gx² + gy²) / 4 over a block, central differences: a slope of 2 gray levels a pixel
_SOFT_RATIO = 0.25  # mean Laplacian² / mean gradient² below this: the block's edges are soft


@lru_cache(maxsize=1)
def _ijg_tables() -> np.ndarray:
    """The 100 luminance tables libjpeg writes for quality 1..100 (row q-1)."""
    quality = np.arange(1, 101)
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    tables = (_IJG_LUMA[None, :] * scale[:, None] + 50) // 100
    return np.clip(tables, 1, 255)


def estimate_jpeg_quality(luma_table) -> int:
    return _estimate_quality(tuple(luma_table))


@lru_cache(maxsize=256)
def _estimate_quality(luma_table: tuple[int, ...]) -> int:
    """The IJG quality (1..100) whose standard luminance table is closest to ``luma_table``.

    Encoders that use the IJG tables (libjpeg, Pillow, OpenCV, most cameras' firmware) give back the exact
    quality; other encoders get the nearest equivalent.
    """
    # Cached: a camera or encoder writes the same few tables into every image.
    table = np.asarray(luma_table, dtype=np.int64)
    if table.size != 64:
        raise BadImage(f"JPEG quantisation table has {table.size} entries, expected 64")
    error = np.abs(_ijg_tables() - table[None, :]).sum(axis=1)
    return int(np.argmin(error)) + 1


def measure(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    allowed_modes=("L", "RGB"),
    min_side: int = QUALITY_MIN_SIDE,
    quality: bool = True,
) -> ImageMetrics:
    """Decode ``data`` (never modifying it) and return its tone, compression and quality metrics.

    ``quality=False`` leaves sharpness and smear out (None) and decodes for the tone alone: what the metrics
    cost before they existed, for ``bench/metrics.py``.

    Raises ``BadImage`` with a reason a person understands for anything that is not a whole, decodable
    image within the limits.
    """
    return _measure(data, max_pixels, allowed_modes, min_side, quality, keep=False)[0]


def measure_decoded(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    allowed_modes=("L", "RGB"),
    min_side: int = QUALITY_MIN_SIDE,
    quality: bool = True,
) -> tuple[ImageMetrics, Image.Image | None]:
    """``measure``, and the image it decoded when that is the whole image at full size (what
    ``aoi.preprocess.to_tensor`` takes, so the service decodes an upload once); None when a JPEG was decoded
    at reduced size for the metrics, which the model's input must not be."""
    return _measure(data, max_pixels, allowed_modes, min_side, quality, keep=True)


def _measure(
    data: bytes, max_pixels: int, allowed_modes, min_side: int, quality: bool, keep: bool
) -> tuple[ImageMetrics, Image.Image | None]:
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImage("not an image: the content is no image format Pillow recognises") from None
    except Image.DecompressionBombError as err:
        raise BadImage(f"decompression bomb: {err}") from None
    except Exception as err:  # corrupt headers raise all sorts of things
        raise BadImage(f"corrupt or truncated image header: {err}") from None
    decoded = None
    try:
        fmt = image.format or "UNKNOWN"
        width, height = image.size
        if width <= 0 or height <= 0:
            raise BadImage(f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise BadImage(
                f"decompression bomb: {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
            )
        mode = image.mode
        if mode not in allowed_modes:
            raise BadImage(f"unsupported mode {mode} (accepted: {', '.join(allowed_modes)})")
        jpeg_quality = None
        if fmt == "JPEG":
            tables = getattr(image, "quantization", None) or {}
            if 0 not in tables:
                raise BadImage("JPEG without a luminance quantisation table")
            jpeg_quality = estimate_jpeg_quality(tables[0])
            scale = _draft_scale(width, height, min_side)
            if quality:
                scale = min(scale, _draft_scale(width, height, QUALITY_MIN_SIDE))
            if scale > 1:
                image.draft(mode, (width // scale, height // scale))
        try:
            image.load()
        except Exception as err:  # truncated or corrupt pixel data
            raise BadImage(f"corrupt or truncated image data: {err}") from None
        means = _channel_means(image)
        sharpness = smear = None
        if quality:
            sharpness, smear = _quality(_quality_luma(image, width, height))
        if keep and image.size == (width, height):  # nothing above modifies it; closing would drop its pixels
            decoded = image
    finally:
        if decoded is None:
            image.close()
    if mode == "L":
        r = g = b = float(means[0])
    else:
        r, g, b = (float(v) for v in means[:3])
    metrics = ImageMetrics(
        format=fmt,
        width=width,
        height=height,
        mode=mode,
        byte_size=len(data),
        brightness=0.299 * r + 0.587 * g + 0.114 * b,
        mean_r=r,
        mean_g=g,
        mean_b=b,
        r_minus_g=r - g,
        r_minus_b=r - b,
        g_minus_b=g - b,
        b_diff=(r + g) / 2 - b,
        jpeg_quality=jpeg_quality,
        bytes_per_pixel=len(data) / (width * height),
        compressed=fmt in LOSSY_FORMATS,
        sharpness=sharpness,
        smear=smear,
    )
    return metrics, decoded


_LEVELS = np.arange(256, dtype=np.float64)


def _channel_means(image: Image.Image) -> list[float]:
    """Per-channel means from Pillow's C histogram (ImageStat's pure-Python sum is far slower)."""
    hist = np.asarray(image.histogram(), dtype=np.float64).reshape(-1, 256)
    return list(hist @ _LEVELS / hist.sum(axis=1))


def _quality_luma(image: Image.Image, width: int, height: int) -> np.ndarray:
    """Gray luma (Pillow's BT.601 ``convert("L")``) at the quality scale, as float32."""
    gray = image if image.mode == "L" else image.convert("L")
    # Formats other than JPEG, and a JPEG whose draft stopped short of the quality scale (min_side above 128),
    # are box-reduced the rest of the way.
    factor = _draft_scale(width, height, QUALITY_MIN_SIDE) // max(1, round(width / gray.width))
    if factor > 1:
        gray = gray.reduce(factor)
    return np.asarray(gray, dtype=np.float32)


def _quality(luma: np.ndarray) -> tuple[float | None, float | None]:
    """(sharpness, smear) of a gray image; (None, None) when it is too small to judge."""
    rows, cols = luma.shape
    if min(rows, cols) < _SMEAR_BLOCK + 2:
        return None, None
    # In place and by BLAS where it can be: this runs on every image at ingest and on every request.
    laplacian = luma[1:-1, :-2] + luma[1:-1, 2:]
    laplacian += luma[:-2, 1:-1]
    laplacian += luma[2:, 1:-1]
    laplacian -= 4 * luma[1:-1, 1:-1]
    flat = laplacian.ravel()
    mean = float(flat.mean(dtype=np.float64))
    sharpness = max(float(np.dot(flat, flat)) / flat.size - mean * mean, 0.0)
    gradient2 = luma[1:-1, 2:] - luma[1:-1, :-2]
    gy = luma[2:, 1:-1] - luma[:-2, 1:-1]
    gradient2 *= gradient2
    gy *= gy
    gradient2 += gy  # 4x the mean of gx² + gy² over central differences
    laplacian *= laplacian
    down, across = _block_sums(rows - 2), _block_sums(cols - 2)
    block_gradient = (down @ gradient2 @ across.T) * 0.25
    block_curvature = down @ laplacian @ across.T
    edges = block_gradient > _EDGE_FLOOR * _SMEAR_BLOCK * _SMEAR_BLOCK
    if not edges.any():
        return sharpness, 0.0
    ratio = block_curvature[edges] / block_gradient[edges]
    # Soft for this image: a crop upscaled from a small box is soft all over, and a smear is what is softer
    # than the rest (a softness shared by the whole image is a matter of focus, which sharpness measures).
    limit = min(_SOFT_RATIO, _SOFT_RATIO * float(np.median(ratio)))
    return sharpness, float((ratio < limit).sum()) / edges.size


@lru_cache(maxsize=32)
def _block_sums(n: int) -> np.ndarray:
    """(n // block, n) 0/1 matrix: times an array, the sums of each whole block of rows (the rest is left out)."""
    blocks = n // _SMEAR_BLOCK
    matrix = np.zeros((blocks, n), dtype=np.float32)
    for b in range(blocks):
        matrix[b, b * _SMEAR_BLOCK : (b + 1) * _SMEAR_BLOCK] = 1.0
    matrix.flags.writeable = False
    return matrix


def _draft_scale(width: int, height: int, min_side: int) -> int:
    """Largest libjpeg scale divisor (1, 2, 4, 8) that keeps both sides at or above ``min_side``."""
    for scale in (8, 4, 2):
        if min(width, height) // scale >= min_side:
            return scale
    return 1
