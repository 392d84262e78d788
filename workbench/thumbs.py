"""Thumbnails: made once per image content on first request, kept in the image store under ``thumbs/``.

``<store>/thumbs/ab/<sha256>.jpg``, a JPEG whose longer side is THUMB_SIDE pixels (never enlarged). The store's
own listing skips the folder (its name is not a two-letter fan-out), so store checks do not count thumbnails as
orphans. A write goes to a temporary name first and is renamed into place: two requests making the same thumbnail
at once both succeed and a reader never sees half a file.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from pathlib import Path

from PIL import Image as PILImage

from aoi.settings import Settings
from aoi.store import ImageStore

THUMB_SIDE = 128
THUMB_QUALITY = 85
_made = 0  # thumbnails made by this process (the tests read it: a cached one is not made again)
_lock = threading.Lock()


def made() -> int:
    return _made


def thumb_path(settings: Settings, sha256: str) -> Path:
    ImageStore(settings.store_dir).path_for(sha256)  # refuses anything but a hex digest
    return settings.store_dir / "thumbs" / sha256[:2] / f"{sha256}.jpg"


def make_thumbnail(data: bytes, side: int = THUMB_SIDE) -> bytes:
    """A JPEG of ``data``'s picture scaled to fit ``side`` x ``side`` (gray stays gray)."""
    with PILImage.open(io.BytesIO(data)) as picture:
        picture.draft("RGB" if picture.mode not in ("L", "1") else "L", (side, side))  # JPEG: decode at reduced size
        picture.thumbnail((side, side), PILImage.Resampling.LANCZOS)
        converted = picture.convert("L" if picture.mode in ("L", "1", "I", "I;16", "F") else "RGB")
    out = io.BytesIO()
    converted.save(out, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return out.getvalue()


def thumbnail(settings: Settings, sha256: str) -> Path | None:
    """The thumbnail file of an image content, made now when missing; None when the store lacks the image."""
    global _made
    path = thumb_path(settings, sha256)
    if path.is_file():
        return path
    store = ImageStore(settings.store_dir)
    if not store.has(sha256):
        return None
    data = make_thumbnail(store.get(sha256))
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    temp.write_bytes(data)
    os.replace(temp, path)
    with _lock:
        _made += 1
    return path


PLACEHOLDER_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">'
    '<rect width="128" height="128" fill="#333"/>'
    '<text x="64" y="68" fill="#bbb" font-family="sans-serif" font-size="12" text-anchor="middle">{text}</text></svg>'
)
