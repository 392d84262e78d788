"""Curation from the pages: the image page's forms and the gallery's selection post here; engineers (and
reviewers) only, CSRF-checked like every POST of the app, recorded under the logged-in user's name.

Each action answers POST-redirect-GET: back to the page it came from, with a flash message saying what changed
or why nothing did. A client asking for JSON (``Accept: application/json``) gets the change itself (200) or
the refusal (400) instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from aoi.catalog.models import AppUser, ImageChange, UserRole
from aoi.labels import LabelMap
from aoi.settings import Settings
from workbench import curation
from workbench.auth import require
from workbench.db import app_settings, catalog

router = APIRouter()

FLASH = "flash"
_curator = require(UserRole.engineer)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message for the next page this session shows (base.html's flash area)."""
    request.session[FLASH] = {"kind": kind, "text": text}


def _back(request: Request, target: str | None, fallback: str) -> str:
    """Where the action came from: the form's ``next`` or the Referer, when a path of this site; else ``fallback``."""
    for candidate in (target, request.headers.get("referer")):
        if not candidate:
            continue
        parts = urlsplit(candidate)
        if parts.netloc and parts.netloc != request.url.netloc:
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if path.startswith("/") and not path.startswith("//") and "\\" not in path:
            return path
    return fallback


def _said(action: str, changes: list[ImageChange]) -> str:
    first = changes[0]
    what = f"image {first.image_id}" if len(changes) == 1 else f"{len(changes)} images"
    if action == "relabel":
        return f"Relabelled {what} as {first.new_label}."
    return f"{curation.PAST[curation.Action(action)].capitalize()} {what}."


async def _apply(
    request: Request,
    action: str,
    ids: list[int],
    user: AppUser,
    s: Session,
    settings: Settings,
    fallback: str,
) -> Response:
    form = await request.form()
    reason = str(form.get("reason") or form.get("why") or "")
    label = str(form.get("label") or "")
    target = form.get("next")
    back = _back(request, target if isinstance(target, str) else None, fallback)
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        if action == "relabel":
            labels = LabelMap.load(settings.ingest.label_map)
            changes = curation.relabel(s, ids, label, user.name, reason, curation.Via.web, labels=labels)
        else:
            do = {"exclude": curation.exclude, "restore": curation.restore, "delete": curation.delete}[action]
            changes = do(s, ids, user.name, reason, curation.Via.web)
    except curation.CurationError as err:
        s.rollback()
        if wants_json:
            return JSONResponse({"error": str(err)}, status_code=400)
        flash(request, str(err), "error")
        return RedirectResponse(back, status_code=303)
    if wants_json:
        return JSONResponse(curation.summary(s, changes))
    said = _said(action, changes)
    blind = curation.blind_images(s, ids)
    if blind:  # say it where people look: the wall holds whatever they changed
        said += f" {len(blind)} of them belong to blind sets and stay behind the blind wall."
    flash(request, said)
    return RedirectResponse(back, status_code=303)


def _selected(form_ids: list) -> list[int]:
    ids = []
    for value in form_ids:
        try:
            ids.append(int(str(value)))
        except ValueError:
            raise curation.CurationError(f"not an image id: {value!r}") from None
    return ids


# The selection's routes first: /images/selection/... is no image id (the image routes take only integers).
@router.post("/images/selection/{action}")
async def curate_selection(
    request: Request,
    action: str,
    user: AppUser = Depends(_curator),
    s: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """The gallery's selection: form field ``image_id`` repeated, ``reason``, ``label`` for a relabel."""
    if action not in curation.ACTIONS:
        return JSONResponse({"error": f"no action {action!r}"}, status_code=404)
    form = await request.form()
    try:
        ids = _selected(form.getlist("image_id"))
    except curation.CurationError as err:
        flash(request, str(err), "error")
        return RedirectResponse(_back(request, None, "/gallery"), status_code=303)
    return await _apply(request, action, ids, user, s, settings, "/gallery")


@router.post("/images/{image_id:int}/{action}")
async def curate_image(
    request: Request,
    image_id: int,
    action: str,
    user: AppUser = Depends(_curator),
    s: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """One image's form on its page: ``reason``, and ``label`` for a relabel."""
    if action not in curation.ACTIONS:
        return JSONResponse({"error": f"no action {action!r}"}, status_code=404)
    return await _apply(request, action, [image_id], user, s, settings, f"/images/{image_id}")
