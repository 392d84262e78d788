"""Demo flow: the system's main job end to end on the public data sets, one flow run with a subflow per stage.

3. ``demo-data-and-models``: ingest every set; derive a colour tone spec from the PKU batch, per class (mean ±
   2.5σ of each class: the team's one band at ± 1.5σ took a class's content for camera tone); register one dated
   blind set per source (DeepPCB's official test list; two PKU boards); SIMULATION: shoot PKU crops with 4
   simulated VRS machines, ingest their reference samples and captures (held out as a blind set), import their
   camera parameters, run the features flow (tone statistics, colour calibration); build a gray and a colour
   dataset version (the colour one validated against the spec first); train a gray and a colour model on them
   with Ray Train (a version that cannot train, e.g. missing a class of the taxonomy, is reported and skipped);
   calibrate each model's Unknown threshold on its valid split and measure its tone and compression robustness
   on its blind set; the colour model's accuracy per simulated machine with and without its colour calibration.
4. ``demo-review``: each model through `aoi promote` (blind tests, gate), approved from the terminal where its
   gate passed, and compared on its blind sets.
5. ``demo-serving``: each production model exported (ONNX fp32, then INT8) through the parity gate, accepted or
   refused with its figures; the service started in the background (left running, AOI_SERVING__RUNTIME as set:
   default auto, the fastest accepted export); each production kind answers a line trial over HTTP, and the
   service says which runtime answered it; the answers it kept for review (Unknown, REVIEW, VRS) counted.
6. ``demo-lamp-ageing``: the deployments and a worker; one simulated machine's lamp ages in requests to the
   service; an engineer labels a few of the re-shot images the service kept (``aoi review label``); SIMULATION:
   the line confirms another machine's answers wrong (``POST /feedback``); the monitor flags the ageing machine by
   its inputs and the other by live accuracy, and starts the retrain deployment, which takes the labels.

(Stages 1 and 2, the Prefect server and the public data sets, come before any flow can run: `aoi demo`.)
``report(stage, result)`` is called as each stage ends and ``say(text)`` for what a stage says while it runs, so
that the terminal shows each stage's results when it ends; both are left out when the caller wants JSON only.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

from prefect import flow

from aoi.catalog.models import utcnow
from aoi.settings import get_settings
from datasets import versions
from demo import lamp_ageing, line_loop, simulated_line, steps
from demo.public_sets import (
    COLOR_SPEC,
    DEMO_COLOR_SPEC,
    DEMO_DATASETS,
    DEMO_LINE_CAPTURES,
    DEMO_TRAINING,
    PKU_BLIND_BOARDS,
    SETS,
)
from evaluation import evaluate as evaluation
from flows import prefect_server
from flows.dataset import build_dataset
from flows.deployments import deploy
from flows.ingest_batch import ingest
from flows.line import line
from flows.monitor import monitor
from flows.tasks import step
from flows.train import train
from promotion import stages
from serving import models as served_models
from serving import process
from training.runs import TrainingError
from validation.records import Scope

Report = Callable[[str, dict], None]
Say = Callable[[str], None]

derive = step(steps.derive_spec, "derive-spec")
register_blind = step(steps.register_blind, "register-blind-set")
calibrate = step(steps.calibrate, "calibrate-unknown-threshold")
robustness = step(steps.robustness, "robustness")
check_line = step(steps.check_line, "check-simulated-line")
promote_and_approve = step(steps.promote_and_approve, "promote-and-approve")
compare_on_blind_sets = step(steps.compare_on_blind_sets, "compare-on-blind-sets")
start_service = step(steps.start_service, "start-service")
line_trial = step(steps.line_trial, "line-trial")
export_models = step(steps.export_production, "export-production-models")
runtimes = step(steps.answering, "runtime-per-kind")
kept_answers = step(steps.kept_answers, "kept-answers")
label_answers = step(steps.label_from_terminal, "label-from-terminal")
confirm_stale_machine = step(steps.confirm_stale_machine, "confirm-stale-machine")
register_deployments = step(deploy, "register-deployments")
start_worker = step(prefect_server.start_worker, "start-worker")
send_ageing_line = step(steps.send_ageing_line, "send-ageing-line")


def _quiet(*_args) -> None:
    """The callbacks' default: nothing printed (``aoi demo --json``)."""


