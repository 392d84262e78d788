"""Monitoring commands: a drift check, the deployments, the worker that runs them."""

from __future__ import annotations

import contextlib
import io
import subprocess

import typer

from aoi.settings import get_settings
from cli import names
from cli.choices import Kind, Reference
from cli.output import JSON_OPTION, console, emit, fail, table
from flows.prefect_server import PrefectUnavailable


def _server(as_json: bool):
    from flows.prefect_server import ensure_server

    try:
        return ensure_server(get_settings())
    except PrefectUnavailable as err:
        fail(str(err), as_json, code=err.exit_code)


def monitor(
    kind: Kind = typer.Option(None, "--kind", help="One kind (default: every kind with a production model)."),
    window: str = typer.Option(
        None, "--window", help="How far back to look, e.g. 24h, 90m, 7d (default AOI_MONITORING__WINDOW_HOURS)."
    ),
    since: str = typer.Option(None, "--since", help="ISO time the window starts at, instead of --window."),
    until: str = typer.Option(None, "--until", help="ISO time the window ends at (default now)."),
    no_trigger: bool = typer.Option(False, "--no-trigger", help="Report drift without starting a retraining."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check the prediction log for drift (Evidently) against the production model's reference, overall, per
    machine and per part number (a part with no reference is reported, not judged); on drift, start the retrain
    deployment once per drift episode."""
    if window and since:
        fail("give --window or --since, not both", as_json, code=2)
    names.monitor_window(get_settings(), kind and kind.value, window, since, until, as_json)
    _server(as_json)
    from flows.monitor import monitor as monitor_flow
    from monitoring.check import MonitorError

    try:
        result = monitor_flow(
            kind=kind and kind.value, window=window, since=since, until=until, trigger_retraining=not no_trigger
        ).as_dict()
    except MonitorError as err:
        fail(str(err), as_json, code=2)
    emit(result, as_json, render_monitor)


def render_monitor(d: dict) -> None:
    if not d["kinds"]:
        console.print("no production model: nothing to monitor (aoi stages)")
    for kind, r in d["kinds"].items():
        console.print(
            f"[bold]{kind}[/bold] ({r['model_version']}), window {r['window']['start']} .. {r['window']['end']}: "
            f"{r['samples']} answers against {r['reference_samples']} reference images"
            + (f" ({r['calibrated_samples']} tone-calibrated)" if r["calibrated_samples"] else "")
        )
        # the "all" row shows the whole window's own verdict; the kind's (any scope) is the decision line below
        rows = [
            {"scope": "all", **r, "drift": r["overall_drift"]},
            *({"scope": m, **v} for m, v in r["machines"].items()),
            *({"scope": f"part {p}", **v} for p, v in r.get("parts", {}).items()),
        ]
        for row in rows:
            row["drifted"] = ", ".join(row.get("drifted_columns") or []) or "-"
            row["why"] = "; ".join(
                (row.get("reasons") or []) + ([] if row["scope"] == "all" else row.get("notes") or [])
            )
        table(
            rows, ["scope", "samples", "drift", "drift_share", "unknown_rate", "drifted", "why"], title=f"{kind} drift"
        )
        judged_live = [row for row in r.get("live_accuracy", []) if row["confirmed"]]
        if judged_live:
            blind = r.get("blind_accuracy") or {}
            table(
                judged_live,
                ["scope", "confirmed", "n", "correct", "accuracy", "bound", "blind_accuracy", "drift", "reason"],
                title=f"{kind} live accuracy of confirmed answers (blind {blind.get('accuracy', '-')})",
            )
        for note in r.get("notes", []):
            console.print(f"note: {note}")
        console.print(f"decision: {r['decision']}" + (f"; report {r['report']}" if r["report"] else ""))
        if r["retraining"]:
            console.print(f"retraining: {r['retraining']}")
        if r.get("history"):
            console.print(f"history: Evidently workspace {r['history']['workspace']} (evidently ui --workspace ...)")


def deploy(as_json: bool = JSON_OPTION) -> None:
    """Register the deployments of prefect.yaml (retrain weekly and on drift, monitor every interval, the rest on
    demand) on the Prefect server, on the work pool that `aoi worker` serves (created when missing), with the
    schedules and work pool of the settings."""
    server = _server(as_json)
    from flows.deployments import deploy as deploy_all

    try:
        # Prefect prints its own table of the deployments on stdout, which --json owns: ours below says the same
        with contextlib.redirect_stdout(io.StringIO()):
            result = deploy_all(get_settings())
    except ValueError as err:  # a work pool of another type than the settings say
        fail(str(err), as_json, code=2)
    result["ui_url"] = server.ui_url
    emit(
        result,
        as_json,
        lambda d: (
            table(
                d["deployments"],
                ["deployment", "schedule", "entrypoint"],
                title=f"deployments on work pool {d['work_pool']}",
            ),
            console.print(f"Prefect UI: {d['ui_url']}/deployments; run them with `aoi worker`"),
        ),
    )


def worker(
    background: bool = typer.Option(
        False, "--background", help="Start in the background (log under AOI_HOME/prefect)."
    ),
    stop: bool = typer.Option(False, "--stop", help="Stop the background worker of this AOI_HOME."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a Prefect process worker for the deployments' work pool: it starts the flow runs the schedules, the
    monitor and the UI ask for, in this environment (AOI_* settings, PREFECT_API_URL)."""
    from flows import prefect_server

    settings = get_settings()
    if stop:
        emit({"stopped": prefect_server.stop_server(settings, "worker")}, as_json)
        return
    _server(as_json)
    if background:
        pid = prefect_server.owned_pid(settings, "worker") or prefect_server.start_worker(settings)
        emit(
            {"pid": pid, "work_pool": settings.monitoring.work_pool, "log": str(settings.prefect_home / "worker.log")},
            as_json,
            lambda d: print(
                f"worker on pool {d['work_pool']}: pid {d['pid']}, log {d['log']}; stop with `aoi worker --stop`"
            ),
        )
        return
    console.print(f"worker on pool {settings.monitoring.work_pool} (Ctrl-C stops)")
    raise typer.Exit(subprocess.call(prefect_server.worker_command(settings), env=prefect_server.worker_env()))


def drift_study(
    kind: Kind = typer.Option(Kind.color, "--kind", help="The kind of model to study."),
    model: str = typer.Option(None, "--model", help="Model version (default: the kind's production model)."),
    windows: int = typer.Option(50, min=1, help="Trials per window size."),
    sizes: str = typer.Option("50,100,200", help="Answers per machine in a window, comma-separated."),
    light: float = typer.Option(0.9, min=0.1, max=1.5, help="The dimmed machine's lamp: share of its light."),
    reference: Reference = typer.Option(
        Reference.line,
        "--reference",
        help="line: the monitor's reference (what the line sent, "
        "uncleaned); dataset: the cleaned dataset version, for comparison.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """False alarms on undrifted windows and detections of one dimmed machine, drawn from the held-out (blind)
    images of the kind as stored, uncleaned."""
    from monitoring import study
    from monitoring.check import MonitorError, kinds_to_check

    settings = get_settings()
    kind_name = kind.value
    try:
        per_machine = window_sizes(sizes)
        version = model or kinds_to_check(settings, kind_name)[kind_name]
        if not study.held_out(settings, kind_name):
            raise ValueError(f"no held-out {kind_name} images to draw from: register a blind set (aoi dataset blind)")
    except (MonitorError, ValueError) as err:
        fail(str(err), as_json, code=2)
    result = study.run(
        settings,
        version,
        kind_name,
        windows,
        per_machine,
        light,
        progress=not as_json,
        reference_kind=reference.value,
    )
    emit(
        result,
        as_json,
        lambda d: (
            table(
                d["rows"],
                ["per_machine", "windows", "false_alarm_rate", "detection_rate"],
                title=f"drift study: {d['model_version']} against the {d['reference']} reference, "
                f"{d['pool']} held-out images, {d['dimmed_machine']} at {d['light']} light",
            ),
            console.print(
                f"smallest window meeting both goals: {d['smallest_window_meeting_goals']} answers per machine"
            ),
        ),
    )


def live_accuracy_study(
    kind: Kind = typer.Option(Kind.color, "--kind", help="The kind of model to study."),
    model: str = typer.Option(None, "--model", help="Model version (default: the kind's production model)."),
    windows: int = typer.Option(200, min=1, help="Trials per window size."),
    sizes: str = typer.Option(
        "100,200,400,600,800", help="Confirmed answers per machine in a window, comma-separated."
    ),
    drop: float = typer.Option(0.10, min=0.01, max=0.9, help="The stale machine's accuracy drop (0.10: 10 points)."),
    seed: int = typer.Option(0, help="Seed of the draws."),
    as_json: bool = JSON_OPTION,
) -> None:
    """False alarms of live accuracy on unchanged machines and detections of one machine whose confirmed answers
    drop by --drop, drawn from the model's real per-image answers on its blind sets (its stored blind evaluation,
    else answers computed now on the held-out images)."""
    from monitoring import live_study
    from monitoring.check import MonitorError, kinds_to_check

    settings = get_settings()
    kind_name = kind.value
    try:
        per_machine = window_sizes(sizes)
        version = model or kinds_to_check(settings, kind_name)[kind_name]
        result = live_study.run(settings, version, kind_name, windows, per_machine, drop, seed)
    except (MonitorError, ValueError) as err:
        fail(str(err), as_json, code=2)
    emit(
        result,
        as_json,
        lambda d: (
            table(
                d["rows"],
                ["per_machine", "windows", "false_alarm_rate", "detection_rate"],
                title=f"live accuracy study: {d['model_version']}, {d['pool']} accepted blind answers "
                f"(blind accuracy {d['blind_accuracy']}), {d['dropped_machine']} {d['drop']:.0%} lower",
            ),
            console.print(
                f"smallest window meeting both goals: {d['smallest_window_meeting_goals']} confirmed answers per "
                f"machine (bound {d['accuracy_confidence']:.0%}, allowance {d['max_accuracy_drop']})"
            ),
        ),
    )


def window_sizes(sizes: str) -> tuple[int, ...]:
    """``--sizes`` of the studies: answers per machine in a window, comma-separated positive whole numbers."""
    try:
        per_machine = tuple(int(s) for s in sizes.split(","))
    except ValueError:
        per_machine = ()
    if not per_machine or min(per_machine) < 1:
        raise ValueError(f"--sizes must be positive whole numbers, comma-separated, not {sizes!r}")
    return per_machine
