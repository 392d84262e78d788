"""Helpers the data set tests share."""

from __future__ import annotations

from aoi.image_metrics import measure
from aoi.store import sha256_of
from ingest import records
from ingest.candidate import Candidate
from ingest.pipeline import Measured
from tests.helpers import image_bytes


def add_images(url: str, n_groups: int, *, source="gray", seed=0, name="img") -> int:
    """n_groups source images with 3 crops each (PASS, OPEN, SHORT); returns the batch id."""
    batch = records.open_batch(url, "folder", f"/in/{seed}", {"source": source})
    items = []
    for g in range(n_groups):
        for k, label in enumerate(("PASS", "OPEN", "SHORT")):
            data = image_bytes(size=(8, 8), seed=seed * 100_000 + g * 3 + k)
            c = Candidate(
                file=f"{name}_{g:03d}_{k}.png", origin=f"/in/{seed}/{g}/{k}", label=label, group_key=f"src:{seed}:{g}"
            )
            items.append(Measured(c, data, sha256_of(data), measure(data)))
    records.record_chunk(url, batch, items, [], source)
    records.close_batch(url, batch, {})
    return batch
