"""Retrain flow: new inbox batches, and the answers confirmed in the review queue as one more batch -> validated
dataset version (parent: production's) -> features -> train -> calibrate the new model's Unknown threshold on its
valid split -> promote (gate, then a person's approval in the Prefect UI). Run weekly and by the monitor on drift."""

from __future__ import annotations

from prefect import flow

from aoi.settings import get_settings
from flows.dataset import build_dataset
from flows.ingest_batch import ingest
from flows.promote import promote
from flows.refresh_features import features
from flows.tasks import step
from flows.train import train
from ingest import steps as ingest_steps
from monitoring import steps

make_plan = step(steps.retraining_plan, "retraining-plan")
calibrate = step(steps.calibrate_threshold, "calibrate-unknown-threshold")
take_confirmed = step(ingest_steps.confirmed_answers, "confirmed-answers", retries=2)


@flow(name="retrain", log_prints=True)
def retrain(kind: str, reason: str = "scheduled", approval_timeout_s: int | None = None) -> steps.RetrainResult:
    settings = get_settings()
    plan = make_plan(settings, kind)
    print(
        f"retraining the {kind} model ({reason}): from {plan.production_version}, "
        f"{len(plan.batches)} inbox batches, new dataset version {plan.dataset}"
    )
    ingested = [ingest(path=path, format=fmt, source=kind, progress=False) for path, fmt in plan.batches]
    confirmed = take_confirmed(settings, kind)  # labels from the review queue: one more inbox batch
    if confirmed is not None:
        print(
            f"{confirmed.added} answers confirmed in the review queue became training images (batch "
            f"{confirmed.batch_id}); {confirmed.quarantined} quarantined"
        )
        ingested.append(confirmed)
    version = build_dataset(plan.dataset, kind, spec=plan.spec, parent=plan.parent_dataset, **plan.dataset_options)
    refreshed = features()
    model = train(plan.train_params(version.name))
    if model.model_version is None:  # a run that records no model raises before this; kept for the type
        raise RuntimeError(f"training run {model.run_id} recorded no model version")
    calibration = calibrate(settings, model.model_version)
    if calibration["threshold"] is None:
        print(f"warning: {calibration['skipped']}; the default Unknown threshold stays")
    decision = promote(model.model_version, timeout_s=approval_timeout_s)
    return steps.RetrainResult(
        kind=kind,
        reason=reason,
        plan=plan.as_dict(),
        ingest=ingested,
        dataset=version,
        features=refreshed,
        model=model,
        calibration=calibration,
        promotion=decision,
    )
