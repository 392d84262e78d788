"""Train flow: check the request -> record the run -> fit with Ray -> keep the best checkpoint as a candidate."""

from __future__ import annotations

from prefect import flow

from aoi.settings import get_settings
from flows.tasks import step
from training import steps
from training.params import TrainParams, TrainResult

prepare = step(steps.prepare, "check-request")
start_run = step(steps.start_run, "start-run")
fit = step(steps.fit, "ray-train")
record = step(steps.record, "register-model", retries=2)
fail_run = step(steps.fail_run, "fail-run")


@flow(name="train", log_prints=True)
def train(params: TrainParams) -> TrainResult:
    settings = get_settings()
    spec, info = prepare(settings, params)
    run_id = start_run(settings, params, info)
    try:
        result = fit(settings, spec, run_id)
    except BaseException as err:
        fail_run(settings, run_id, err)
        raise
    return record(settings, run_id, spec, result)
