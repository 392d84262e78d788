"""Build-dataset flow: validate the source against the spec (when given), then freeze the version."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from aoi.dataset import versions
from aoi.settings import get_settings
from flows.validate import validate

freeze = task(name="freeze-version", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(versions.build)


@flow(name="build-dataset", log_prints=True)
def build_dataset(
    name: str,
    source: str,
    spec: str | None = None,
    per_class: int | None = None,
    split: str = "8:1:1",
    group_by: str = "source_image",
    seed: int = 0,
    parent: str | None = None,
) -> dict:
    settings = get_settings()
    validation = validate(scope=f"source:{source}", spec=spec) if spec else None
    version = freeze(settings.catalog_url, name, source=source, spec_key=validation and validation["spec"],
                     per_class=per_class, split=split, group_by=group_by, seed=seed, parent=parent)  # fmt: skip
    return {**version, "validation": validation}
