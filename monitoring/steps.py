"""The ``monitor`` flow's steps, as it wraps them in tasks: the model's reference frame, the window's answers,
the comparisons overall, per machine and per part number, the policy's decision, the retraining request and the
catalog row. The helpers they use live in ``frames.py`` (frames), ``check.py`` (windows, verdicts, summaries)
and ``policy.py`` (verdicts and drift episodes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pandas as pd
from pydantic import BaseModel, ConfigDict

from aoi.catalog import db
from aoi.catalog.models import DriftCheck, utcnow
from aoi.settings import Settings
from datasets.steps import BuiltVersion
from features.steps import FeaturesResult
from ingest.steps import BatchResult
from monitoring import frames, history, live, parts, policy, retraining
from monitoring.check import (
    RETRAIN_DEPLOYMENT,
    Window,
    _brief,
    _machine_verdicts,
    _machines,
    _no_reference,
    _parts,
    _report_path,
)
from monitoring.drift import compare
from monitoring.frames import answers_for, line_inputs, reference_path, with_class_answers
from monitoring.policy import Decision, _open, close, open_episode
from promotion.steps import PromotionResult
from training.params import TrainResult


def reference(settings: Settings, model_version: str) -> pd.DataFrame:
    """The model's reference frame (cached: a model version and its dataset version never change)."""
    path = reference_path(settings, model_version)
    if path.exists():
        return pd.read_parquet(path)
    from features.store import write_parquet
    from training.registry import load_model_version

    loaded = load_model_version(settings, model_version)
    inputs = line_inputs(settings, loaded.row.dataset)
    answered = answers_for(settings, loaded, inputs.loc[inputs["split"] != "train", "sha256"].tolist())
    frame = with_class_answers(inputs, answered)
    write_parquet(frame, path)
    return frame


def load_window(settings: Settings, kind: str, version: str, window: Window) -> tuple[pd.DataFrame, int]:
    """The window's answers, each calibrated machine's tone mapped to the reference tone; and how many were."""
    return frames.calibrate_window(settings, frames.window(settings, kind, version, window.start, window.end))


def compare_scopes(
    settings: Settings, kind: str, reference: pd.DataFrame, current: pd.DataFrame, html: bool = True
) -> dict:
    """The verdict over all answers, per machine and per part number; an HTML report for the whole window and
    for each flagged machine. Every answer is judged against reference images of its own part number
    (``monitoring.parts``); answers of a part with no reference are reported, not judged. Scopes with too few
    answers get no verdict of their own."""
    config = settings.monitoring
    now = utcnow()
    judged, unreferenced = parts.split(reference, current, config.min_part_reference)
    notes = [_no_reference(p, n) for p, n in unreferenced.items()]
    if len(judged) < config.min_samples:
        return {
            "overall": {
                "samples": len(judged),
                **policy.too_few(len(judged), config.min_samples).as_dict(),
                "notes": notes,
            },
            "machines": _machines(settings, reference, current, judged, unreferenced, html, now, kind),
            "parts": _parts(settings, reference, current, unreferenced),
            "report": None,
        }
    overall = compare(parts.matched(reference, judged, config.min_part_reference), judged, config)
    overall_html = overall.save_html(_report_path(settings, kind, "all", now)) if html else None
    # the history a person browses with `evidently ui`: the whole window's run, one per check (html: a real check)
    saved = history.add_check(settings, kind, overall.snapshot, f"{kind} {now:%Y-%m-%d %H:%M:%S}") if html else None
    return {
        "overall": {**_brief(overall), **policy.judge(overall, config).as_dict(), "notes": notes},
        "machines": _machines(settings, reference, current, judged, unreferenced, html, now, kind),
        "parts": _parts(settings, reference, current, unreferenced),
        "report": str(overall_html) if overall_html else None,
        "history": saved,
    }


def live_accuracy(settings: Settings, kind: str, version: str, window: Window) -> dict:
    """The window's confirmed answers of the model, per kind, machine, part and machine/part, against the model's
    blind accepted accuracy (``monitoring.live``)."""
    blind = live.blind_accuracy(settings, version)
    frame = live.confirmed(settings, kind, version, window.start, window.end)
    scopes = live.scopes(frame, kind, blind["accuracy"] if blind else None, settings.monitoring)
    return {"blind": blind, "scopes": scopes}


def prune_reports(settings: Settings, kind: str) -> list[str]:
    """The kind's HTML reports beyond ``AOI_MONITORING__REPORT_RETENTION`` removed (``monitoring.history``)."""
    return history.prune_reports(settings, kind)


