"""Typed contracts, proved fast (no Prefect server, no training): the demo is one flow whose stages are its
subflows; one helper makes every flow step a task; the training parameters are declared once and refused
through the CLI in one line with exit code 2; the train flow's result keeps `aoi train --json`'s keys; the
tone fields are declared once."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from training.params import RETRAINED, TrainParams, TrainResult

ROOT = Path(__file__).resolve().parents[2]
# The keys of `aoi train --json` (and of each trained model in `aoi demo --json`), as users script against them.
TRAIN_JSON_KEYS = [
    "run_id",
    "model_version",
    "status",
    "kind",
    "dataset",
    "arch",
    "mean_detection_rate",
    "valid_accuracy",
    "labelled_images",
    "total_images",
    "label_kinds",
    "started_at",
    "finished_at",
    "duration_s",
    "curves",
    "error",
    "ray_cluster",
]
TEST_SPLIT_KEYS = ["test_accuracy", "test_mean_detection_rate", "test_images"]


def _called(node: ast.AST) -> list[str]:
    """Names of the plain functions called under ``node``, in the order they appear in the source."""
    calls = [
        (n.lineno, n.col_offset, n.func.id)
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    return [name for _, _, name in sorted(calls)]


def test_every_demo_stage_runs_inside_the_demo_flow():
    """Read from the source (importing the flow costs the whole stack): the demo flow calls one subflow per stage,
    and what `aoi demo` used to run itself, outside any flow, is a task or a subflow of a stage."""
    tree = ast.parse((ROOT / "flows" / "run_demo.py").read_text())
    flows = {
        f.name: f
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and any(isinstance(d, ast.Call) and getattr(d.func, "id", None) == "flow" for d in f.decorator_list)
    }
    tasks = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _called(node.value)[:1] == ["step"]
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    other_flows = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flows.")
        for alias in node.names
        if node.module not in ("flows.tasks", "flows.deployments")
    }
    stages = [name for name in _called(flows["demo"]) if name in flows]
    assert stages == ["data_and_models", "review_models", "serve", "lamp_ageing_drift"]
    reports = [
        c.args[0].value
        for c in ast.walk(flows["demo"])
        if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "report" and isinstance(c.args[0], ast.Constant)
    ]
    assert reports == ["models", "promotion", "serving", "drift"], "each stage reports when it ends"
    steps = {name for stage in stages for name in _called(flows[stage]) if name in tasks | other_flows}
    for done_by_the_cli_before in (
        "promote_and_approve",
        "compare_on_blind_sets",
        "start_service",
        "line_trial",
        "register_deployments",
        "send_ageing_line",
        "monitor",
    ):
        assert done_by_the_cli_before in steps, done_by_the_cli_before
    assert {"ingest", "line", "build_dataset", "train"} <= steps


def test_the_demo_command_only_starts_the_flow_and_prints():
    tree = ast.parse((ROOT / "cli" / "system_cmds.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    stage_work = {"serving", "promotion", "demo.review", "demo.lamp_ageing", "flows.deployments", "flows.monitor"}
    assert not {m for m in imported if m in stage_work or m.split(".")[0] in {"serving", "promotion"}}
    assert "flows.run_demo" in imported


def test_one_helper_makes_every_flow_step_a_task():
    from prefect import Task
    from prefect.cache_policies import NO_CACHE

    from flows.tasks import step

    def double(x: int) -> int:
        return 2 * x

    plain, retried = step(double, "double"), step(double, "double-again", retries=2)
    assert isinstance(plain, Task) and plain.name == "double" and plain.retries == 0
    assert type(plain.cache_policy) is type(NO_CACHE) and type(retried.cache_policy) is type(NO_CACHE)
    assert (retried.retries, retried.retry_delay_seconds) == (2, [1, 5])
    with pytest.raises(ValueError, match="at most 3 retries"):
        step(double, "too-many", retries=4)
    for path in sorted((ROOT / "flows").glob("*.py")):
        if path.name == "tasks.py":
            continue
        tree = ast.parse(path.read_text())
        made_here = [
            n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "task"
        ]
        assert not made_here, f"{path.name}:{made_here}: use flows.tasks.step"


@pytest.mark.parametrize(
    "args,start",
    [
        (["--dataset", "d", "--epochs", "0"], "--epochs 0: "),
        (["--dataset", "d", "--workers", "0"], "--workers 0: "),
        (["--dataset", "d", "--tone-jitter", "0.9"], "--tone-jitter 0.9: "),
        (["--dataset", "d", "--lr", "0"], "--lr 0.0: "),
        (["--dataset", "d", "--batch-size", "-3"], "--batch-size -3: "),
        (["--dataset", "d", "--input-size", "8"], "--input-size 8: "),
        (["--dataset", ""], "--dataset '': "),
    ],
)
def test_bad_training_parameters_are_refused_in_one_line_with_exit_2(aoi_home, args, start):
    as_json = CliRunner().invoke(app, ["train", *args, "--json"])
    assert as_json.exit_code == 2, as_json.output
    error = json.loads(as_json.stdout)["error"]
    assert error.startswith(start) and "\n" not in error, error
    text = CliRunner().invoke(app, ["train", *args])
    assert text.exit_code == 2 and "Traceback" not in text.output and start in text.output
    assert not (aoi_home / "catalog.db").exists(), "refused before anything ran"


def test_aoi_train_options_are_the_train_params():
    from typer.main import get_command

    group: Any = get_command(app)  # typer's group: its commands by name
    options = {p.name: p for p in group.commands["train"].params}
    fields = TrainParams.model_fields
    assert set(options) - {"as_json"} == set(fields) - {"augment"}
    for name, field in fields.items():
        if name in options and not field.is_required():
            assert options[name].default == field.default, name
    assert set(RETRAINED) == set(fields) - {"dataset", "augment"}


def test_the_train_result_keeps_the_json_keys_of_aoi_train():
    from aoi.catalog.models import TrainingRun
    from training import runs

    run = TrainingRun(id=7, kind="gray", dataset="g-v1", arch="resnet18", status="succeeded", model_version="gray-r7")
    runs.finish(run)
    summary = runs.run_summary(run)
    assert list(summary) == TRAIN_JSON_KEYS
    assert TrainResult(**summary).as_dict() == summary  # no test split: no test keys
    tested = {**summary, "test_accuracy": 0.9, "test_mean_detection_rate": 0.85, "test_images": 40}
    assert TrainResult(**tested).as_dict() == tested
    assert list(TrainResult.model_fields) == TRAIN_JSON_KEYS + TEST_SPLIT_KEYS


def test_a_retraining_and_the_demo_train_with_train_params():
    from demo.public_sets import DEMO_DATASETS, DEMO_TRAINING
    from monitoring.retraining import Plan

    recorded = {**TrainParams(dataset="g-v1", epochs=4, tone_jitter=0.1).model_dump(), "driver": {"pid": 1}}
    plan = Plan(
        kind="gray",
        production_version="gray-r1",
        parent_dataset="g-v1",
        dataset="g-v1-r1",
        spec=None,
        training={k: recorded[k] for k in RETRAINED if k in recorded},
    )
    params = plan.train_params("g-v1-r1")
    assert params == TrainParams(dataset="g-v1-r1", epochs=4, tone_jitter=0.1)
    with pytest.raises(ValueError):  # a corrupt record is refused before any worker starts
        Plan(**{**plan.__dict__, "training": {**plan.training, "epochs": 0}}).train_params("g-v1-r1")
    assert {kind: p.dataset for kind, p in DEMO_TRAINING.items()} == DEMO_DATASETS


def test_the_tone_fields_are_declared_once():
    from sqlalchemy import Float

    from aoi.catalog.models import Image, Prediction, table_of
    from aoi.image_metrics import JOINT_TONE_FIELDS, TONE_FIELDS, ImageMetrics, Tone
    from features.tone_stats import TONE_COLUMNS
    from serving.answer import Answer
    from validation.specs import DEFAULT_DERIVED

    assert tuple(Tone.model_fields) == TONE_FIELDS and set(JOINT_TONE_FIELDS) <= set(TONE_FIELDS)
    for table in (Image, Prediction):
        columns = table_of(table).columns
        for name in TONE_FIELDS:  # the schema the migrations build: NOT NULL floats
            assert isinstance(columns[name].type, Float) and not columns[name].nullable, (table, name)
    assert Answer.model_fields["tone"].annotation is Tone
    assert set(TONE_FIELDS) <= set(ImageMetrics.__slots__)
    assert TONE_COLUMNS is JOINT_TONE_FIELDS and DEFAULT_DERIVED is JOINT_TONE_FIELDS


# Every stage a flow runs steps of: its steps.py holds exactly the functions the flows wrap as tasks.
STEP_MODULES = ("ingest", "validation", "datasets", "features", "training", "promotion", "monitoring", "demo")


def offered(stage: str) -> set[str]:
    """The functions a stage's steps.py offers: its own public functions, and those it names (an alias, or
    ``__all__``) from the stage's other modules."""
    module = importlib.import_module(f"{stage}.steps")
    tree = ast.parse((ROOT / stage / "steps.py").read_text())
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    names |= {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Attribute))
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    names |= set(getattr(module, "__all__", ()))
    return {n for n in names if not n.startswith("_") and inspect.isfunction(getattr(module, n))}


def test_a_stage_s_steps_module_holds_exactly_its_flows_tasks():
    wrapped: dict[str, set[str]] = {}
    for path in sorted((ROOT / "flows").glob("*.py")):
        tree = ast.parse(path.read_text())
        aliases = {
            alias.asname or alias.name: node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in STEP_MODULES
            for alias in node.names
            if alias.name == "steps"
        }
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "step":
                target = call.args[0]
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in aliases
                ):
                    wrapped.setdefault(aliases[target.value.id], set()).add(target.attr)
    for stage in STEP_MODULES:
        defined = offered(stage)
        assert defined == wrapped.get(stage, set()), (stage, defined ^ wrapped.get(stage, set()))
    services = [p.parent.name for p in ROOT.glob("*/service.py")]
    assert services == ["serving"], "service.py is the BentoML service, in serving/ only"
