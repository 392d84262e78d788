"""The ``aoi`` command: the contract scripts and line software rely on. Every reporting command has --json."""

from __future__ import annotations

import typer

from cli import (
    catalog_cmds,
    curation_cmds,
    dataset_cmds,
    eval_cmds,
    export_cmds,
    feature_cmds,
    feedback_cmds,
    ingest_cmd,
    monitor_cmds,
    review_cmds,
    serve_cmds,
    system_cmds,
    train_cmds,
    validate_cmds,
    web_cmds,
)
from cli.entry import AoiGroup, entry

app = typer.Typer(
    name="aoi",
    cls=AoiGroup,
    help="AOI defect classification MLOps: ingest, validate, train, gate, serve, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.callback()(entry)
app.command("ingest")(ingest_cmd.ingest)
app.command("quarantine")(catalog_cmds.quarantine)
app.command("batches")(catalog_cmds.batches)
app.command("summary")(catalog_cmds.summary)
app.command("validate")(validate_cmds.validate)
app.command("restore")(validate_cmds.restore)
app.command("train")(train_cmds.train)
app.command("runs")(train_cmds.runs)
app.command("models")(train_cmds.models)
app.command("evaluate")(eval_cmds.evaluate)
app.command("calibrate")(eval_cmds.calibrate)
app.command("compare")(eval_cmds.compare)
app.command("robustness")(eval_cmds.robustness)
app.command("export")(export_cmds.export)
app.command("promote")(eval_cmds.promote)
app.command("approve")(eval_cmds.approve)
app.command("rollback")(eval_cmds.rollback)
app.command("stages")(eval_cmds.stages)
app.command("serve")(serve_cmds.serve)
app.command("predictions")(serve_cmds.predictions)
app.command("monitor")(monitor_cmds.monitor)
app.command("deploy")(monitor_cmds.deploy)
app.command("worker")(monitor_cmds.worker)
app.command("drift-study")(monitor_cmds.drift_study)
app.command("live-accuracy-study")(monitor_cmds.live_accuracy_study)
app.command("config")(system_cmds.config)
app.command("ui")(system_cmds.ui)
app.command("demo")(system_cmds.demo)
app.command("web")(web_cmds.web)
app.add_typer(curation_cmds.images_app, name="images")
app.add_typer(review_cmds.review_app, name="review")
app.add_typer(catalog_cmds.db_app, name="db")
app.add_typer(catalog_cmds.store_app, name="store")
app.add_typer(system_cmds.public_app, name="public")
app.add_typer(dataset_cmds.dataset_app, name="dataset")
app.add_typer(validate_cmds.spec_app, name="spec")
app.add_typer(feature_cmds.machines_app, name="machines")
app.add_typer(feature_cmds.simulate_app, name="simulate")
app.add_typer(web_cmds.users_app, name="users")
app.add_typer(feedback_cmds.feedback_app, name="feedback")
app.add_typer(serve_cmds.bento_app, name="bento")

__all__ = ["app"]