def decide(
    settings: Settings,
    kind: str,
    drift: bool | None,
    machines: list[str],
    allow_trigger: bool,
    retraining_ended: Callable[[str], bool],
) -> Decision:
    """What this check's verdict does to the kind's episode. ``retraining_ended(flow_run_id)`` asks Prefect."""
    episode = open_episode(settings, kind)
    if drift is None:
        return Decision("too few samples", episode_id=episode.id if episode else None)
    if drift:
        if episode is not None:
            return Decision(f"drift: retraining already triggered (episode {episode.id})", episode_id=episode.id)
        if not allow_trigger:
            return Decision("drift: not triggered (--no-trigger)")
        opened = _open(settings, kind, machines)
        if opened is None:  # another check opened it a moment ago
            racer = open_episode(settings, kind)
            return Decision("drift: retraining already triggered", episode_id=racer.id if racer else None)
        return Decision("drift: retraining triggered", trigger=True, episode_id=opened)
    if episode is None:
        return Decision("clean")
    if episode.retrain_flow_run_id and not retraining_ended(episode.retrain_flow_run_id):
        return Decision(f"clean: episode {episode.id} stays open until its retraining ends", episode_id=episode.id)
    closed = db.saved_id(episode)
    close(settings, closed)
    return Decision(f"clean: episode {closed} closed", episode_id=closed)


def request_retraining(settings: Settings, kind: str, episode_id: int, reason: str) -> dict:
    """Start the kind's retrain deployment (whatever work pool serves it); a failure closes the episode so that
    the next drifted check tries again."""
    name = RETRAIN_DEPLOYMENT.format(kind=kind)
    try:
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        # called from sync code, run_deployment runs itself and returns the flow run (its type says "or a coroutine")
        run = cast(
            FlowRun, run_deployment(name, parameters={"kind": kind, "reason": f"drift: {reason}"[:500]}, timeout=0)
        )
    except Exception as err:  # no deployment, server down: recorded, and retried by the next drifted check
        policy.close(settings, episode_id, error=f"{type(err).__name__}: {err}")
        return {"triggered": False, "error": f"{type(err).__name__}: {err}"[:500]}
    policy.triggered(settings, episode_id, str(run.id))
    return {"triggered": True, "flow_run_id": str(run.id), "deployment": name}


def record(
    settings: Settings,
    kind: str,
    version: str,
    window: Window,
    reference: pd.DataFrame,
    scopes: dict,
    drift: bool | None,
    decision: policy.Decision,
    flow_run_id: str | None,
) -> int:
    overall = scopes["overall"]
    row = DriftCheck(
        kind=kind,
        model_version=version,
        window_start=window.start,
        window_end=window.end,
        samples=overall["samples"],
        reference_samples=len(reference),
        drifted_columns=overall.get("drifted_columns", []),
        drift_share=overall.get("drift_share"),
        unknown_rate=overall.get("unknown_rate"),
        reference_unknown_rate=overall.get("reference_unknown_rate"),
        machines=_machine_verdicts(scopes),
        drift=drift,
        decision=decision.text[:160],
        report_path=scopes["report"],
        episode_id=decision.episode_id,
        flow_run_id=flow_run_id,
        live_accuracy=scopes.get("live_accuracy"),
    )
    with db.session(settings.catalog_url) as s:
        s.add(row)
        s.commit()
        return db.saved_id(row)


class MonitorResult(BaseModel):
    """What the monitor flow returns (``aoi monitor --json``): drift when any kind drifted (None: too few answers
    to say), the answers it judged, and the figures per machine and part ('kind/machine') and per kind."""

    model_config = ConfigDict(frozen=True)

    drift: bool | None
    samples: int
    drifted_columns: list[str]
    machines: dict[str, dict]
    parts: dict[str, dict]
    live_accuracy: list[dict] = []  # per kind, machine, part and machine/part (``monitoring.live``)
    kinds: dict[str, dict]

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")


class RetrainResult(BaseModel):
    """What the retrain flow returns: its plan, the inbox batches it ingested, the dataset version it built, the
    features refreshed, the model trained and the promotion's outcome."""

    model_config = ConfigDict(frozen=True)

    kind: str
    reason: str
    plan: dict
    ingest: list[BatchResult]
    dataset: BuiltVersion
    features: FeaturesResult
    model: TrainResult
    calibration: dict
    promotion: PromotionResult

    def as_dict(self) -> dict:
        return {**self.model_dump(mode="json"), "model": self.model.as_dict(), "promotion": self.promotion.as_dict()}


# The retrain flow's first step: what a retraining starts from (kept with the inbox rules in ``retraining``).
retraining_plan = retraining.plan


def calibrate_threshold(settings: Settings, version: str) -> dict:
    """The new model's Unknown threshold, fitted on its valid split as the demo does for its first models (the gate
    judges a model at its own threshold: uncalibrated, the default's high Unknown rate fails it whatever its
    accuracy). A valid split on which no threshold reaches the target keeps the default, and says why."""
    from evaluation.evaluate import EvaluationError, calibrate

    target = settings.evaluation.calibration_target_accuracy
    try:
        return calibrate(settings, version, target_accuracy=target)
    except EvaluationError as err:
        return {"model_version": version, "threshold": None, "target_accuracy": target, "skipped": str(err)}
