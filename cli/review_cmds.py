"""`aoi review`: the review queue from a terminal (list, label, skip) and the inbox batch its labels become."""

from __future__ import annotations

from typing import Any

import typer

from aoi.settings import get_settings
from cli.output import JSON_OPTION, emit, fail, table

review_app = typer.Typer(help="The review queue: kept answers waiting for a person's label.", no_args_is_help=True)

REQUEST_ID = typer.Argument(..., help="The answer's request id (as /classify returned it).")
BY = typer.Option(..., "--by", help="Who decides: an enabled workbench account (engineer or reviewer), recorded.")
KINDS = ("gray", "color")
LIST_COLUMNS = ["request_id", "kind", "label", "confidence", "upstream_code", "machine_id", "part_no"]


def _kind(kind: str | None, as_json: bool) -> str | None:
    if kind is not None and kind not in KINDS:
        fail(f"--kind must be gray or color, not {kind!r}", as_json, code=2)
    return kind


@review_app.command("list")
def list_queue(
    kind: str | None = typer.Option(None, "--kind", help="gray or color (default: both)."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="At most this many answers."),
    status: str = typer.Option("waiting", "--status", help="waiting, or skipped to come back to the skipped ones."),
    order: str | None = typer.Option(
        None, "--order", help="lowest_confidence, class_quota or oldest (default: AOI_WORKBENCH__REVIEW_ORDER)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The queue in its order: each answer with the model's top-3, upstream code, machine, part and model version."""
    from aoi.catalog import db
    from workbench import review_queue

    settings = get_settings()
    kind = _kind(kind, as_json)
    try:
        with db.session(settings.catalog_url) as s:
            answers = review_queue.queue(
                s, kind=kind, order=order or settings.workbench.review_order, limit=limit, status=status
            )
            result = {
                "order": order or settings.workbench.review_order,
                "status": status,
                "kind": kind,
                "waiting": review_queue.waiting_counts(s),
                "answers": [review_queue.as_dict(a) for a in answers],
            }
    except review_queue.ReviewError as err:
        fail(str(err), as_json, code=2)

    def render(r: dict) -> None:
        rows = [{**a, "confidence": f"{a['confidence']:.1%}"} for a in r["answers"]]
        waiting = ", ".join(f"{k} {n}" for k, n in r["waiting"].items()) or "none"
        table(rows, LIST_COLUMNS, title=f"Review queue ({r['status']}, {r['order']}); waiting: {waiting}")

    emit(result, as_json, render)


def _decide(request_id: str, label: str, by: str, as_json: bool) -> None:
    from aoi.catalog import db
    from aoi.labels import LabelMap
    from workbench import curation, review_queue

    settings = get_settings()
    try:
        with db.session(settings.catalog_url) as s:
            curation.curator(s, by)
            answer = review_queue.decide(s, request_id, label, by.strip(), LabelMap.load(settings.ingest.label_map))
            result: dict[str, Any] = review_queue.as_dict(answer)
    except (review_queue.ReviewError, curation.CurationError) as err:
        fail(str(err), as_json, code=2)

    def render(r: dict) -> None:
        truth = f" ({r['true_label']})" if r["true_label"] else ""
        typer.echo(f"request {r['request_id']}: {r['status']}{truth} by {r['decided_by']} at {r['decided_at']}")

    emit(result, as_json, render)


@review_app.command("label")
def label(
    request_id: str = REQUEST_ID,
    label: str = typer.Argument(
        ..., help="A fine class of the answer's kind, or NOT_DEFECT, BAD_IMAGE (quarantined) or SKIP."
    ),
    by: str = BY,
    as_json: bool = JSON_OPTION,
) -> None:
    """Give a kept answer its true class (also the line's confirmed truth for live accuracy)."""
    _decide(request_id, label, by, as_json)


@review_app.command("skip")
def skip(request_id: str = REQUEST_ID, by: str = BY, as_json: bool = JSON_OPTION) -> None:
    """Pass on a kept answer: it leaves the default queue (`aoi review list --status skipped` shows it)."""
    _decide(request_id, "SKIP", by, as_json)


@review_app.command("ingest")
def ingest(
    kind: str = typer.Option(..., "--kind", help="gray or color."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make the inbox batch of the answers labelled since the last one now (the retrain flow does it too)."""
    from ingest.line import LINE_FORMAT, confirmed_batch
    from ingest.steps import BatchResult

    kind = _kind(kind, as_json) or ""
    result = confirmed_batch(get_settings(), kind)
    if result is not None:
        data = result.as_dict()
    else:  # the same keys, nothing made
        data = dict.fromkeys(BatchResult.model_fields) | {
            "format": LINE_FORMAT,
            **dict.fromkeys(("discovered", "skipped", "added", "duplicates", "quarantined"), 0),
            "by_label": {},
            "batch_totals": {},
            "warnings": [],
        }

    def render(r: dict) -> None:
        if r["batch_id"] is None:
            typer.echo(f"no {kind} answers labelled since the last batch")
            return
        labels = ", ".join(f"{k} {n}" for k, n in r["by_label"].items()) or "none"
        typer.echo(
            f"batch {r['batch_id']}: {r['added']} labelled images ({labels}), {r['duplicates']} already catalogued, "
            f"{r['quarantined']} quarantined"
        )
        for warning in r["warnings"]:
            typer.echo(f"warning: {warning}")

    emit(data, as_json, render)
