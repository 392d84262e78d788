"""Evaluation, comparison, robustness, promotion with approval, rollback and the stage history."""

from __future__ import annotations

import time

import typer
from rich.markup import escape

from aoi.settings import get_settings
from cli import names
from cli.choices import Kind, Split, value
from cli.output import JSON_OPTION, console, emit, fail, table


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def evaluate(
    model: str = typer.Argument(..., help="A model version (aoi models)."),
    dataset: str = typer.Option(..., help="A blind set, or a training dataset version (see --split)."),
    split: Split = typer.Option(None, help="A split of a training version (default test)."),
    threshold: float = typer.Option(
        None, min=0.0, max=1.0, help="Unknown filter threshold (default: the model's calibrated one)."
    ),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML report with the error gallery."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Accuracy, per-class precision/recall, confusion (fine, coarse, with Unknown), Unknown filter, per machine and
    per part, warnings; stored in the catalog."""
    from evaluation.evaluate import EvaluationError
    from evaluation.evaluate import evaluate as run
    from training.registry import RegistryError

    try:
        result = run(get_settings(), model, dataset, value(split), threshold, report)
    except (EvaluationError, RegistryError) as err:
        fail(str(err), as_json, code=2)

    def render(r: dict) -> None:
        unknown = r["confusion_unknown"]
        rows = [
            {
                "class": k,
                **v,
                "precision": _pct(v["precision"]),
                "recall": _pct(v["recall"]),
                "recall with Unknown": _pct(unknown["recall"][k]),
                "Unknown": _pct(unknown["unknown_rate"][k]),
            }
            for k, v in r["per_class"].items()
        ]
        table(
            rows,
            ["class", "precision", "recall", "support", "recall with Unknown", "Unknown"],
            title=f"{model} on {dataset} ({r['split']})",
        )
        for key, name in (("per_machine", "machine_id"), ("per_part", "part_no")):
            if any(g[name] is not None for g in r[key]):  # only where the catalog knows machines or parts
                table(
                    [
                        {
                            **g,
                            name: g[name] or "(not recorded)",
                            "accuracy": _pct(g["accuracy"]),
                            "accepted accuracy": _pct(g["accepted_accuracy"]),
                            "Unknown rate": _pct(g["unknown_rate"]),
                        }
                        for g in r[key]
                    ],
                    [name, "images", "accuracy", "accepted accuracy", "Unknown rate"],
                    title=f"per {name}",
                )

        for warning in r["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {escape(warning['message'])}")
        console.print(
            f"accuracy {_pct(r['accuracy'])} (coarse {_pct(r['coarse_accuracy'])}); with the Unknown filter "
            f"at {r['threshold']:.4f}: {_pct(r['accepted_accuracy'])} on accepted images, Unknown rate "
            f"{_pct(r['unknown_rate'])}; report {r['report']}"
        )

    emit(result, as_json, render)


def calibrate(
    model: str = typer.Argument(...),
    target_accuracy: float = typer.Option(
        None, "--target-accuracy", min=0.0, max=1.0, help="Accepted accuracy to reach, least Unknown."
    ),
    max_unknown: float = typer.Option(
        None, "--max-unknown", min=0.0, max=1.0, help="Unknown rate allowed, best accepted accuracy."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit the model's Unknown threshold on the valid split of its training dataset (never on a blind set)."""
    from evaluation.evaluate import EvaluationError
    from evaluation.evaluate import calibrate as run
    from training.registry import RegistryError

    try:
        result = run(get_settings(), model, target_accuracy=target_accuracy, max_unknown_rate=max_unknown)
    except (EvaluationError, RegistryError) as err:
        fail(str(err), as_json, code=2)
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"{model}: threshold {r['threshold']:.4f} -> accepted accuracy {_pct(r['accepted_accuracy'])}, "
            f"Unknown rate "
            f"{_pct(r['unknown_rate'])} on {r['images']} valid images of {r['dataset']}"
        ),
    )


