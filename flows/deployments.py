"""Deployments: what the Prefect server can start, on which work pool and schedule (``aoi deploy``).

They are declared once, in the repository's ``prefect.yaml`` (Prefect's project file, which ``prefect deploy --all``
reads too):

- ``retrain/gray`` and ``retrain/color``: on the retrain cron (weekly by default); the monitor starts them on drift;
- ``monitor/every-interval``: a drift check of every kind with a production model, every monitor interval;
- every other flow as ``<flow>/on-demand``, started from the UI or ``prefect deployment run``.

A worker loads an entrypoint as a script, with ``flows/`` first on ``sys.path``: no module here may share a name
with a top-level package (hence ``refresh_features.py``, ``ingest_batch.py`` and ``run_demo.py``, not ``features.py``,
``ingest.py`` or ``demo.py``). A test loads each one so.

``aoi deploy`` registers what the file declares with this installation's settings in place of the file's default
values: the retrain cron (AOI_MONITORING__RETRAIN_CRON), the monitor interval (AOI_MONITORING__MONITOR_INTERVAL_S)
and the work pool (AOI_MONITORING__WORK_POOL). All run on one process work pool from this checkout; ``aoi worker``
serves it. On Kubernetes only the pool's type and base job template change (infra/).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aoi.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = ROOT / "prefect.yaml"


def declared() -> list[dict]:
    """The deployments of prefect.yaml, as Prefect reads them (YAML anchors resolved)."""
    return yaml.safe_load(PROJECT_FILE.read_text())["deployments"]


def deployments(settings: Settings) -> list[dict]:
    """Every deployment of prefect.yaml as data: name, entrypoint, schedule, parameters, with the schedules of
    ``settings``. Only the retrain deployments have a cron schedule and only the monitor an interval."""
    config = settings.monitoring
    out = []
    for d in declared():
        entry = {"name": d["name"], "entrypoint": d["entrypoint"], "parameters": d.get("parameters") or {}}
        for schedule in d.get("schedules") or []:
            if "cron" in schedule:
                entry["cron"] = config.retrain_cron
            if "interval" in schedule:
                entry["interval"] = config.monitor_interval_s
        out.append(entry)
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
        # set_working_directory to this checkout: the pull step `prefect deploy` makes when run from ROOT
        source = flow.from_source(source=str(ROOT), entrypoint=d["entrypoint"])
        deployment_id = source.deploy(
            name=d["name"],
            work_pool_name=pool,
            cron=d.get("cron"),
            interval=d.get("interval"),
            parameters=d["parameters"],
            print_next_steps=False,
            ignore_warnings=True,  # Prefect's hint to use .serve on a process pool, once per deployment
        )
        schedule = (
            f"cron {d['cron']}" if d.get("cron") else (f"every {d['interval']} s" if d.get("interval") else "on demand")
        )
        registered.append(
            {
                "deployment": f"{source.name}/{d['name']}",
                "id": str(deployment_id),
                "schedule": schedule,
                "entrypoint": d["entrypoint"],
            }
        )
    return {"work_pool": pool, "work_pool_created": created, "deployments": registered}
