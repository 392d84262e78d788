"""The demo flow's steps that come from the stages (the flow itself wires them; the Prefect server, deployments
and worker it also starts are orchestration, wrapped in ``flows/run_demo.py``). One place lists what each of
the demo's subflows runs as a task."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from datasets.versions import register_blind
from demo.exports import answering, export_production
from demo.lamp_ageing import send as send_ageing_line
from demo.line_loop import confirm_stale_machine, kept_answers, label_from_terminal
from demo.review import promote_and_approve
from evaluation.evaluate import calibrate, robustness
from evaluation.line_check import check as check_line
from features.steps import FeaturesResult
from ingest.steps import BatchResult
from promotion.compare import compare as compare_on_blind_sets
from serving.process import start_background as start_service
from serving.trial import line_trial
from validation.records import derive_spec


class LineResult(BaseModel):
    """What the simulated-line flow returns (``aoi line simulate --json``; a SIMULATION): the machines shot, the
    batches of reference samples and captures, the camera parameters imported, the blind set the captures
    became (None on a re-run, which adds nothing) and the features refreshed."""

    model_config = ConfigDict(frozen=True)

    simulation: str
    folder: str
    machines: list[str]
    reference: BatchResult
    captures: BatchResult
    camera_params: dict
    blind: dict | None
    features: FeaturesResult

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")


__all__ = [
    "LineResult",
    "answering",
    "calibrate",
    "check_line",
    "compare_on_blind_sets",
    "confirm_stale_machine",
    "derive_spec",
    "export_production",
    "kept_answers",
    "label_from_terminal",
    "line_trial",
    "promote_and_approve",
    "register_blind",
    "robustness",
    "send_ageing_line",
    "start_service",
]
