"""Validate flow: spec -> checkpoint -> exclusions -> report (Data Docs and tone pictures)."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from aoi.settings import get_settings
from flows.tasks import step
from validation import records, steps

load_spec = step(steps.load_spec, "load-spec")
load_metrics = step(steps.metrics_frame, "load-metrics", retries=2)
start_run = step(steps.start_run, "start-run")
checkpoint = step(steps.check, "gx-checkpoint")
exclude = step(steps.exclude, "exclude-failures", retries=2)
pictures = step(steps.pictures, "tone-pictures")
finish_run = step(steps.finish_run, "finish-run")


@flow(name="validate", log_prints=True)
def validate(scope: str, spec: str) -> steps.ValidationResult:
    """``scope``: batch:ID, dataset:NAME or source:gray|color; ``spec``: NAME or NAME@VERSION."""
    settings = get_settings()
    spec_id, spec_obj = load_spec(settings, spec)
    frame = records.applicable(spec_obj, load_metrics(settings, records.Scope.parse(scope)))
    run_id = start_run(settings, spec_id, records.Scope.parse(scope), str(flow_run.id) if flow_run.id else None)
    verdict = checkpoint(settings, spec_obj, frame)
    exclude(settings, run_id, spec_obj, verdict)
    summary = steps.ValidationResult(
        **finish_run(settings, run_id, verdict, pictures(settings, run_id, spec_obj, frame))
    )
    create_markdown_artifact(
        key=f"validation-run-{run_id}",
        markdown=records.report_markdown(spec_obj, summary.as_dict()),
        description=f"validation of {scope} against {spec_obj.key}",
    )
    return summary
