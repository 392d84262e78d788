"""Serving commands: run the classification service, and read its prediction log."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from aoi.settings import get_settings
from cli.choices import Kind, value
from cli.output import JSON_OPTION, console, emit, fail, table


def serve(
    port: int = typer.Option(None, "--port", min=1, max=65535, help="Port (default AOI_SERVING__PORT, 3000)."),
    host: str = typer.Option(None, "--host", help="Address (default AOI_SERVING__HOST, 127.0.0.1)."),
    background: bool = typer.Option(False, "--background", help="Start in the background and return once it answers."),
    stop: bool = typer.Option(False, "--stop", help="Stop the background service of this AOI_HOME."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Serve POST /classify with the production models of AOI_HOME (BentoML; OpenAPI page at the root URL)."""

    try:
        settings = get_settings()
    except ValidationError as err:  # e.g. an empty or short AOI_API_KEY: the message names it, never its value
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()), as_json, code=2)
    from serving import process

    if stop:
        result = process.stop(settings)
        emit(
            result,
            as_json,
            lambda d: print(
                f"stopped the service (pid {d['pid']})"
                if d["stopped"]
                else f"not stopped: pid {d['stale_pid']} in the pid file is stale ({d['reason']}); pid file removed"
                if "stale_pid" in d
                else "no background service of this AOI_HOME is running"
            ),
        )
        return
    try:
        process.check_bind(settings, host)
    except process.ServeError as err:
        fail(str(err), as_json, code=2)
    if background:
        try:
            served = process.start_background(settings, port, host)
        except process.ServeError as err:
            fail(str(err), as_json, code=4)
        emit(
            {"url": served.url, "pid": served.pid, "log": str(served.log), "started": served.started},
            as_json,
            lambda d: print(
                f"classification service: {d['url']} (OpenAPI page there; pid {d['pid']}, "
                f"{'started' if d['started'] else 'already running'}, log {d['log']}); "
                f"stop with `aoi serve --stop`"
            ),
        )
        return
    console.print(f"serving {process.url_of(settings, port, host)} (Ctrl-C stops; the prediction log is flushed)")
    process.exec_foreground(settings, port, host)


def predictions(
    kind: Kind = typer.Option(None, "--kind", help="Only answers of this kind."),
    last: int = typer.Option(10, "--last", min=1, help="How many of the latest answers to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The prediction log: answers per model version and route, Unknown and in-spec rates, latency p50 and p99, live
    accuracy of the answers the line confirmed and their errors (confirmed wrong answers), the latest answers."""
    from monitoring.live import by_model
    from serving.log_queries import summary

    settings = get_settings()
    data = summary(settings, value(kind), last)
    live = by_model(settings, value(kind))
    for row in data["by_model"]:
        row.update(live.get((row["kind"], row["model_version"]), {}))

    def render(d: dict) -> None:
        table(
            d["by_model"],
            [
                "kind",
                "model_version",
                "answers",
                "unknown_rate",
                "in_spec_rate",
                "latency_p50_ms",
                "latency_p99_ms",
                "confirmed",
                "live_accuracy",
                "errors",
                "routes",
            ],
            title=f"prediction log: {d['answers']} answers",
        )
        table(
            d["latest"],
            ["at", "kind", "model_version", "machine_id", "label", "coarse_label", "confidence", "route", "rule"],
            title=f"latest {len(d['latest'])}",
        )

    emit(data, as_json, render)


bento_app = typer.Typer(help="The self-contained Bento of the classification service.", no_args_is_help=True)


@bento_app.command("build")
def bento_build(
    version: str = typer.Option(None, "--version", help="The Bento's version (default: BentoML makes one)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build the Bento with the production models packed in: it answers without AOI_HOME's model store."""
    from serving.bento import BentoError, build

    try:
        result = build(get_settings(), version)
    except BentoError as err:
        fail(str(err), as_json, code=2)
    emit(
        result,
        as_json,
        lambda d: print(
            f"built {d['tag']} with "
            + ", ".join(f"{kind} {v}" for kind, v in d["models"].items())
            + f"; serve it with `{d['serve']}` (BENTOML_HOME={Path(d['path']).parents[2]})"
        ),
    )
