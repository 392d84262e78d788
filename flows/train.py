"""Train flow: check the request -> record the run -> fit with Ray -> keep the best checkpoint as a candidate."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from aoi.settings import get_settings
from training import steps

prepare = task(name="check-request", cache_policy=NO_CACHE)(steps.prepare)
start_run = task(name="start-run", cache_policy=NO_CACHE)(steps.start_run)
fit = task(name="ray-train", cache_policy=NO_CACHE)(steps.fit)
record = task(name="register-model", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(steps.record)
fail_run = task(name="fail-run", cache_policy=NO_CACHE)(steps.fail_run)


@flow(name="train", log_prints=True)
def train(
    dataset: str,
    arch: str = "resnet18",
    epochs: int = 3,
    workers: int = 1,
    gpu: bool = False,
    per_class: int = 500,
    batch_size: int = 64,
    lr: float = 1e-3,
    input_size: int = 64,
    seed: int = 0,
    tone_jitter: float = 0.0,
    amp: bool | None = None,
) -> dict:
    settings = get_settings()
    request = steps.TrainRequest(
        dataset=dataset,
        arch=arch,
        epochs=epochs,
        workers=workers,
        gpu=gpu,
        per_class=per_class,
        batch_size=batch_size,
        lr=lr,
        input_size=input_size,
        seed=seed,
        tone_jitter=tone_jitter,
        amp=amp,
    )
    spec, info = prepare(settings, request)
    run_id = start_run(settings, request, info)
    try:
        result = fit(settings, spec, run_id)
    except BaseException as err:
        fail_run(settings, run_id, err)
        raise
    return record(settings, run_id, spec, result)
