"""Image changes for the robustness tables.

Tone (docs/domain.md#joint-tone): one channel scaled by 0.5, 0.9, 1.0, 1.1 or 1.5 moved the team's accuracy from 100% to
30%, and each channel differently, so tone is validated jointly and measured per channel here. A gray model
has one channel (L), scaled the same way.

Compression (docs/domain.md#compression): a model trained on JPEG scored 9.1 points lower on uncompressed images. The
images are
re-encoded as PNG (lossless) and as JPEG at falling quality, and decoded again before preprocessing.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

TONE_FACTORS = (0.5, 0.9, 1.0, 1.1, 1.5)
COMPRESSIONS = ("PNG", "JPEG-95", "JPEG-75", "JPEG-50")


def channels_of(kind: str) -> tuple[str, ...]:
    return ("L",) if kind == "gray" else ("R", "G", "B")


def scale_channel(channel: str, factor: float):
    """An image change that multiplies one channel (R, G, B, or L for gray) by ``factor``, clipped to 0..255."""

    def change(image: Image.Image) -> Image.Image:
        arr = np.asarray(image, dtype=np.float32)
        if image.mode == "L":
            if channel != "L":
                raise ValueError(f"a gray image has no channel {channel}")
            scaled = arr * factor
        else:
            scaled = arr.copy()
            index = "RGB".index(channel)
            scaled[..., index] *= factor
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), image.mode)

    return change


def reencode(codec: str):
    """An image change that encodes as ``PNG`` or ``JPEG-<quality>`` and decodes the result."""
    fmt, _, quality = codec.partition("-")

    def change(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **({"quality": int(quality)} if quality else {}))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            decoded.load()
            return decoded.convert(image.mode)

    return change


def tone_drop(tone: dict[str, dict[str, float]], factors: tuple[float, ...] = (0.9, 1.1)) -> float:
    """The largest accuracy lost against the unchanged image when one channel moves by ``factors``."""
    drops = [row["1.0"] - row[str(f)] for row in tone.values() for f in factors if row.get(str(f)) is not None]
    return max(0.0, max(drops)) if drops else 0.0
