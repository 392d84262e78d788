"""Demo flow: the system's main job end to end on the public data sets. Each stage an issue adds joins here."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from aoi.settings import get_settings
from datasets import versions
from demo import simulated_line
from demo.public_sets import DEMO_COLOR_SPEC, DEMO_DATASETS, SETS
from evaluation import evaluate as evaluation
from evaluation import line_check
from flows.dataset import build_dataset
from flows.ingestion import ingest
from flows.line import line
from flows.train import train
from training.runs import TrainingError
from validation.steps import Scope, derive_spec

COLOR_SPEC = "pku-color-tone"
PKU_BLIND_BOARDS = r"^(11|12)_"  # PKU file names start with the board number: two boards held out

derive = task(name="derive-spec", cache_policy=NO_CACHE)(derive_spec)
register_blind = task(name="register-blind-set", cache_policy=NO_CACHE)(versions.register_blind)
calibrate = task(name="calibrate-unknown-threshold", cache_policy=NO_CACHE)(evaluation.calibrate)
robustness = task(name="robustness", cache_policy=NO_CACHE)(evaluation.robustness)
check_line = task(name="check-simulated-line", cache_policy=NO_CACHE)(line_check.check)
DEMO_LINE_CAPTURES = 100  # per simulated machine
# Small enough for 2 CPU cores in a few minutes per model; `aoi train` takes bigger settings. Gray test accuracy
# grows with epochs (2 cores, bfloat16 steps, 600/class, batch 32): 6 epochs 95%, 9 epochs 96.6% in ~240 s,
# 20 epochs 97.9% in ~490 s. The colour set, with fewer and more distinct classes, reaches 94-98% with 3 x 300.
DEMO_TRAINING = {
    "gray": {"epochs": 9, "per_class": 600, "batch_size": 32, "lr": 2e-3, "input_size": 64},
    # Tone jitter: the gate refuses a colour model that loses over 5 points when one channel is off by 10%
    # (docs/domain.md#joint-tone).
    "color": {"epochs": 3, "per_class": 300, "batch_size": 64, "input_size": 64, "tone_jitter": 0.12},
}
# The Unknown filter's threshold: the least Unknown that keeps 99% of accepted answers right on the valid split.
DEMO_TARGET_ACCURACY = 0.99


@flow(name="demo", log_prints=True)
def demo(inputs: dict[str, str], progress: bool = True) -> dict:
    """``inputs``: data set name -> folder.

    1. ingest every set; 2. derive a colour tone spec from the PKU batch, per class (mean ± 2.5σ of each class:
       the team's one band at ± 1.5σ took a class's content for camera tone);
    3. register one dated blind set per source (DeepPCB's official test list; two PKU boards); SIMULATION: shoot
       PKU crops with 4 simulated VRS machines, ingest their reference samples and captures (held out as a blind
       set), import their camera parameters, run the features flow (tone statistics, colour calibration);
    4. build a gray and a colour dataset version (the colour one validated against the spec first);
    5. train a gray and a colour model on them with Ray Train (a version that cannot train, e.g. missing a
       class of the taxonomy, is reported and skipped);
    6. calibrate each model's Unknown threshold on its valid split and measure its tone and compression
       robustness on its blind set; the colour model's accuracy per simulated machine with and without its
       colour calibration. (Promotion, which pauses for a person, runs after this flow: `aoi demo`.)
    """
    settings = get_settings()
    ingested = {
        name: ingest(path=path, format=SETS[name].format, source=SETS[name].source, progress=progress)
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
        simulated = line(inputs["pku-pcb-roi"], str(line_folder), DEMO_LINE_CAPTURES, progress)
    except ValueError as err:  # a copy of the PKU set too small to shoot from
        simulated = {"skipped": str(err)}
    datasets = {
        "gray": build_dataset(DEMO_DATASETS["gray"], "gray", per_class=1000),
        "color": build_dataset(DEMO_DATASETS["color"], "color", spec=spec.key),
    }
    models = {}
    for kind, version in datasets.items():
        try:
            models[kind] = train(version["name"], **DEMO_TRAINING[kind])
        except TrainingError as err:
            models[kind] = {"skipped": str(err)}
    checks = {}
    for kind, model in models.items():
        if "skipped" in model:
            continue
        try:
            threshold = calibrate(settings, model["model_version"], target_accuracy=DEMO_TARGET_ACCURACY)
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
