"""Simulated-line flow (a SIMULATION, see demo/simulated_line.py): shoot the PKU crops with four simulated VRS
machines (each part number with its own tone on each machine) -> ingest their reference samples and their line
captures -> import their camera parameters -> hold the captures out as a blind set -> features (tone statistics,
calibration, online store)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from aoi.settings import get_settings
from datasets import steps as dataset_steps
from demo import simulated_line
from demo.steps import LineResult
from features import steps as feature_steps
from flows.ingest_batch import ingest
from flows.refresh_features import features
from flows.tasks import step

shoot = step(simulated_line.simulate, "shoot-simulated-line")
import_camera_params = step(feature_steps.import_camera_params, "import-camera-params")
hold_out = step(dataset_steps.hold_out, "register-blind-set")


@flow(name="simulated-line", log_prints=True)
def line(source: str, out: str, per_machine: int = 150, progress: bool = True) -> LineResult:
    settings = get_settings()
    folder = Path(out)
    shot = shoot(Path(source), folder, reference_id=settings.features.reference_machine, per_machine=per_machine)
    reference = ingest(
        path=str(folder / "reference.csv"), format="csv", source="color", progress=progress, reference=True
    )
    captures = ingest(path=str(folder / "captures.csv"), format="csv", source="color", progress=progress)
    params = import_camera_params(settings, folder / "camera_params.csv")
    blind = None
    if captures.added:  # a re-run adds nothing: its captures are held out already
        blind = hold_out(
            settings.catalog_url,
            f"simulated-line-b{captures.batch_id}",
            source="color",
            batch_id=captures.batch_id,
            note="SIMULATION: PKU boards 11-12 shot by 4 simulated VRS",
        )
    return LineResult(
        simulation=simulated_line.NOTICE,
        folder=out,
        machines=[m["machine_id"] for m in shot["machines"]],
        reference=reference,
        captures=captures,
        camera_params=params,
        blind=blind,
        features=features(),
    )
