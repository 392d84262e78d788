"""Cutting classification crops out of annotated images, the same way for every importer.

A crop is a square window of ``crop_size`` pixels centred on the box (larger when the box plus ``margin`` is
larger), shifted to lie inside the image. Crops are derived images: stored losslessly as PNG, with
deterministic bytes so that re-running an ingest finds the same content hash.
"""

from __future__ import annotations

import io
import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from PIL import Image

from aoi.image_metrics import BadImage
from aoi.settings import IngestSettings
from aoi.store import sha256_of
from ingest.candidate import BadInput

Box = tuple[int, int, int, int]


def window(box: Box, image_size: tuple[int, int], crop_size: int, margin: int) -> Box:
    """The crop window (x1, y1, x2, y2) for ``box`` inside an image of ``image_size`` (width, height)."""
    x1, y1, x2, y2 = box
    width, height = image_size
    side = max(crop_size, max(x2 - x1, y2 - y1) + 2 * margin)
    side_x, side_y = min(side, width), min(side, height)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = round(cx - side_x / 2)
    top = round(cy - side_y / 2)
    left = min(max(left, 0), width - side_x)
    top = min(max(top, 0), height - side_y)
    return left, top, left + side_x, top + side_y


def crop_bytes_bound(box, crop_size: int, margin: int) -> int:
    """The most bytes the PNG of ``box``'s window can take (RGB, incompressible), known before any image is read."""
    side = max(crop_size, math.ceil(max(box[2] - box[0], box[3] - box[1])) + 2 * margin + 2)
    raw = side * (side * 3 + 1)  # a filter byte per row
    return raw + raw // 1000 + 4096  # deflate's stored blocks and the PNG chunks around them


def check_box(box: Box, image_size: tuple[int, int]) -> str | None:
    """Why ``box`` is not usable in an image of ``image_size``, or None when it is."""
    x1, y1, x2, y2 = box
    width, height = image_size
    if x2 <= x1 or y2 <= y1:
        return f"empty box {box}"
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        return f"box {box} lies outside the {width}x{height} image"
    return None


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # Fixed settings and no metadata: the same crop always gives the same bytes (and content hash).
    image.save(out, format="PNG", compress_level=6, optimize=False)
    return out.getvalue()


def is_gray_content(image: Image.Image, tolerance: int = 8) -> bool:
    """An RGB image whose channels agree within ``tolerance`` everywhere is a gray image stored as RGB."""
    arr = np.asarray(image, dtype=np.int16)
    spread = arr.max(axis=2) - arr.min(axis=2)
    return int(spread.max()) <= tolerance


class SourceImages:
    """Decodes each source image once for all its crops (a small LRU: crops arrive grouped by source)."""

    def __init__(
        self, read: Callable[[str], bytes], limits: IngestSettings, *, expect_gray: bool = False, size: int = 4
    ) -> None:
        self._read = read
        self._limits = limits
        self._expect_gray = expect_gray
        self._size = size
        self._cache: OrderedDict[str, tuple[Image.Image, str] | Exception] = OrderedDict()

    def get(self, name: str) -> tuple[Image.Image, str]:
        """(decoded image, SHA-256 of its file) or the reason, raised as BadInput/BadImage."""
        if name in self._cache:
            self._cache.move_to_end(name)
            hit = self._cache[name]
        else:
            hit = self._decode(name)
            self._cache[name] = hit
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        if isinstance(hit, Exception):
            raise hit
        return hit

    def _decode(self, name: str) -> tuple[Image.Image, str] | Exception:
        try:
            data = self._read(name)
        except BadInput as err:
            return BadInput(f"source image {name}: {err}")
        try:
            with Image.open(io.BytesIO(data)) as opened:
                # The same limits as every other image, checked from the header before decoding.
                width, height = opened.size
                if width * height > self._limits.max_pixels:
                    return BadImage(
                        f"source image {name}: decompression bomb: {width}x{height} pixels, "
                        f"over the limit of {self._limits.max_pixels:,}"
                    )
                if opened.mode not in self._limits.allowed_modes:
                    return BadImage(
                        f"source image {name}: unsupported mode {opened.mode} "
                        f"(accepted: {', '.join(self._limits.allowed_modes)})"
                    )
                opened.load()
                image = opened.copy()
        except Exception as err:
            return BadImage(f"source image {name} cannot be decoded: {err}")
        if self._expect_gray and image.mode == "RGB":
            if not is_gray_content(image):
                return BadImage(
                    f"source image {name} has colour drawn into it (e.g. annotation boxes burned in); "
                    "not a clean gray AOI scan"
                )
            image = image.convert("L")  # gray content stored as RGB: keep one channel
        return image, sha256_of(data)

    def cut(self, candidate, name: str, box, crop_size: int, margin: int) -> bytes:
        """PNG bytes of the crop window around ``box`` (float edges widen outwards) in source ``name``.

        Records the source's SHA-256 on ``candidate``; raises BadInput for a box outside the image.
        """
        image, digest = self.get(name)
        box = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
        problem = check_box(box, image.size)
        if problem:
            raise BadInput(problem)
        candidate.parent_sha256 = digest
        return png_bytes(image.crop(window(box, image.size, crop_size, margin)))