def compare(
    models: list[str] = typer.Argument(..., help="Model versions, one column each."),
    datasets: list[str] = typer.Option([], "--datasets", help="Blind sets (repeat the option for several)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the table as Markdown."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The comparison table: one column per model, blind sets last."""
    from evaluation.evaluate import EvaluationError
    from promotion.compare import compare as run
    from promotion.compare import markdown as to_markdown
    from training.registry import RegistryError

    try:
        result = run(get_settings(), models, datasets)
    except (EvaluationError, RegistryError) as err:
        fail(str(err), as_json, code=2)
    result["markdown"] = to_markdown(result)
    if markdown and not as_json:
        typer.echo(result["markdown"])
        return
    emit(result, as_json, lambda r: table(r["rows"], ["row", *r["columns"]], title="model comparison"))


def robustness(
    model: str = typer.Argument(...),
    dataset: str = typer.Option(..., help="A blind set, or a training dataset version (see --split)."),
    split: Split = typer.Option(None, help="A split of a training version (default test)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Accuracy with each channel scaled by 0.5/0.9/1.0/1.1/1.5 and re-encoded as PNG/JPEG 95/75/50."""
    from evaluation.evaluate import EvaluationError
    from evaluation.evaluate import robustness as run
    from training.registry import RegistryError

    try:
        result = run(get_settings(), model, dataset, value(split))
    except (EvaluationError, RegistryError) as err:
        fail(str(err), as_json, code=2)
    emit(result, as_json, render_robustness)


def render_robustness(r: dict) -> None:
    rows = [{"channel": c, **{f"×{f}": _pct(v) for f, v in row.items()}} for c, row in r["tone"].items()]
    table(
        rows,
        ["channel", *(f"×{f}" for f in next(iter(r["tone"].values())))],
        title=f"tone: accuracy of {r['model_version']} on {r['dataset']} with one channel scaled",
    )
    table(
        [{"images": k, "accuracy": _pct(v)} for k, v in r["compression"].items()],
        ["images", "accuracy"],
        title=f"compression (training data: {r['training_compression']})",
    )


def promote(
    model: str = typer.Argument(..., help="A candidate model version."),
    timeout: int = typer.Option(
        None, min=0, help="Seconds to wait for a reviewer (default AOI_GATE__APPROVAL_TIMEOUT_S)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the `promote` flow: blind tests, gate, then (if passed) wait for approval in the Prefect UI."""
    from evaluation.evaluate import EvaluationError
    from flows.prefect_server import PrefectUnavailable, ensure_server
    from promotion.stages import PromotionError
    from training.registry import RegistryError

    names.model_version(get_settings(), model, as_json, stage="candidate")
    try:
        ensure_server(get_settings())
        from flows.promote import promote as promote_flow

        result = promote_flow(model, timeout).as_dict()
    except (PromotionError, EvaluationError, RegistryError, PrefectUnavailable) as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 2))
    emit(result, as_json, lambda r: console.print(f"{model}: {r['decision']}; stage {r['stage']}"))


def approve(
    flow_run_id: str = typer.Argument(
        ..., help="The paused promote flow run (printed by `aoi promote`, or in the UI)."
    ),
    reviewer: str = typer.Option(
        None,
        help="Your name (default: your OS account): recorded beside the OS account "
        "this command runs as and the Prefect login.",
    ),
    reject: bool = typer.Option(False, "--reject", help="Reject instead of approve."),
    comment: str = typer.Option("", help="Why: recorded with the decision."),
    wait: float = typer.Option(120.0, min=0.0, help="Seconds to wait for the flow to record the decision."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer a paused promote run from the terminal, exactly as the Prefect UI's Resume form does."""
    from flows.prefect_server import PrefectUnavailable, ensure_server
    from promotion import stages

    settings = get_settings()
    if reviewer is not None and not reviewer.strip():
        fail("the decision was refused: the reviewer's name is empty", as_json, code=2)
    pending = stages.waiting_approval(settings, flow_run_id)
    if pending is None:
        fail(
            f"no approval is waiting on flow run {flow_run_id}: a model whose gate failed is never put up for "
            f"approval, and a decided run cannot be decided again",
            as_json,
            code=2,
        )
    try:
        ensure_server(settings)
    except PrefectUnavailable as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 2))
    from promotion import approval, stages

    try:
        approval.resume(flow_run_id, approve=not reject, reviewer=stages.claimed_by(reviewer), comment=comment)
    except approval.ApprovalError as err:
        fail(str(err), as_json, code=2)
    except Exception as err:  # the form's validation (e.g. an empty reviewer) is refused by Prefect
        fail(f"the decision was refused: {err}", as_json, code=2)
    deadline = time.monotonic() + wait
    result = stages.approval(settings, pending.id)
    while result["status"] == "waiting" and time.monotonic() < deadline:
        time.sleep(0.5)
        result = stages.approval(settings, pending.id)
    if result["status"] == "waiting":
        fail(
            f"the flow run took the decision but has not recorded it within {wait} s; see the Prefect UI",
            as_json,
            code=1,
            **result,
        )
    if result["status"] == "superseded":  # approved, but another production model came first: refused
        fail(result["comment"] or f"{result['model_version']}: superseded", as_json, code=2, **result)
    emit(
        result,
        as_json,
        lambda r: console.print(f"{r['model_version']}: {r['status']} by {r['reviewer']}; stage {r['stage']}"),
    )


def rollback(
    kind: Kind = typer.Argument(..., help="The kind of model to roll back."),
    by: str = typer.Option(None, help="Who rolls back (default: your OS account): recorded beside the OS account."),
    reason: str = typer.Option(..., help="Why: recorded."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Return production of KIND to the model it replaced; the current one becomes rolled_back."""
    from promotion.stages import PromotionError, claimed_by
    from promotion.stages import rollback as run

    if by is not None and not by.strip():
        fail("who rolls back: --by is empty", as_json, code=2)
    try:
        result = run(get_settings(), kind.value, claimed_by(by), reason)
    except PromotionError as err:
        fail(str(err), as_json, code=2)
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"{kind}: production is {r['production']} again ({r['rolled_back']} rolled back by {r['by']})"
        ),
    )


def stages(
    kind: Kind = typer.Option(None, help="Only this kind of model."),
    model: str = typer.Option(None, help="One model version."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every stage change of the model versions: when, who, why."""
    from promotion.stages import history

    emit(
        history(get_settings(), value(kind), model),
        as_json,
        lambda rows: table(
            rows, ["at", "model_version", "kind", "from", "to", "by", "reason", "flow_run_id"], title="stage changes"
        ),
    )