@flow(name="demo", log_prints=True)
def demo(
    inputs: dict[str, str],
    ui_url: str = "",
    progress: bool = True,
    report: Report | None = None,
    say: Say | None = None,
) -> dict:
    """``inputs``: data set name -> folder; ``ui_url``: the Prefect UI a reviewer would answer in."""
    report, say = report or _quiet, say or _quiet
    results = data_and_models(inputs, progress)
    report("models", results)
    results["promotion"] = review_models(results["models"], ui_url, say)
    report("promotion", results["promotion"])
    results["serving"] = serve(results["blind"], say)
    report("serving", results["serving"])
    results["drift"] = lamp_ageing_drift(results["serving"], results["line"], results["promotion"])
    report("drift", results["drift"])
    return results


@flow(name="demo-data-and-models", log_prints=True)
def data_and_models(inputs: dict[str, str], progress: bool = True) -> dict:
    """Stage 3: data sets in, a spec, blind sets, the simulated line, dataset versions, models and their checks."""
    settings = get_settings()
    ingested = {
        name: ingest(path=path, format=SETS[name].format, source=SETS[name].source, progress=progress).as_dict()
        for name, path in inputs.items()
    }
    gray_batch, color_batch = ingested["deeppcb"]["batch_id"], ingested["pku-pcb-roi"]["batch_id"]
    spec, _ = derive(
        settings,
        COLOR_SPEC,
        Scope(batch_id=color_batch),
        DEMO_COLOR_SPEC["k"],
        False,
        per_class=DEMO_COLOR_SPEC["per_class"],
    )
    blind = {
        "gray": register_blind(
            settings.catalog_url,
            "deeppcb-blind-official-test",
            source="gray",
            batch_id=gray_batch,
            groups=versions.deeppcb_groups(str(Path(inputs["deeppcb"]) / "PCBData" / "test.txt")),
            note="DeepPCB's official test split (PCBData/test.txt)",
        ),
        "color": register_blind(
            settings.catalog_url,
            "pku-blind-boards-11-12",
            source="color",
            batch_id=color_batch,
            name_pattern=PKU_BLIND_BOARDS,
            note="PKU boards 11 and 12 held out",
        ),
    }
    line_folder = simulated_line.default_folder(settings)
    try:
        simulated = line(inputs["pku-pcb-roi"], str(line_folder), DEMO_LINE_CAPTURES, progress).as_dict()
    except ValueError as err:  # a copy of the PKU set too small to shoot from
        simulated = {"skipped": str(err)}
    datasets = {
        "gray": build_dataset(DEMO_DATASETS["gray"], "gray", per_class=1000).as_dict(),
        "color": build_dataset(DEMO_DATASETS["color"], "color", spec=spec.key).as_dict(),
    }
    models = {}
    for kind, version in datasets.items():
        try:
            models[kind] = train(DEMO_TRAINING[kind].model_copy(update={"dataset": version["name"]})).as_dict()
        except TrainingError as err:
            models[kind] = {"skipped": str(err)}
    checks = {}
    for kind, model in models.items():
        if "skipped" in model:
            continue
        try:
            threshold = calibrate(
                settings, model["model_version"], target_accuracy=settings.evaluation.calibration_target_accuracy
            )
        except evaluation.EvaluationError as err:  # out of reach on this valid split: the default stays
            threshold = {"skipped": str(err)}
        checks[kind] = {
            "calibration": threshold,
            "robustness": robustness(settings, model["model_version"], blind[kind]["name"]),
        }
    color_model = models.get("color", {}).get("model_version")
    if "skipped" not in simulated:
        simulated["check"] = check_line(settings, line_folder, color_model)
    return {
        "ingest": ingested,
        "spec": spec.key,
        "blind": blind,
        "line": simulated,
        "datasets": datasets,
        "models": models,
        "checks": checks,
    }


