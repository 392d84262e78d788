"""Deployments: what the Prefect server can start, on which work pool and schedule (``aoi deploy``).

- ``retrain/gray`` and ``retrain/color``: on the retrain cron (weekly by default); the monitor starts them on drift;
- ``monitor/every-interval``: a drift check of every kind with a production model, every monitor interval;
- every other flow as ``<flow>/on-demand``, started from the UI or ``prefect deployment run``.

A worker loads an entrypoint as a script, with ``flows/`` first on ``sys.path``: no module here may share a name
with a top-level package (hence ``refresh_features.py``, ``ingest_batch.py`` and ``run_demo.py``, not ``features.py``,
``ingest.py`` or ``demo.py``). A test loads each one so.

All run on one process work pool (``AOI_MONITORING__WORK_POOL``) from this checkout; ``aoi worker`` serves it.
On Kubernetes only the pool's type and base job template change (infra/).
"""

from __future__ import annotations

from pathlib import Path

from aoi.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("gray", "color")
ON_DEMAND = {
    "ingest": "flows/ingest_batch.py:ingest",
    "validate": "flows/validate.py:validate",
    "build-dataset": "flows/dataset.py:build_dataset",
    "features": "flows/refresh_features.py:features",
    "train": "flows/train.py:train",
    "promote": "flows/promote.py:promote",
    "simulated-line": "flows/line.py:line",
}


def deployments(settings: Settings) -> list[dict]:
    """Every deployment as data: flow, name, entrypoint, schedule, parameters."""
    config = settings.monitoring
    out = [
        {
            "flow": "retrain",
            "name": kind,
            "entrypoint": "flows/retrain.py:retrain",
            "cron": config.retrain_cron,
            "parameters": {"kind": kind, "reason": "scheduled"},
        }
        for kind in KINDS
    ]
    out.append(
        {
            "flow": "monitor",
            "name": "every-interval",
            "entrypoint": "flows/monitor.py:monitor",
            "interval": config.monitor_interval_s,
            "parameters": {},
        }
    )
    out += [
        {"flow": flow, "name": "on-demand", "entrypoint": entry, "parameters": {}} for flow, entry in ON_DEMAND.items()
    ]
    return out


def ensure_work_pool(name: str, kind: str = "process") -> bool:
    """Create the work pool (of type ``kind``) when missing; True when created now. An existing pool of another
    type is refused: its workers could not run what the settings describe."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type=kind))
        except ObjectAlreadyExists:
            existing = client.read_work_pool(name).type
            if existing != kind:
                raise ValueError(
                    f"work pool {name} is a {existing} pool, but AOI_MONITORING__WORK_POOL_TYPE is "
                    f"{kind}: set it to {existing}, or name another pool"
                ) from None
            return False
    return True


def deploy(settings: Settings) -> dict:
    """Register (or update: same names) every deployment on the Prefect server this process points at."""
    from prefect import flow

    pool = settings.monitoring.work_pool
    created = ensure_work_pool(pool, settings.monitoring.work_pool_type)
    registered = []
    for d in deployments(settings):
        source = flow.from_source(source=str(ROOT), entrypoint=d["entrypoint"])
        deployment_id = source.deploy(
            name=d["name"],
            work_pool_name=pool,
            cron=d.get("cron"),
            interval=d.get("interval"),
            parameters=d["parameters"],
            print_next_steps=False,
        )
        schedule = (
            f"cron {d['cron']}" if d.get("cron") else (f"every {d['interval']} s" if d.get("interval") else "on demand")
        )
        registered.append(
            {
                "deployment": f"{d['flow']}/{d['name']}",
                "id": str(deployment_id),
                "schedule": schedule,
                "entrypoint": d["entrypoint"],
            }
        )
    return {"work_pool": pool, "work_pool_created": created, "deployments": registered}
