"""Monitor flow: per kind with a production model: reference (what the line sends) -> prediction-log window ->
Evidently, overall, per machine and per part number (saved in the Evidently workspace too) -> live accuracy of
confirmed answers -> policy (one retraining per drift episode) -> the retrain
deployment -> the check in the catalog."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from aoi.settings import get_settings
from flows.tasks import step
from monitoring import check, steps

load_reference = step(steps.reference, "reference")
load_window = step(steps.load_window, "prediction-log-window", retries=2)
compare = step(steps.compare_scopes, "evidently-drift")
live_accuracy = step(steps.live_accuracy, "live-accuracy", retries=2)
decide = step(steps.decide, "drift-policy", retries=2)
trigger = step(steps.request_retraining, "trigger-retraining")
record = step(steps.record, "record-check", retries=2)
prune_reports = step(steps.prune_reports, "report-retention")


@flow(name="monitor", log_prints=True)
def monitor(
    kind: str | None = None,
    window: str | None = None,
    since: str | None = None,
    until: str | None = None,
    trigger_retraining: bool = True,
) -> steps.MonitorResult:
    """``window``: e.g. 24h (default the settings' window_hours) up to ``until`` (default now); ``since``: an ISO
    start time instead."""
    settings = get_settings()
    span = check.window_of(settings, window, since, until)
    run_id = str(flow_run.id) if flow_run.id else None
    results = {}
    for name, version in check.kinds_to_check(settings, kind).items():
        reference = load_reference(settings, version)
        current, calibrated = load_window(settings, name, version, span)
        scopes = {
            **compare(settings, name, reference, current),
            "live_accuracy": live_accuracy(settings, name, version, span),
        }
        drift = check.verdict_of(scopes)
        decision = decide(
            settings, name, drift, check.drifted_machines(scopes), trigger_retraining, check.retraining_ended
        )
        retraining = trigger(settings, name, decision.episode_id, check.reasons(scopes)) if decision.trigger else None
        check_id = record(settings, name, version, span, reference, scopes, drift, decision, run_id)
        prune_reports(settings, name)
        results[name] = check.summarise(
            name, version, span, reference, calibrated, scopes, drift, decision, retraining, check_id
        )
        create_markdown_artifact(
            key=f"drift-{name}",
            markdown=check.markdown(results[name]),
            description=f"drift check of the {name} model's answers",
        )
        print(f"{name}: {decision.text}")
    return steps.MonitorResult(**check.combine(results))
