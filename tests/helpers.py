"""Small generated data for unit tests: images, a bad-file corpus, DeepPCB-like and annotated archives."""

from __future__ import annotations

import io
import json
import os
import socket
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from aoi.catalog import db
from aoi.settings import Settings, get_settings


def image_bytes(size=(32, 32), mode="RGB", fmt="PNG", seed=0, quality=90, color=None) -> bytes:
    """A noisy (so unique per seed) image, or a flat ``color`` one."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "CMYK": 4, "RGBA": 4}[mode]
    if color is not None:
        arr = np.broadcast_to(np.array(color, dtype=np.uint8), (size[1], size[0], channels)).copy()
    else:
        arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    out = io.BytesIO()
    kwargs = {"quality": quality} if fmt == "JPEG" else {}
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def class_folder(root: Path, per_class: dict[str, int], seed: int = 0, fmt: str = "PNG", board: str = "01") -> Path:
    """``root/<Class>/<board>_<class>_<k>_roi_<j>.png``: the PKU layout, unique images."""
    n = seed * 10_000
    for label, count in per_class.items():
        for k in range(count):
            n += 1
            ext = "jpg" if fmt == "JPEG" else "png"
            name = f"{board}_{label.lower()}_{k // 3:02d}_roi_{k % 3}.{ext}"
            write(root / label / name, image_bytes(seed=n, fmt=fmt))
    return root


def bad_corpus(root: Path, max_pixels: int) -> dict[str, str]:
    """A folder of bad files beside good ones; returns {relative path: word expected in the reason}."""
    expected = {}
    good = image_bytes(seed=1)
    write(root / "Spur" / "good_1.png", good)
    write(root / "Spur" / "good_2.jpg", image_bytes(seed=2, fmt="JPEG"))
    write(root / "Spur" / "same_as_good_1.png", good)  # a duplicate, not an error
    write(root / "Spur" / "empty.jpg", b"")
    expected["Spur/empty.jpg"] = "empty"
    jpeg = image_bytes(size=(64, 64), seed=3, fmt="JPEG")
    write(root / "Spur" / "truncated.jpg", jpeg[: len(jpeg) // 2])
    expected["Spur/truncated.jpg"] = "truncated"
    write(root / "Spur" / "notes.jpg", b"this is a text file, not an image\n" * 10)
    expected["Spur/notes.jpg"] = "not an image"
    side = int(max_pixels**0.5) + 100
    write(root / "Spur" / "bomb.png", image_bytes(size=(side, side), mode="L", color=(0,)))
    expected["Spur/bomb.png"] = "decompression bomb"
    write(root / "Spur" / "cmyk.jpg", image_bytes(mode="CMYK", fmt="JPEG", seed=4))
    expected["Spur/cmyk.jpg"] = "unsupported mode"
    write(root / "Alien_defect" / "x.png", image_bytes(seed=5))
    expected["Alien_defect/x.png"] = "not in the label mapping"
    os.symlink(root / "nowhere.png", root / "Spur" / "dangling.png")
    expected["Spur/dangling.png"] = "symbolic link"
    os.mkfifo(root / "Spur" / "pipe.png")
    expected["Spur/pipe.png"] = "not a regular file"
    return expected


def zip_of(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def zip_bomb(path: Path, megabytes: int = 64) -> Path:
    return zip_of(path, {"bomb.png": b"\0" * (megabytes * 1024 * 1024)})


def board(size=(200, 200), seed=0) -> np.ndarray:
    """A gray 'board': dark background with bright traces, unique per seed."""
    rng = np.random.default_rng(seed)
    arr = np.full((size[1], size[0]), 30, dtype=np.uint8)
    for _ in range(12):
        y = int(rng.integers(0, size[1] - 6))
        arr[y : y + 4, :] = 220
        x = int(rng.integers(0, size[0] - 6))
        arr[:, x : x + 4] = 220
    arr += rng.integers(0, 10, arr.shape, dtype=np.uint8)
    return arr


def encode(arr: np.ndarray, fmt="JPEG", mode=None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr, mode).save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def mini_deeppcb(root: Path) -> dict:
    """A DeepPCB-shaped folder: 3 pairs; pair 2 has colour drawn in; one bad line; one box outside the image."""
    group = root / "PCBData" / "group10000"
    boxes = {
        "10000000": ["10 10 40 40 1", "100 100 130 120 3"],
        "10000001": ["20 20 50 60 6", "150 150 260 190 2", "not a box line"],
        "10000002": ["30 30 60 60 4"],
    }
    for pair, lines in boxes.items():
        test = board(seed=int(pair))
        temp = board(seed=int(pair))
        for line in lines[:2]:  # a bright "defect" inside each box, absent from the template
            x1, y1, x2, y2 = (int(v) for v in line.split()[:4])
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            test[cy - 3 : cy + 3, cx - 3 : cx + 3] = 255
        if pair == "10000002":
            rgb = np.stack([test] * 3, axis=2)
            rgb[0:5, :, 0] = 255  # a red annotation line burned into the scan
            rgb[0:5, :, 1:] = 0
            write(group / "10000" / f"{pair}_test.jpg", encode(rgb, mode="RGB"))
        else:
            write(group / "10000" / f"{pair}_test.jpg", encode(test))
        write(group / "10000" / f"{pair}_temp.jpg", encode(temp))
        write(group / "10000_not" / f"{pair}.txt", ("\n".join(lines) + "\n").encode())
    # The official split lists: pair 10000001 is the test set.
    write(root / "PCBData" / "test.txt", b"group10000/10000/10000001.jpg group10000/10000_not/10000001.txt\n")
    write(root / "PCBData" / "trainval.txt", b"group10000/10000/10000000.jpg group10000/10000_not/10000000.txt\n")
    return boxes


def labelme_zip(path: Path, embed: bool = False, extra: dict[str, bytes] | None = None) -> Path:
    arr = board(seed=42)
    png = encode(arr, fmt="PNG")
    doc = {
        "version": "5.4.1",
        "imagePath": "../boards/b1.png",
        "imageData": None,
        "shapes": [
            {"label": "Spur", "points": [[10, 10], [40, 30]], "shape_type": "rectangle"},
            {"label": "short", "points": [[100, 100], [120, 90], [130, 140]], "shape_type": "polygon"},
        ],
    }
    members = {"ann/b1.json": json.dumps(doc).encode()}
    if embed:
        import base64

        doc["imageData"] = base64.b64encode(png).decode()
        members["ann/b1.json"] = json.dumps(doc).encode()
    else:
        members["boards/b1.png"] = png
    members.update(extra or {})
    return zip_of(path, members)


def labelimg_zip(path: Path) -> Path:
    png = encode(board(seed=7), fmt="PNG")
    xml = b"""<annotation><folder>imgs</folder><filename>b7.png</filename>
      <size><width>200</width><height>200</height><depth>1</depth></size>
      <object><name>Open_circuit</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>35</xmax><ymax>25</ymax></bndbox></object>
      <object><name>Mouse_bite</name><bndbox><xmin>150.5</xmin><ymin>150</ymin><xmax>170</xmax><ymax>199</ymax></bndbox></object>
    </annotation>"""
    return zip_of(path, {"imgs/b7.png": png, "imgs/b7.xml": xml})


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


REPO_ROOT = Path(__file__).resolve().parent.parent


def forget_settings() -> None:
    get_settings.cache_clear()
    db.reset_engines()


def fresh_settings() -> Settings:
    forget_settings()
    return get_settings()
