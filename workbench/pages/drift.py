"""Drift: the checks per kind and per machine over time, the drift episodes, and the Evidently HTML reports (and
the evaluations' reports), served from the reports folder under AOI_HOME by a route that serves nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse
from sqlmodel import Session

from aoi.catalog.models import AppUser
from aoi.settings import Settings
from workbench import charts, queries
from workbench.auth import current_user
from workbench.db import app_settings, catalog
from workbench.reports import report_file, report_href
from workbench.templating import render

router = APIRouter()


@router.get("/reports/{relative:path}")
def report(
    relative: str, user: AppUser = Depends(current_user), settings: Settings = Depends(app_settings)
) -> FileResponse:
    return FileResponse(report_file(settings, relative))


@router.get("/drift", response_class=HTMLResponse)
def drift_page(
    request: Request,
    kind: str | None = None,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> HTMLResponse:
    checks = queries.drift_checks(db, kind or None)
    machines = {k: queries.machines_over_time(rows) for k, rows in checks.items()}
    trends = {
        k: charts.trend(queries.drift_trend(rows), title=f"{k}: drift share of the checks over time")
        for k, rows in checks.items()
    }
    return render(
        request,
        "drift.html",
        checks=checks,
        machines=machines,
        trends=trends,
        episodes=queries.drift_episodes(db),
        kind=kind,
        report_href=lambda path: report_href(settings, path),
    )
