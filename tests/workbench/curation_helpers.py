"""Helpers the curation tests share: accounts without the login machinery, a catalog of generated crops."""

from __future__ import annotations

import numpy as np
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import AppUser, Image
from aoi.image_metrics import measure
from aoi.settings import Settings
from aoi.store import ImageStore
from ingest import records
from ingest.candidate import Candidate
from ingest.pipeline import Measured
from tests.datasets.helpers import add_images
from tests.helpers import encode


def account(url: str, name: str, role: str, disabled: bool = False) -> None:
    """A workbench account row (the password hash is never checked by curation: `--by` names the account)."""
    with db.session(url) as s:
        s.add(AppUser(name=name, role=role, password_hash="not-a-login", disabled=disabled))
        s.commit()


def crops(url: str, n_groups: int = 4, **options) -> dict[str, list[int]]:
    """``add_images``' crops (PASS, OPEN, SHORT per group); returns label -> image ids."""
    add_images(url, n_groups, **options)
    with db.session(url) as s:
        rows = s.exec(select(Image.id, Image.label).order_by(col(Image.id))).all()
    out: dict[str, list[int]] = {}
    for image_id, label in rows:
        out.setdefault(str(label), []).append(int(image_id or 0))
    return out


def stored_images(settings: Settings, per_label: dict[str, int], source: str = "gray", size: int = 32) -> list[int]:
    """Labelled images with their bytes in the store (what training reads): ``per_label[label]`` each, every one
    its own group; a bright square whose place depends on the label, so that a small network can tell them apart.
    Returns their ids."""
    store = ImageStore(settings.store_dir, fsync=False)
    url = settings.catalog_url
    batch = records.open_batch(url, "folder", f"/generated/{source}", {"source": source})
    items = []
    rng = np.random.default_rng(7)
    for index, (label, n) in enumerate(per_label.items()):
        for k in range(n):
            arr = rng.integers(0, 40, (size, size), dtype=np.uint8)
            x, y = (index * 5) % (size - 8), (index * 3 + k) % (size - 8)
            arr[y : y + 8, x : x + 8] = 230
            data = encode(arr, fmt="PNG")
            sha = store.put(data)
            candidate = Candidate(file=f"{label}_{k}.png", origin=f"/generated/{label}/{k}", label=label)
            items.append(Measured(candidate, data, sha, measure(data)))
    records.record_chunk(url, batch, items, [], source)
    records.close_batch(url, batch, {})
    with db.session(url) as s:
        rows = s.exec(select(Image.id).where(Image.batch_id == batch).order_by(col(Image.id))).all()
    return [int(i) for i in rows if i is not None]