@flow(name="demo-review", log_prints=True)
def review_models(models: dict, ui_url: str = "", say: Say | None = None) -> dict:
    """Stage 4: promote each trained model through its gate; approve from the terminal where the gate passed."""
    settings = get_settings()
    out = {}
    for kind, model in models.items():
        if "skipped" in model:
            continue
        out[kind] = promote_and_approve(
            settings,
            model["model_version"],
            ui_url,
            reviewer="demo-reviewer",
            comment="approved by `aoi demo` from the terminal",
            say=say or _quiet,
        )
        out[kind]["comparison"] = compare_on_blind_sets(
            settings, [model["model_version"]], stages.blind_sets(settings, kind)
        )
    return out


@flow(name="demo-serving", log_prints=True)
def serve(blind: dict, say: Say | None = None) -> dict:
    """Stage 5: export each production model, start the service in the background (left running), send each
    production kind a line trial, say which runtime answered it, and count the answers kept for review."""
    settings = get_settings()
    production = served_models.production_versions(settings)
    kinds = [kind for kind in production if kind in blind]
    if not kinds:
        return {"skipped": "no model reached production"}
    (say or _quiet)("exporting the production models (ONNX fp32, then INT8), each judged by the parity gate")
    exported = export_models(settings, {kind: production[kind] for kind in kinds})
    try:
        served = start_service(settings)
    except process.ServeError as err:
        return {"skipped": str(err), "exports": exported}
    (say or _quiet)(f"classification service: {served.url} (pid {served.pid}; `aoi serve --stop` stops it)")
    trials = [line_trial(settings, served.url, kind, blind[kind]["name"]) for kind in kinds]
    answering = runtimes(settings, served.url)
    for trial in trials:
        trial.update({k: v for k, v in answering.get(trial["kind"], {}).items() if k != "model_version"})
    try:
        kept = kept_answers(settings, served.url)
    except line_loop.LoopError as err:
        kept = {"skipped": str(err)}
    return {"url": served.url, "log": str(served.log), "exports": exported, "trials": trials, "kept_answers": kept}


@flow(name="demo-lamp-ageing", log_prints=True)
def lamp_ageing_drift(serving: dict, simulated: dict, promotion: dict) -> dict:
    """Stage 6: register the deployments, start a worker, send the simulated line with one lamp ageing to the
    service; label a few kept answers from the terminal; SIMULATION: confirm another machine's answers wrong; run
    the monitor on those answers: it should flag both machines, each for its own reason, and start one retraining
    (which takes the labels)."""
    settings = get_settings()
    if "url" not in serving or "skipped" in simulated:
        return {"skipped": "needs the running service and the simulated line"}
    if promotion.get("color", {}).get("stage") != "production":
        return {"skipped": "no colour model reached production"}
    with contextlib.redirect_stdout(io.StringIO()):  # Prefect's table of each deployment: the demo lists them
        deployed = register_deployments(settings)
    worker = prefect_server.owned_pid(settings, "worker") or start_worker(settings)
    started = utcnow()
    truth = simulated_line.default_folder(settings) / "ageing-answers.jsonl"  # the simulation's truth per answer
    sent = send_ageing_line(settings, serving["url"], lamp_ageing.line_images(settings, "color"), truth_file=truth)
    out: dict = {"deployments": [d["deployment"] for d in deployed["deployments"]], "worker_pid": worker}
    out["requests"] = sent
    try:  # the kept answers and the prediction log written: the queue and the log hold every answer sent
        out["kept_answers"] = kept_answers(settings, serving["url"])
    except line_loop.LoopError as err:
        out["kept_answers"] = {"skipped": str(err)}
    try:  # before the monitor starts the retraining: its 'confirmed-answers' step takes these labels
        out["review"] = label_answers(settings, truth)
    except line_loop.LoopError as err:
        out["review"] = {"skipped": str(err)}
    out["stale_machine"] = confirm_stale_machine(settings, serving["url"], truth)
    checked = monitor(kind="color", since=started.isoformat()).as_dict()
    out["stale_machine"]["verdict"] = line_loop.stale_verdict(checked, "color")
    return {**out, "monitor": checked, "retraining": checked["kinds"]["color"]["retraining"]}
