"""The gallery: thumbnails of the catalog's images with filters, counts per label and keyset paging."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from aoi.catalog.models import AppUser, ImageSource
from aoi.settings import Settings
from workbench import gallery as g
from workbench.auth import current_user
from workbench.db import app_settings, catalog
from workbench.templating import render

router = APIRouter()


@router.get("/gallery", response_class=HTMLResponse)
def gallery(
    request: Request,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> HTMLResponse:
    params = dict(request.query_params)
    try:
        filters = g.parse_filters(params)
        after, before = g.parse_page(params)
    except g.FilterError as err:
        raise HTTPException(400, f"invalid filter: {err}") from None
    page = g.images_page(db, filters, after, before, settings.workbench.page_size)
    return render(
        request,
        "gallery.html",
        filters=filters,
        page=page,
        sources=[s.value for s in ImageSource],
        statuses=g.STATUSES,
    )


@router.get("/gallery/counts", response_class=HTMLResponse)
def gallery_counts(
    request: Request,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
) -> HTMLResponse:
    """Images per label under the gallery's filters (all but the label), and the quarantined files: an HTML
    fragment the gallery page loads after its thumbnails. Counting reads every matching row, so it is kept out
    of the page itself, whose cost does not grow with the catalog."""
    try:
        filters = g.parse_filters(dict(request.query_params))
    except g.FilterError as err:
        raise HTTPException(400, f"invalid filter: {err}") from None
    counts = g.label_counts(db, filters)
    quarantined = g.quarantine_count(db, filters) if filters.status in (None, g.QUARANTINED) else 0
    return render(
        request,
        "gallery_counts.html",
        filters=filters,
        counts=counts,
        total=sum(n for _, n in counts),
        matching=sum(n for label, n in counts if filters.label is None or label == filters.label),
        quarantined=quarantined,
    )
