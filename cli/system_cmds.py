"""System commands: settings, the Prefect UI, public data sets, and the end-to-end demo."""

from __future__ import annotations

import typer
from sqlmodel import col, select

from aoi.settings import get_settings
from cli.dataset_cmds import show_version
from cli.eval_cmds import render_robustness
from cli.feature_cmds import render_check, render_line
from cli.monitor_cmds import render_monitor
from cli.output import JSON_OPTION, console, emit, fail, table
from flows.prefect_server import PrefectUnavailable

public_app = typer.Typer(help="The public data sets under AOI_DATASETS_DIR (DeepPCB, PKU crops).", no_args_is_help=True)


def config(as_json: bool = JSON_OPTION) -> None:
    """Print the resolved settings (environment variables AOI_*, nested with __)."""
    emit(get_settings().describe(), as_json)


def ui(
    stop: bool = typer.Option(False, "--stop", help="Stop the local Prefect server started by aoi."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start the local Prefect server (state under AOI_HOME/prefect) in the background and print the UI address."""
    from flows.prefect_server import ensure_server, stop_server

    settings = get_settings()
    if stop:
        emit({"stopped": stop_server(settings)}, as_json)
        return
    try:
        server = ensure_server(settings)
    except PrefectUnavailable as err:
        fail(str(err), as_json, code=err.exit_code)
    login = _login_hint(settings) if server.local else None
    emit(
        {
            "ui_url": server.ui_url,
            "api_url": server.api_url,
            "started": server.started,
            "local": server.local,
            "login": login,
            "log": str(server.log) if server.log else None,
        },
        as_json,
        lambda d: print(
            f"Prefect UI: {d['ui_url']}  (API {d['api_url']}; "
            f"{'started now' if d['started'] else 'already running'}; stop with `aoi ui --stop`)"
            + (f"\n{d['login']}" if d["login"] else "")
        ),
    )


def _login_hint(settings) -> str:
    """Where the UI's login (user:password) is, without printing it."""
    if settings.prefect.auth_string is not None:
        return "log in with AOI_PREFECT__AUTH_STRING (user:password)"
    from flows.prefect_server import AUTH_FILE

    return f"log in with the user:password in {settings.prefect_home / AUTH_FILE}"


@public_app.command("status")
def datasets_status(as_json: bool = JSON_OPTION) -> None:
    """Which public data sets are present under AOI_DATASETS_DIR, and how to get the missing ones."""
    from demo import public_sets

    emit(
        public_sets.status(get_settings()),
        as_json,
        lambda rows: table(rows, ["name", "present", "path", "how_to_get"], title="data sets"),
    )


@public_app.command("fetch")
def datasets_fetch(name: str = typer.Argument("deeppcb"), as_json: bool = JSON_OPTION) -> None:
    """Download a public data set into AOI_DATASETS_DIR (DeepPCB only; needs network access)."""
    from demo import public_sets

    if name != "deeppcb":
        fail(f"only deeppcb can be fetched; {name}: see `aoi public status`", as_json, code=2)
    try:
        path = public_sets.fetch_deeppcb(get_settings())
    except public_sets.DatasetUnavailable as err:
        fail(str(err), as_json, code=3)
    emit({"name": name, "path": str(path)}, as_json, lambda d: print(f"{name} at {d['path']}"))


# The demo's stages as the terminal names them; 3 to 6 run inside the demo flow (flows/run_demo.py), each with its
# results printed when it ends.
DEMO_STAGES = {
    "services": "1/6 services",
    "data sets": "2/6 data sets",
    "models": "3/6 ingest, colour tone spec, blind sets, simulated line and machine features, dataset versions, "
    "training, Unknown threshold, robustness (flows 'ingest', 'validate', 'simulated-line', 'features', "
    "'build-dataset', 'train')",
    "promotion": "4/6 blind tests, gate, approval, promotion (flow 'promote')",
    "serving": "5/6 serving: the production models exported (ONNX fp32, INT8; parity gate) and answering over HTTP "
    "(BentoML), every answer in the prediction log, the doubtful ones kept for review",
    "drift": "6/6 drift: one simulated machine's lamp ages in requests to the service; an engineer labels a few kept "
    "answers; the line confirms another machine's answers wrong; the monitor flags both and starts the retrain "
    "deployment (flows 'monitor', 'retrain'; SIMULATION)",
}


def demo(as_json: bool = JSON_OPTION) -> None:
    """Run the system end to end on the embedded defaults and print where to look."""
    from aoi.catalog.queries import label_counts
    from demo import public_sets
    from demo.simulated_line import default_folder
    from flows.prefect_server import ensure_server

    settings = get_settings()
    _refuse_a_second_demo(settings, as_json)
    say = (lambda *a: None) if as_json else console.rule
    say(f"[bold]{DEMO_STAGES['services']}")
    try:
        server = ensure_server(settings)
    except PrefectUnavailable as err:
        fail(str(err), as_json, code=err.exit_code)
    if not as_json:
        console.print(
            f"Prefect server: {server.ui_url} ({'started' if server.started else 'running'}"
            + (f"; {_login_hint(settings)})" if server.local else ")")
        )
        console.print(f"Catalog: {settings.describe()['db_url']}")
    say(f"[bold]{DEMO_STAGES['data sets']}")
    inputs = {}
    for spec in public_sets.SETS.values():
        try:
            if spec.name == "deeppcb":
                public_sets.fetch_deeppcb(settings)
            inputs[spec.name] = public_sets.require(settings, spec.name)
        except public_sets.DatasetUnavailable as err:
            fail(str(err), as_json, code=3)
        if not as_json:
            console.print(f"{spec.name}: {inputs[spec.name]}")
    say(f"[bold]{DEMO_STAGES['models']}")
    from flows.run_demo import demo as demo_flow

    results = demo_flow(
        {name: str(path) for name, path in inputs.items()},
        ui_url=server.ui_url,
        progress=not as_json,
        report=None if as_json else _stage_report(settings),
        say=None if as_json else console.print,
    )
    counts = label_counts(settings.catalog_url)
    workbench = _start_workbench(settings)
    where = {
        "prefect_ui": server.ui_url,
        "aoi_home": str(settings.home),
        "catalog": settings.describe()["db_url"],
        "image_store": str(settings.store_dir),
        "quarantine": "aoi quarantine",
        "gallery": "aoi images --label SPUR --json",
        "datasets": "aoi dataset list; aoi dataset show pku-v1; aoi dataset manifest deeppcb-v1",
        "training": "aoi runs; aoi models",
        "evaluation_reports": str(settings.reports_dir / "evaluations"),
        "promotion": "aoi stages; aoi compare MODEL... --datasets BLIND...; aoi rollback KIND",
        "data_docs": results["datasets"]["color"]["validation"]["report"],
        "tone_pictures": str(settings.reports_dir / "validation"),
        "simulated_line": f"{default_folder(settings)} (SIMULATION); aoi machines list; aoi machines check",
        "feature_repo": str(settings.home / "feast"),
        "service": results["serving"].get("url", "not started: no production model"),
        "predictions": "aoi predictions; aoi serve --stop",
        "exports": "aoi models (each version's exports, parity and latency); aoi export MODEL [--int8]",
        "review_queue": "aoi review list; aoi review label REQUEST_ID CLASS --by NAME; the workbench's /review page; "
        "the retraining's dataset version (aoi dataset list) counts the labels: 'confirmed from the line'",
        "line_truth": f"{default_folder(settings) / 'ageing-answers.jsonl'} (SIMULATION: each lamp-ageing answer and "
        "its true class)",
        "drift_reports": str(settings.reports_dir / "monitoring"),
        "deployments": f"{server.ui_url}/deployments; aoi monitor --kind color --window 1h --no-trigger; "
        f"worker log {settings.prefect_home / 'worker.log'} (aoi worker --stop)",
        # last: the address and, once, the demo account's password
        "workbench": f"{workbench['url']} ({workbench['login']}; aoi web --stop)"
        if "url" in workbench
        else f"not started: {workbench['error']}",
    }

    def render(d: dict) -> None:
        console.rule("[bold]where to look")
        for key, value in d["where"].items():
            console.print(f"{key:12s} {value}")

    emit({**results, "catalog": counts, "where": where}, as_json, render)


def _stage_report(settings):
    """What the terminal prints as each demo stage ends: its results, then the next stage's title."""
    from aoi.catalog.queries import label_counts

    renderers = {
        "models": lambda d: _render_models(d, label_counts(settings.catalog_url)),
        "promotion": _render_promotion,
        "serving": _render_serving,
        "drift": _render_drift,
    }
    order = list(renderers)

    def report(stage: str, result: dict) -> None:
        renderers[stage](result)
        following = order.index(stage) + 1
        if following < len(order):
            console.rule(f"[bold]{DEMO_STAGES[order[following]]}")

    return report


def _start_workbench(settings) -> dict:
    """The workbench beside the service, left running, with the demo's reviewer account."""
    from workbench import server

    try:
        return server.start_for_demo(settings)
    except (server.WebError, ValueError) as err:
        return {"error": str(err)}


def _render_models(d: dict, counts: list[dict]) -> None:
    for name, r in d["ingest"].items():
        console.print(
            f"{name}: batch {r['batch_id']} {r['status']}: added {r['added']}, "
            f"duplicates {r['duplicates']}, quarantined {r['quarantined']}"
        )
    v = d["datasets"]["color"]["validation"]
    console.print(
        f"spec {d['spec']} derived from the PKU batch; colour validation: {v['evaluated']} evaluated, "
        f"{v['passed']} passed, {v['excluded']} excluded"
    )
    table(counts, ["source", "label", "status", "images"], title="catalog: images per source and label")
    if "skipped" in d["line"]:
        console.print(f"simulated line: skipped ({d['line']['skipped']})")
    else:
        render_line(d["line"])
        render_check(d["line"]["check"])
    for version in [*d["blind"].values(), *d["datasets"].values()]:
        show_version(version)
    for kind, m in d["models"].items():
        if "skipped" in m:
            console.print(f"{kind} model: skipped ({m['skipped']})")
        else:
            console.print(
                f"{kind} model {m['model_version']} (candidate): mean detection rate "
                f"{m['mean_detection_rate']:.3f} "
                f"on valid, test accuracy {m.get('test_accuracy', float('nan')):.3f}, {m['duration_s']} s; "
                f"curves {m['curves']}"
            )
    for kind, check in d["checks"].items():
        calibration = check["calibration"]
        console.print(
            f"{kind} Unknown threshold: "
            + (
                f"{calibration['threshold']:.4f} (accepted accuracy "
                f"{calibration['accepted_accuracy']:.1%} at {calibration['unknown_rate']:.1%} Unknown on valid)"
                if "threshold" in calibration
                else f"default ({calibration['skipped']})"
            )
        )
        render_robustness(check["robustness"])


def _render_promotion(promotion: dict) -> None:
    for kind, p in promotion.items():
        table(p["comparison"]["rows"], ["row", *p["comparison"]["columns"]], title=f"{kind}: comparison")
        failed = [r["rule"] for r in p["verdict"]["rules"] if not r["passed"]] if p.get("verdict") else []
        console.print(
            f"{kind} model {p['model_version']}: {p['decision']}, stage {p['stage']}"
            + (f" (failed: {'; '.join(failed)})" if failed else "")
        )


def _render_serving(served: dict) -> None:
    if "exports" in served:
        _render_exports(served["exports"])
    if "url" in served:
        console.print(f"classification service {served['url']} (OpenAPI page there), log {served['log']}")
    elif "skipped" in served:
        console.print(f"serving: skipped ({served['skipped']})")
    for t in served.get("trials", []):
        console.print(
            f"{t['kind']}: {t['answered']}/{t['sent']} images of {t['blind_set']} answered over HTTP by "
            f"{', '.join(t['model_versions'])} on {t.get('runtime', '?')}: accuracy {t['accepted_accuracy']} of the "
            f"accepted, Unknown rate {t['unknown_rate']}, routes {t['routes']}, p50 {t['p50_ms']} ms"
        )
        if t.get("runtime_reason"):
            console.print(f"  runtime: {t['runtime_reason']}")
    if "kept_answers" in served:
        _render_kept(served["kept_answers"], "after the line trial")


def _render_exports(exported: dict) -> None:
    rows = []
    for made in exported["kinds"].values():
        for precision in ("fp32", "int8"):
            e = made[precision]
            rows.append(
                {
                    "model": f"{made['model_version']} {precision}",
                    "verdict": "error" if "error" in e else ("accepted" if e["accepted"] else "refused"),
                    "agreement": _figure(e.get("top1_agreement"), ".2%"),
                    "blind acc. torch/export": f"{_figure(e.get('blind_accuracy_torch'), '.3f')}/"
                    f"{_figure(e.get('blind_accuracy_export'), '.3f')}",
                    "img/s @32 export/torch": f"{_figure(e.get('batch32_images_per_s'), '.0f')}/"
                    f"{_figure(e.get('torch_batch32_images_per_s'), '.0f')}",
                }
            )
    columns = ["model", "verdict", "agreement", "blind acc. torch/export", "img/s @32 export/torch"]
    table(rows, columns, title=f"exports, parity gate and latency ({exported['seconds']} s in all)")
    for made in exported["kinds"].values():
        console.print(
            f"{made['model_version']}: exported in "
            + ", ".join(f"{made[p]['seconds']} s ({p})" for p in ("fp32", "int8"))
        )
        for precision in ("fp32", "int8"):
            e = made[precision]
            if "error" in e or not e["accepted"]:  # a refusal is a normal outcome: its figures say why
                console.print(f"{made['model_version']} {precision}: {e.get('error') or e['reason']}")


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _render_kept(kept: dict, when: str) -> None:
    if "skipped" in kept:
        console.print(f"kept answers: not counted ({kept['skipped']})")
        return
    waiting = "; ".join(
        f"{kind}: " + ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        for kind, reasons in kept["waiting"].items()
    )
    console.print(f"review queue {when}: {waiting or 'nothing'} waiting (aoi review list; the workbench's review page)")


def _render_drift(drift: dict) -> None:
    if "skipped" in drift:
        console.print(f"drift: skipped ({drift['skipped']})")
    else:
        render_monitor(drift["monitor"])
        console.print(
            f"{drift['requests']['sent']} requests ({drift['requests']['simulation']}: "
            f"{drift['requests']['ageing_machine']} at {drift['requests']['light_steps']} of its light); "
            f"retraining run: {drift['retraining'] or 'none'}"
        )
        if "kept_answers" in drift:
            _render_kept(drift["kept_answers"], "after the lamp-ageing requests")
        _render_review(drift.get("review", {}))
        _render_stale(drift.get("stale_machine", {}))


def _render_review(review: dict) -> None:
    if "skipped" in review or not review:
        console.print(f"labelled from the terminal: none ({review.get('skipped', 'not run')})")
        return
    for done in review["labelled"]:
        console.print(f"$ {done['command']}  # {done['machine_id']}, answered {done['answered']} ({done['reason']})")
    for failed in review["failed"]:
        console.print(f"$ {failed['command']}  # refused: {failed['error']}")
    console.print(
        f"{len(review['labelled'])} kept answers labelled by {review['by']}: {review['note']} "
        "(its dataset version's cleaning table counts them: 'confirmed from the line')"
    )


def _render_stale(stale: dict) -> None:
    if "skipped" in stale or not stale:
        return
    console.print(
        f"{stale['simulation']}: {stale['confirmed']} answers confirmed, {stale['confirmed_wrong']} of "
        f"{stale['accepted_answers']} accepted ones called another class"
    )
    verdict = stale.get("verdict")
    if verdict:
        live = verdict["live_accuracy"] or {}
        console.print(
            f"{verdict['machine']}: "
            + ("flagged by live accuracy" if verdict["flagged_by_live_accuracy"] else "NOT flagged by live accuracy")
            + (f" ({live.get('reason')})" if live else "")
            + "; inputs: "
            + ("drift" if verdict["flagged_by_inputs"] else "no drift")
            + " (SIMULATION)"
        )


def _refuse_a_second_demo(settings, as_json: bool) -> None:
    """Dataset versions are immutable, so the demo runs once per AOI_HOME: say so before doing anything."""

    from aoi.catalog import db
    from aoi.catalog.models import DatasetVersion
    from demo.public_sets import DEMO_DATASETS

    if not (settings.home / "catalog.db").exists() and settings.db_url is None:
        return
    with db.session(settings.catalog_url) as s:
        done = s.exec(
            select(DatasetVersion.name).where(col(DatasetVersion.name).in_(list(DEMO_DATASETS.values())))
        ).all()
    if done:
        fail(
            f"the demo already ran in {settings.home} (dataset versions {', '.join(done)} exist and are immutable). "
            f"Look at its results (aoi models, aoi runs, aoi stages, aoi ui), or start afresh: make clean && make demo",
            as_json,
            code=5,
        )
