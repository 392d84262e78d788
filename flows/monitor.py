"""Monitor flow: per kind with a production model: reference (what the line sends) -> prediction-log window ->
Evidently, overall, per machine and per part number -> policy (one retraining per drift episode) -> the retrain
deployment -> the check in the catalog."""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from aoi.settings import get_settings
from monitoring import check, frames, policy

load_reference = task(name="reference", cache_policy=NO_CACHE)(frames.reference)
load_window = task(name="prediction-log-window", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(
    check.load_window
)
compare = task(name="evidently-drift", cache_policy=NO_CACHE)(check.compare_scopes)
decide = task(name="drift-policy", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(policy.decide)
trigger = task(name="trigger-retraining", cache_policy=NO_CACHE)(check.request_retraining)
record = task(name="record-check", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(check.record)


@flow(name="monitor", log_prints=True)
def monitor(
    kind: str | None = None,
    window: str | None = None,
    since: str | None = None,
    until: str | None = None,
    trigger_retraining: bool = True,
) -> dict:
    """``window``: e.g. 24h (default the settings' window_hours) up to ``until`` (default now); ``since``: an ISO
    start time instead."""
    settings = get_settings()
    span = check.window_of(settings, window, since, until)
    run_id = str(flow_run.id) if flow_run.id else None
    results = {}
    for name, version in check.kinds_to_check(settings, kind).items():
        reference = load_reference(settings, version)
        current, calibrated = load_window(settings, name, version, span)
        scopes = compare(settings, name, reference, current)
        drift = check.verdict_of(scopes)
        decision = decide(
            settings, name, drift, check.drifted_machines(scopes), trigger_retraining, check.retraining_ended
        )
        retraining = trigger(settings, name, decision.episode_id, check.reasons(scopes)) if decision.trigger else None
        check_id = record(settings, name, version, span, reference, scopes, drift, decision, run_id)
        results[name] = check.summarise(
            name, version, span, reference, calibrated, scopes, drift, decision, retraining, check_id
        )
        create_markdown_artifact(
            key=f"drift-{name}",
            markdown=check.markdown(results[name]),
            description=f"drift check of the {name} model's answers",
        )
        print(f"{name}: {decision.text}")
    return check.combine(results)
