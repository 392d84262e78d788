"""One image: the picture, its metadata and metrics against the spec, the datasets that hold it, its history."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from aoi.catalog.models import AppUser, Image
from workbench.auth import current_user
from workbench.db import catalog
from workbench.templating import render

router = APIRouter()


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(
    request: Request, image_id: int, user: AppUser = Depends(current_user), db: Session = Depends(catalog)
) -> HTMLResponse:
    image = db.get(Image, image_id)
    if image is None:
        raise HTTPException(404, f"no image {image_id}")
    return render(request, "image.html", image=image)
