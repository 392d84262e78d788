"""Helpers for the workbench tests: a logged-in client per role, a catalog filled with generated images."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import insert
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Image, ImageSource, ImageStatus, IngestBatch, UserRole, table_of
from aoi.settings import Settings
from aoi.store import ImageStore

PASSWORD = "correct horse battery"
LABELS = ("Short", "Spur", "Open", "Mouse_bite", "Copper", "Pin_hole")
MACHINES = ("AOI-1", "AOI-2", "VRS-1")
PARTS = ("P-100", "P-200")
START = datetime(2026, 1, 1, tzinfo=UTC)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a rendered page."""
    match = _TOKEN.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def user_of(settings: Settings, role: UserRole | str, name: str | None = None) -> str:
    """An account with ``role`` (made once, password PASSWORD); returns its name."""
    from workbench.auth import add_user, find_user

    name = name or f"{UserRole(role).value}1"
    with db.session(settings.catalog_url) as s:
        if find_user(s, name) is None:
            add_user(s, name, role, PASSWORD)
    return name


def logged_in(client: TestClient, role: UserRole | str, name: str | None = None) -> TestClient:
    """``client`` logged in as a user with ``role`` (made when missing, in the client's app's catalog)."""
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    name = user_of(settings, role, name)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return client


def token(client: TestClient, page: str = "/gallery") -> str:
    """The CSRF token of ``client``'s session, read from a page."""
    return csrf_of(client.get(page).text)


def png(seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    out = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(out, format="PNG")
    return out.getvalue()


def board(seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> bytes:
    """A small picture like an AOI crop (green laminate, copper traces, a dark defect spot), unique per seed and
    smooth enough that screenshots of a gallery of them stay small."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    w, h = size
    picture = PILImage.new("RGB", size, (28, 92, 52))
    draw = ImageDraw.Draw(picture)
    for _ in range(3):
        if rng.random() < 0.5:
            y = int(rng.integers(0, h))
            draw.line([(0, y), (w, y)], fill=(196, 150, 72), width=max(2, h // 8))
        else:
            x = int(rng.integers(0, w))
            draw.line([(x, 0), (x, h)], fill=(196, 150, 72), width=max(2, w // 8))
    cx, cy, r = int(rng.integers(4, w - 4)), int(rng.integers(4, h - 4)), max(2, min(w, h) // 8)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(40, 30, 24))
    picture.putpixel((0, 0), (seed % 256, (seed // 256) % 256, (seed // 65536) % 256))  # unique bytes per seed
    out = io.BytesIO()
    (picture.convert("L") if mode == "L" else picture).save(out, format="PNG")
    return out.getvalue()


def fill_catalog(
    settings: Settings,
    n: int,
    *,
    with_bytes: int = 0,
    chunk: int = 5000,
    seed: int = 0,
) -> list[int]:
    """``n`` generated image rows spread over sources, labels, statuses, machines, parts, two batches, dates
    and sizes (deterministic from the row number), the first ``with_bytes`` with real PNG bytes in the store.
    Returns their ids in insertion order. Row ``k``:

    - source: gray when k % 2 == 0, else color; label: LABELS[k % 6]; machine MACHINES[k % 3]; part PARTS[k % 2]
    - status: excluded when k % 10 == 7 (reason "tone out of spec"), deleted when k % 10 == 9, else labeled
    - batch: the first or the second (k >= n // 2); captured START + k hours; width 30 + k % 50, height 40
    - file name ``img_<seed>_<k>.png``
    """
    store = ImageStore(settings.store_dir, fsync=False)
    with db.session(settings.catalog_url) as s:
        batches = []
        for b in range(2):
            batch = IngestBatch(key=f"gen-{seed}-{b}", format="folder", input_path=f"generated/{b}", status="succeeded")
            s.add(batch)
            s.commit()
            batches.append(db.saved_id(batch))
        table = table_of(Image)
        rows: list[dict] = []

        def flush() -> None:
            if rows:
                s.execute(insert(table), rows)
                rows.clear()

        for k in range(n):
            width, height = 30 + k % 50, 40
            if k < with_bytes:
                data = board(seed * 1_000_003 + k, (width, height))
                sha = store.put(data)
                byte_size = len(data)
            else:
                sha = hashlib.sha256(f"gen-{seed}-{k}".encode()).hexdigest()
                byte_size = width * height
            status = {7: ImageStatus.excluded, 9: ImageStatus.deleted}.get(k % 10, ImageStatus.labeled)
            rows.append(
                {
                    "sha256": sha,
                    "file_name": f"img_{seed}_{k}.png",
                    "origin": f"generated/img_{seed}_{k}.png",
                    "source": (ImageSource.gray if k % 2 == 0 else ImageSource.color).value,
                    "label": LABELS[k % len(LABELS)],
                    "status": status.value,
                    "status_reason": "tone out of spec" if status == ImageStatus.excluded else None,
                    "width": width,
                    "height": height,
                    "mode": "RGB",
                    "format": "PNG",
                    "byte_size": byte_size,
                    "captured_at": START + timedelta(hours=k),
                    "ingested_at": START + timedelta(hours=k, minutes=5),
                    "machine_id": MACHINES[k % len(MACHINES)],
                    "part_no": PARTS[k % len(PARTS)],
                    "batch_id": batches[0] if k < n // 2 else batches[1],
                    "bytes_per_pixel": 1.0,
                    "compressed": False,
                    "brightness": 100.0 + k % 50,
                    "mean_r": 100.0,
                    "mean_g": 100.0,
                    "mean_b": 100.0,
                    "r_minus_g": 0.0,
                    "r_minus_b": 0.0,
                    "g_minus_b": 0.0,
                    "b_diff": 0.0,
                    "sharpness": 50.0,
                    "smear": 0.1,
                }
            )
            if len(rows) >= chunk:
                flush()
        flush()
        s.commit()
        ids = s.exec(
            select(Image.id).where(col(Image.origin).startswith(f"generated/img_{seed}_")).order_by(col(Image.id))
        ).all()
    return [int(i) for i in ids if i is not None]


def screenshot(page, name: str) -> Path:
    """Save the page as docs/screenshots/<name>.png (what the README shows)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
