"""Helpers the training tests share."""

from __future__ import annotations

import numpy as np

from aoi.store import ImageStore
from tests.helpers import encode


def tiny_dataset(tmp_path, n=40):
    """Two 'classes' a small network learns in a few epochs: a bright square top-left or bottom-right."""
    store = ImageStore(tmp_path / "store", fsync=False)
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        arr = rng.integers(0, 40, (32, 32), dtype=np.uint8)
        label = ("PASS", "OPEN")[i % 2]
        if label == "PASS":
            arr[2:12, 2:12] = 230
        else:
            arr[20:30, 20:30] = 230
        items.append((store.put(encode(arr, fmt="PNG")), label))
    return store, items
