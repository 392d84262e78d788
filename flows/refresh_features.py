"""Features flow: rebuild the sources from the catalog -> register the definitions -> load the online store."""

from __future__ import annotations

from prefect import flow

from aoi.settings import get_settings
from features import steps
from features.store import materialized_views
from flows.tasks import step

tone_source = step(steps.tone_source, "machine-tone-stats")
calibration_source = step(steps.calibration_source, "machine-calibration")
apply = step(steps.apply, "feast-apply", retries=2)
materialize = step(steps.materialize, "materialize", retries=2)


@flow(name="features", log_prints=True)
def features() -> steps.FeaturesResult:
    """Camera parameters come from `aoi machines import`; this flow refreshes what the catalog determines: tone
    statistics from every machine's images, colour calibration from its reference samples."""
    settings = get_settings()
    tone = tone_source(settings, settings.features.tone_window_days)
    calibrated = calibration_source(settings)
    registered = apply(settings)
    online = materialize(settings, materialized_views(settings))
    return steps.FeaturesResult(tone_stats=tone, calibration=calibrated, registered=registered, online=online)
