"""Dataset versions: the list with role, source, lineage and counts; one version's cleaning table and splits per
class; and (engineers) a button that starts the ``build-dataset`` deployment with this version as parent."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from aoi.catalog.models import AppUser, UserRole
from aoi.settings import Settings
from workbench import orchestrator, queries
from workbench.auth import current_user, require
from workbench.db import app_settings, catalog
from workbench.templating import render

router = APIRouter()
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SPLIT = re.compile(r"^\d+:\d+:\d+$")


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(
    request: Request, user: AppUser = Depends(current_user), db: Session = Depends(catalog)
) -> HTMLResponse:
    return render(request, "datasets.html", versions=queries.dataset_versions(db))


def _detail(db: Session, name: str) -> queries.DatasetDetail:
    detail = queries.dataset_detail(db, name)
    if detail is None:
        raise HTTPException(404, f"no dataset version {name}")
    return detail


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(
    request: Request, name: str, user: AppUser = Depends(current_user), db: Session = Depends(catalog)
) -> HTMLResponse:
    return render(request, "dataset.html", d=_detail(db, name), started=None, error=None, form=None)


@router.post("/datasets/{name}/build", response_class=HTMLResponse)
def build_next_version(
    request: Request,
    name: str,
    new_name: str = Form(...),
    spec: str = Form(""),
    per_class: str = Form(""),
    split: str = Form("8:1:1"),
    seed: int = Form(0),
    user: AppUser = Depends(require(UserRole.engineer)),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> HTMLResponse:
    """Start ``build-dataset`` for a new version with ``name`` as its parent; the page links the flow run."""
    d = _detail(db, name)
    form = {"new_name": new_name, "spec": spec, "per_class": per_class, "split": split, "seed": seed}
    error = None
    if d.summary.role != "train":
        error = f"{name} is a {d.summary.role} set: only a training version is built from a parent"
    elif not VERSION_NAME.match(new_name.strip()):
        error = "the new version's name: letters, digits, '.', '_' and '-' (up to 128)"
    elif not SPLIT.match(split.strip()):
        error = "the split is three whole numbers like 8:1:1"
    elif per_class.strip() and not (per_class.strip().isdigit() and int(per_class) > 0):
        error = "images per class: a whole number above 0, or empty for no cap"
    elif queries.dataset_detail(db, new_name.strip()) is not None:
        error = f"a dataset version {new_name.strip()} exists already: versions are immutable"
    if error:
        return render(request, "dataset.html", status_code=400, d=d, started=None, error=error, form=form)
    parameters = {
        "name": new_name.strip(),
        "source": d.summary.source,
        "spec": spec.strip() or None,
        "per_class": int(per_class) if per_class.strip() else None,
        "split": split.strip(),
        "seed": seed,
        "parent": name,
    }
    try:
        started = orchestrator.start_deployment(settings, orchestrator.BUILD_DATASET, parameters)
    except orchestrator.PrefectUnreachable as err:
        return render(request, "dataset.html", status_code=503, d=d, started=None, error=f"Prefect: {err}", form=form)
    return render(request, "dataset.html", status_code=202, d=d, started=started, error=None, form=form)
