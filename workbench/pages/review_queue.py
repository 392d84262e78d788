"""The review queue page (``/review``): kept answers waiting for a label, one at a time, in the order of
AOI_WORKBENCH__REVIEW_ORDER; the image, the model's top-3, the upstream code, machine, part and model version, and
its Grad-CAM on demand. Engineers and reviewers decide (a plain CSRF-checked form, keys with the page's script);
viewers look. After a decision the next answer shows (POST-redirect-GET)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from sqlmodel import Session

from aoi.catalog.models import AppUser, KeptAnswer, KeptAnswerStatus, UserRole
from aoi.labels import LabelMap
from aoi.settings import Settings
from workbench import review_queue
from workbench.auth import current_user, require
from workbench.db import app_settings, catalog, release
from workbench.pages.curation import flash
from workbench.pages.images import stored_image, thumb_response
from workbench.templating import render

router = APIRouter()

UPCOMING = 20  # the answers listed after the one shown
KINDS = ("gray", "color")


def _kind(kind: str | None) -> str | None:
    if not kind:
        return None
    if kind not in KINDS:
        raise HTTPException(400, f"kind must be gray or color, not {kind!r}")
    return kind


def _status(status: str | None) -> str:
    status = status or KeptAnswerStatus.waiting
    if status not in review_queue.OPEN:
        raise HTTPException(400, "the queue shows waiting or skipped answers")
    return status


def queue_url(kind: str | None, status: str | None = None) -> str:
    query = {k: v for k, v in (("kind", kind), ("status", status)) if v and v != KeptAnswerStatus.waiting}
    return "/review" + (f"?{urlencode(query)}" if query else "")


@router.get("/review", response_class=HTMLResponse)
def review_page(
    request: Request,
    kind: str | None = None,
    status: str | None = None,
    request_id: str | None = None,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> HTMLResponse:
    kind, status = _kind(kind), _status(status)
    order = settings.workbench.review_order
    answers = review_queue.queue(db, kind=kind, order=order, limit=UPCOMING + 1, status=status)
    current: KeptAnswer | None = answers[0] if answers else None
    if request_id:
        try:
            current = review_queue.get(db, request_id)
        except review_queue.ReviewError as err:
            raise HTTPException(404, str(err)) from None
    upcoming = [a for a in answers if current is None or a.id != current.id][:UPCOMING]
    is_open = current is not None and current.status in review_queue.OPEN
    return render(
        request,
        "review_queue.html",
        current=current,
        upcoming=upcoming,
        choices=review_queue.choices(current.kind) if current is not None else [],
        is_open=is_open,
        decided=review_queue.already(current) if current is not None and not is_open else "",
        counts=review_queue.waiting_counts(db),
        kind=kind,
        status=status,
        order=order,
        back=queue_url(kind, status),
    )


def _answer(db: Session, request_id: str) -> KeptAnswer:
    try:
        return review_queue.get(db, request_id)
    except review_queue.ReviewError as err:
        raise HTTPException(404, str(err)) from None


@router.get("/review/{request_id}/image")
def answer_image(
    request_id: str,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """The kept bytes as the service received them (converted to PNG only where a browser cannot show them)."""
    answer = _answer(db, request_id)
    release(db)
    return stored_image(settings, answer.sha256, None, f"the image of request {request_id} is not in the store")


@router.get("/review/{request_id}/thumb")
def answer_thumb(
    request_id: str,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    answer = _answer(db, request_id)
    release(db)
    return thumb_response(settings, answer.sha256)


@router.get("/review/{request_id}/gradcam.png")
def answer_gradcam(
    request_id: str,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """Where the answering model version looked (Grad-CAM of its answer), computed on demand and cached."""
    from workbench.heatmaps import heatmap_png

    answer = _answer(db, request_id)
    release(db)
    try:
        data = heatmap_png(settings, answer.model_version, answer.sha256, answer.machine_id, answer.kept_at)
    except Exception as err:  # no model files, no image bytes: the page keeps the image without its map
        return PlainTextResponse(f"no Grad-CAM for request {request_id}: {err}", status_code=503)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.post("/review/{request_id}/decision")
def decide(
    request: Request,
    request_id: str,
    label: str = Form(""),
    kind: str = Form(""),
    status: str = Form(""),
    user: AppUser = Depends(require(UserRole.engineer)),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """One decision (form field ``label``: a class, NOT_DEFECT, BAD_IMAGE or SKIP) under the logged-in name; then
    back to the queue (its ``kind`` and ``status`` filter), whose first answer is the next one."""
    wants_json = "application/json" in request.headers.get("accept", "")
    back = queue_url(kind if kind in KINDS else None, status if status in review_queue.OPEN else None)
    try:
        answer = review_queue.decide(db, request_id, label, user.name, LabelMap.load(settings.ingest.label_map))
    except review_queue.ReviewError as err:
        db.rollback()
        code = 409 if isinstance(err, review_queue.AlreadyDecided) else 400
        if wants_json:
            return JSONResponse({"error": str(err)}, status_code=code)
        flash(request, str(err), "error")
        return RedirectResponse(back, status_code=303)
    if wants_json:
        return JSONResponse(review_queue.as_dict(answer))
    flash(request, said(answer))
    return RedirectResponse(back, status_code=303)


def said(answer: KeptAnswer) -> str:
    what = {
        KeptAnswerStatus.labelled: f"labelled {answer.true_label}",
        KeptAnswerStatus.not_defect: "not a defect",
        KeptAnswerStatus.bad_image: "a bad image (it goes to the quarantine)",
        KeptAnswerStatus.skipped: "skipped",
    }.get(KeptAnswerStatus(answer.status), answer.status)
    return f"Request {answer.request_id}: {what}."
