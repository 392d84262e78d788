"""Demo flow: the system's main job end to end on the public data sets. Each stage an issue adds joins here."""

from __future__ import annotations

from prefect import flow

from aoi.datasets import SETS
from aoi.settings import get_settings
from flows.ingest import ingest
from flows.validate import validate
from validation.steps import Scope, derive_spec

COLOR_SPEC = "pku-color-tone"


@flow(name="demo", log_prints=True)
def demo(inputs: dict[str, str], progress: bool = True) -> dict:
    """``inputs``: data set name -> folder. Ingest every set; derive a colour tone spec from the PKU batch
    (mean ± 1.5σ, as the team did) and validate the batch against it."""
    ingested = {}
    for name, path in inputs.items():
        spec = SETS[name]
        ingested[name] = ingest(path=path, format=spec.format, source=spec.source, progress=progress)
    color_batch = Scope(batch_id=ingested["pku-pcb-roi"]["batch_id"])
    color_spec, _ = derive_spec(get_settings(), COLOR_SPEC, color_batch, 1.5, False)
    validated = validate(scope=str(color_batch), spec=color_spec.key)
    return {"ingest": ingested, "spec": color_spec.key, "validation": validated}
