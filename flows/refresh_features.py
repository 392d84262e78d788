"""Features flow: rebuild the sources from the catalog -> register the definitions -> load the online store."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from aoi.settings import get_settings
from features import calibration, store, tone_stats

tone_source = task(name="machine-tone-stats", cache_policy=NO_CACHE)(tone_stats.write_source)
calibration_source = task(name="machine-calibration", cache_policy=NO_CACHE)(calibration.write_source)
apply = task(name="feast-apply", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(store.apply)
materialize = task(name="materialize", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(store.materialize)


@flow(name="features", log_prints=True)
def features() -> dict:
    """Camera parameters come from `aoi machines import`; this flow refreshes what the catalog determines: tone
    statistics from every machine's images, colour calibration from its reference samples."""
    settings = get_settings()
    tone = tone_source(settings, settings.features.tone_window_days)
    calibrated = calibration_source(settings)
    registered = apply(settings)
    online = materialize(settings, store.materialized_views(settings))
    return {"tone_stats": tone, "calibration": calibrated, "registered": registered, "online": online}
