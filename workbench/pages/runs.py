"""Training records: the platform manual's table per kind and the trend of the last 10 runs of each kind."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from aoi.catalog.models import AppUser
from workbench import charts, queries
from workbench.auth import current_user
from workbench.db import catalog
from workbench.templating import render

router = APIRouter()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, user: AppUser = Depends(current_user), db: Session = Depends(catalog)) -> HTMLResponse:
    kinds = queries.runs_by_kind(db)
    trends = {
        kind: charts.trend(queries.trend(runs), title=f"{kind}: mean detection rate of the last runs")
        for kind, runs in kinds.items()
    }
    return render(request, "runs.html", kinds=kinds, trends=trends, duration=duration)
