"""Demo flow: the system's main job end to end on the public data sets. Each stage an issue adds joins here."""

from __future__ import annotations

from prefect import flow

from aoi.datasets import SETS
from flows.ingest import ingest


@flow(name="demo", log_prints=True)
def demo(inputs: dict[str, str], progress: bool = True) -> dict:
    """``inputs``: data set name -> folder. Stage 1: ingest every set."""
    results = {}
    for name, path in inputs.items():
        spec = SETS[name]
        results[name] = ingest(path=path, format=spec.format, source=spec.source, progress=progress)
    return results
