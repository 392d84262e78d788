"""Build-dataset flow: validate the source against the spec (when given), then freeze the version."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from aoi.settings import get_settings
from datasets import steps, versions
from flows.tasks import step
from flows.validate import validate


def _transient(task, task_run, state) -> bool:
    """Retry a failed freeze only for what may pass next time (a locked catalog), never for a refused request."""
    return not isinstance(state.result(raise_on_failure=False), steps.DatasetError)


freeze = step(steps.freeze, "freeze-version", retries=2, retry_condition_fn=_transient)


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
    allow_class_loss: bool = False,
) -> steps.BuiltVersion:
    settings = get_settings()
    validation = validate(scope=f"source:{source}", spec=spec) if spec else None
    try:
        version = freeze(
            settings.catalog_url,
            name,
            source=source,
            spec_key=validation.spec if validation else None,
            per_class=per_class,
            split=split,
            group_by=group_by,
            seed=seed,
            parent=parent,
            max_class_loss=settings.datasets.max_class_loss,
            allow_class_loss=allow_class_loss,
            min_label_images=settings.ingest.min_label_images,
        )
    except versions.ClassLossError as err:
        if validation and validation.pictures:  # where a person sees why: the run's tone pictures per label
            folder = Path(validation.pictures[0]).parent
            raise versions.ClassLossError(f"{err} (tone pictures: {folder})") from None
        raise
    for warning in version["warnings"]:
        print(f"warning: {warning}")
    return steps.BuiltVersion(**version, validation=validation.as_dict() if validation else None)
