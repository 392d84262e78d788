"""One image: the picture, its metadata and metrics against the spec, the datasets that hold it, the answers given
for it, its history; and its bytes, its thumbnail and (for a crop) its parent picture."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from PIL import Image as PILImage
from sqlmodel import Session

from aoi.catalog.models import AppUser, Image, IngestBatch
from aoi.settings import Settings
from aoi.store import ImageStore
from workbench import image_info, thumbs
from workbench.auth import current_user
from workbench.db import app_settings, catalog, release
from workbench.templating import render

router = APIRouter()

# Formats a browser shows as they are; others (TIFF) are converted to PNG for display.
BROWSER_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "BMP": "image/bmp", "WEBP": "image/webp", "GIF": "image/gif"}
# Image bytes never change under an id (content-addressed): browsers may keep them.
CACHE = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}


def _image(db: Session, image_id: int) -> Image:
    image = db.get(Image, image_id)
    if image is None:
        raise HTTPException(404, f"no image {image_id}")
    return image


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(
    request: Request,
    image_id: int,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> HTMLResponse:
    image = _image(db, image_id)
    box = image_info.parse_box(image.bbox)
    parent = image_info.parent_size(db, settings, image) if box is not None else None
    return render(
        request,
        "image.html",
        image=image,
        batch=db.get(IngestBatch, image.batch_id),
        in_store=ImageStore(settings.store_dir).has(image.sha256),
        box=box,
        parent=parent,
        spec=image_info.metrics_against_spec(db, settings, image),
        datasets=image_info.dataset_versions(db, image),
        answers=image_info.answers(db, image),
        evaluations=image_info.evaluation_answers(db, image_id),
        history=image_info.history(db, image_id),
    )


def _displayable(data: bytes, fmt: str | None) -> tuple[bytes, str]:
    """The bytes and their media type, converted to PNG only where a browser cannot show the format (``None``: read
    it from the bytes)."""
    media = BROWSER_TYPES.get(fmt.upper()) if fmt else None
    if media is not None:
        return data, media
    with PILImage.open(io.BytesIO(data)) as picture:
        media = BROWSER_TYPES.get((picture.format or "").upper())
        if media is not None:
            return data, media
        out = io.BytesIO()
        picture.save(out, format="PNG")
    return out.getvalue(), "image/png"


def stored_image(settings: Settings, sha256: str, fmt: str | None, missing: str) -> Response:
    """The stored bytes of ``sha256`` as a browser shows them; 404 with ``missing`` when they are not in the store."""
    store = ImageStore(settings.store_dir)
    if not store.has(sha256):
        raise HTTPException(404, missing)
    data, media = _displayable(store.get(sha256), fmt)
    return Response(data, media_type=media, headers=CACHE)


@router.get("/images/{image_id}/full")
def image_bytes(
    image_id: int,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """The image as stored (converted to PNG only where a browser cannot show its format)."""
    image = _image(db, image_id)
    release(db)
    return stored_image(settings, image.sha256, image.format, f"the bytes of image {image_id} are not in the store")


@router.get("/images/{image_id}/parent")
def parent_bytes(
    image_id: int,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """The picture a crop was cut from, when it is in the store or its file is readable."""
    image = _image(db, image_id)
    release(db)
    where = image_info.parent_source(settings, image)
    if where is None:
        raise HTTPException(404, f"the parent picture of image {image_id} is not available")
    kind, ref = where
    path: Path = ImageStore(settings.store_dir).path_for(ref) if kind == "store" else ref
    data = path.read_bytes()
    with PILImage.open(io.BytesIO(data)) as picture:
        fmt = picture.format or "PNG"
    body, media = _displayable(data, fmt)
    return Response(body, media_type=media, headers=CACHE)


@router.get("/images/{image_id}/thumb")
def thumbnail(
    image_id: int,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """A JPEG about 128 px a side, made on first request and kept in the store's thumbs/ area."""
    image = _image(db, image_id)
    release(db)  # making a thumbnail takes a while: never with the catalog's lock held
    return thumb_response(settings, image.sha256)


def thumb_response(settings: Settings, sha256: str) -> Response:
    """The cached thumbnail of ``sha256`` (made now if it is not yet), or a 404 placeholder without its bytes."""
    path = thumbs.thumb_path(settings, sha256)
    if not path.is_file():
        made = thumbs.thumbnail(settings, sha256)
        if made is None:
            svg = thumbs.PLACEHOLDER_SVG.format(text="no bytes")
            return Response(svg, status_code=404, media_type="image/svg+xml", headers=CACHE)
        path = made
    return FileResponse(path, media_type="image/jpeg", headers=CACHE)
