"""Promote flow: candidate and production on every blind set -> tone robustness -> gate -> (passed) artifacts and a
pause for a person's approval in the Prefect UI -> production, or rejected. A failed gate never pauses."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from prefect import flow
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.runtime import flow_run

from aoi.settings import Settings, get_settings
from flows.tasks import step
from promotion import approval, steps

check_candidate = step(steps.check_candidate, "check-candidate")
evaluate_blind = step(steps.evaluate_blind, "evaluate-blind-sets")
tone_drop = step(steps.tone_drop, "tone-robustness")
judge = step(steps.judge, "gate", retries=2)
review_page = step(steps.review_page, "review-page")
open_approval = step(steps.open_approval, "open-approval")


def _worth_retrying(_task, _run, state) -> bool:
    """A refused decision (PromotionError: superseded, not waiting) is final; a database hiccup is retried."""
    return not isinstance(state.result(raise_on_failure=False), steps.PromotionError)


decide = step(steps.decide, "apply-decision", retries=2, retry_condition_fn=_worth_retrying)


def _key(*parts) -> str:  # artifact keys: lowercase letters, digits and dashes
    return "-".join(str(p) for p in parts).lower().replace("_", "-").replace(".", "-")


def _report_link(settings: Settings, report: Path) -> str:
    """A report under AOI_HOME's reports folder as the workbench serves it (``/reports/...``, over http, which the
    Prefect UI opens); any other file as a file:// link."""
    try:
        relative = report.resolve().relative_to(settings.reports_dir.resolve())
    except ValueError:
        return report.as_uri()
    return f"{settings.workbench.link_url}/reports/{quote(relative.as_posix())}"


@flow(name="promote", log_prints=True)
def promote(model_version: str, timeout_s: int | None = None) -> steps.PromotionResult:
    """Gate ``model_version`` on the blind sets and, if it passes, wait for a reviewer's decision."""
    settings = get_settings()
    run_id = str(flow_run.id) if flow_run.id else None
    check = check_candidate(settings, model_version)
    candidate = evaluate_blind(settings, model_version, check["blind_sets"])
    production = (
        evaluate_blind(settings, check["production"], check["blind_sets"], report=False)
        if check["production"]
        else None
    )
    verdict = judge(
        settings, check, candidate, production, tone_drop(settings, model_version, check["blind_sets"]), run_id
    )
    for warning in verdict["warnings"] or []:  # they never fail the gate; the reviewer sees them in the artifact
        print(f"warning: {warning['message']}")
    page = review_page(settings, check, verdict, candidate)
    workbench = f"{settings.workbench.link_url}/models/{quote(model_version)}"
    create_markdown_artifact(
        key=_key("gate", model_version),
        markdown=f"{page['verdict_markdown']}\n\n{page['comparison_markdown']}\n\n"
        f"[Review {model_version} in the workbench]({workbench}): confusion cells with their images, "
        f"threshold explorer, approve or reject.",
        description=f"gate verdict and blind-test comparison for {model_version}",
    )
    # Over http: the Prefect UI cannot open the file:// links below, the workbench page can be opened anywhere.
    create_link_artifact(
        key=_key("workbench", model_version),
        link=workbench,
        link_text=f"Workbench: {model_version} (evaluations, errors, approve or reject)",
    )
    for dataset, report in page["reports"].items():
        create_link_artifact(
            key=_key("report", model_version, dataset),
            link=_report_link(settings, Path(report)),
            link_text=f"HTML report: {model_version} on {dataset}",
        )
    if not verdict["passed"]:
        failed = [r["rule"] for r in verdict["rules"] if not r["passed"]]
        print(f"{model_version} failed its gate ({'; '.join(failed)}): no approval asked, stage stays candidate")
        return steps.PromotionResult(
            model_version=model_version, decision="gate failed", verdict=verdict, stage="candidate"
        )
    approval_id = open_approval(settings, verdict["verdict_id"], run_id)
    print(
        f"{model_version} passed its gate: waiting for a reviewer (Prefect UI: Resume on this run, the "
        f"workbench: {workbench}, or `aoi approve {run_id} [--reviewer NAME] [--reject]`)"
    )
    form = approval.wait_for_decision(timeout_s or settings.gate.approval_timeout_s, settings.gate.approval_poll_s)
    decided = decide(settings, approval_id, form.approve, form.reviewer, form.comment)
    return steps.PromotionResult(
        model_version=model_version,
        decision=decided["status"],
        verdict=verdict,
        stage=decided["stage"],
        approval=decided,
    )
