"""Validate flow: spec -> checkpoint -> exclusions -> report (Data Docs and tone pictures)."""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from aoi.settings import get_settings
from validation import steps

load_spec = task(name="load-spec", cache_policy=NO_CACHE)(steps.load_spec)
load_metrics = task(name="load-metrics", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(
    steps.metrics_frame
)
start_run = task(name="start-run", cache_policy=NO_CACHE)(steps.start_run)
checkpoint = task(name="gx-checkpoint", cache_policy=NO_CACHE)(steps.check)
exclude = task(name="exclude-failures", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(steps.exclude)
pictures = task(name="tone-pictures", cache_policy=NO_CACHE)(steps.pictures)
finish_run = task(name="finish-run", cache_policy=NO_CACHE)(steps.finish_run)


@flow(name="validate", log_prints=True)
def validate(scope: str, spec: str) -> dict:
    """``scope``: batch:ID, dataset:NAME or source:gray|color; ``spec``: NAME or NAME@VERSION."""
    settings = get_settings()
    spec_id, spec_obj = load_spec(settings, spec)
    frame = steps.applicable(spec_obj, load_metrics(settings, steps.Scope.parse(scope)))
    run_id = start_run(settings, spec_id, steps.Scope.parse(scope), str(flow_run.id) if flow_run.id else None)
    verdict = checkpoint(settings, spec_obj, frame)
    exclude(settings, run_id, spec_obj, verdict)
    summary = finish_run(settings, run_id, verdict, pictures(settings, run_id, spec_obj, frame))
    create_markdown_artifact(
        key=f"validation-run-{run_id}",
        markdown=steps.report_markdown(spec_obj, summary),
        description=f"validation of {scope} against {spec_obj.key}",
    )
    return summary
