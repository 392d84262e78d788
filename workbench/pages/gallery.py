"""The gallery: thumbnails of the catalog's images with filters, counts per label and keyset paging."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from aoi.catalog.models import AppUser
from workbench.auth import current_user
from workbench.templating import render

router = APIRouter()


@router.get("/gallery", response_class=HTMLResponse)
def gallery(request: Request, user: AppUser = Depends(current_user)) -> HTMLResponse:
    return render(request, "gallery.html", images=[], counts=[])
