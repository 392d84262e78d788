"""Model versions and their evaluations: per blind set the accuracy with and without the Unknown filter, the
confusion grid whose cells open the images behind them (with Grad-CAM), per-label recall and precision with
warnings, the threshold explorer, the comparison with production, the gate verdict, the stage history, and a
reviewer's approve / reject that resumes the paused ``promote`` run through Prefect's API."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from aoi.catalog.models import Approval, AppUser, Image, ModelExport, ModelVersion, TrainingRun, UserRole
from aoi.settings import Settings
from workbench import charts, orchestrator, queries
from workbench.auth import current_user, require
from workbench.db import app_settings, catalog
from workbench.reports import report_href
from workbench.templating import render

router = APIRouter()


def web_reviewer(user: AppUser) -> str:
    """The reviewer the promote run records for a decision made here: the logged-in account, marked as the
    workbench's login (as ``aoi approve`` marks the OS account); the flow adds the Prefect login after it."""
    return f"web:{user.name}"


@router.get("/models", response_class=HTMLResponse)
def models_page(
    request: Request, user: AppUser = Depends(current_user), db: Session = Depends(catalog)
) -> HTMLResponse:
    models = queries.model_versions(db)
    blind_sets = sorted({name for m in models for name in m.blind_accuracy})
    return render(request, "models.html", models=models, blind_sets=blind_sets)


def _model(db: Session, version: str) -> ModelVersion:
    model = db.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    if model is None:
        raise HTTPException(404, f"no model version {version}")
    return model


def _release(db: Session) -> None:
    """End the request session's transaction before code that opens its own sessions (promotion, Grad-CAM):
    on SQLite every transaction holds the database's write lock, which they (and a promote run deciding in
    another process) would wait for. Rows read so far stay usable (the sessions do not expire on commit)."""
    db.commit()


def _threshold(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise HTTPException(400, f"threshold {value!r} is not a number between 0 and 1") from None
    if not 0.0 <= number <= 1.0:
        raise HTTPException(400, f"threshold {number} is not between 0 and 1")
    return number


def _comparison(settings: Settings, model: ModelVersion, blind_sets: list[str]) -> tuple[dict | None, str | None]:
    """The comparison table with the kind's production model, from stored evaluations only."""
    from promotion import compare, stages
    from training.registry import RegistryError

    current = stages.production(settings, model.kind)
    versions = [model.version, *([current.version] if current and current.version != model.version else [])]
    try:
        return compare.compare(settings, versions, blind_sets, stored_only=True), None
    except (LookupError, RegistryError, ValueError) as err:
        return None, f"no comparison: {err}"


@router.get("/models/{version}", response_class=HTMLResponse)
def model_page(
    request: Request,
    version: str,
    threshold: str | None = None,
    decided: str | None = None,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> HTMLResponse:
    from promotion import stages

    model = _model(db, version)
    asked = _threshold(threshold)
    _release(db)
    comparison, comparison_error = _comparison(settings, model, stages.blind_sets(settings, model.kind))
    verdicts, history = stages.verdicts(settings, version), stages.history(settings, version=version)
    run = db.get(TrainingRun, model.run_id)
    results = queries.blind_results(db, version)
    explorers = {}
    for r in results:
        found = queries.explorer(db, r.evaluation, asked)
        if found is not None:
            explorers[r.dataset] = (found, charts.threshold_curve(found.curve, r.evaluation.threshold))
    approvals = db.exec(
        select(Approval).where(Approval.model_version == version).order_by(col(Approval.id).desc())
    ).all()
    waiting = next((a for a in approvals if a.status == "waiting"), None)
    exported = db.exec(
        select(ModelExport).where(ModelExport.model_version == version).order_by(col(ModelExport.int8))
    ).all()
    return render(
        request,
        "model.html",
        model=model,
        exports=exported,
        run=run,
        results=results,
        explorers=explorers,
        asked=asked,
        comparison=comparison,
        comparison_error=comparison_error,
        verdicts=verdicts,
        history=history,
        approvals=approvals,
        waiting=waiting,
        decided=decided,
        unknown=queries.UNKNOWN,
        report_href=lambda path: report_href(settings, path),
    )


@router.get("/models/{version}/errors", response_class=HTMLResponse)
def cell_page(
    request: Request,
    version: str,
    blind: str,
    true: str,
    predicted: str,
    evaluation: int | None = None,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
) -> HTMLResponse:
    """The images behind one confusion cell: true label ``true`` answered ``predicted`` (UNKNOWN: sent to a
    person by the Unknown filter), each with its Grad-CAM map."""
    model = _model(db, version)
    e = queries.latest_evaluation(db, version, blind, evaluation)
    if e is None:
        raise HTTPException(404, f"{version} has no evaluation on {blind}")
    if true not in e.labels or (predicted not in e.labels and predicted != queries.UNKNOWN):
        raise HTTPException(404, f"{true} → {predicted} is not a cell of {version}'s evaluation on {blind}")
    images = queries.cell_images(db, e, true, predicted)
    return render(request, "errors.html", model=model, e=e, true=true, predicted=predicted, images=images)


@router.get("/models/{version}/gradcam/{image_id}.png")
def gradcam(
    version: str,
    image_id: int,
    user: AppUser = Depends(current_user),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """The image with the Grad-CAM map of ``version``'s answer on it, computed once and cached."""
    from workbench.heatmaps import heatmap_png

    _model(db, version)
    image = db.get(Image, image_id)
    if image is None:
        raise HTTPException(404, f"no image {image_id}")
    _release(db)
    try:
        data = heatmap_png(settings, version, image.sha256)
    except Exception as err:  # no model files, no image bytes: the page shows the image without its map
        return PlainTextResponse(f"no Grad-CAM for image {image_id}: {err}", status_code=503)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.post("/models/{version}/decision")
def decide(
    request: Request,
    version: str,
    decision: str = Form(...),
    comment: str = Form(""),
    user: AppUser = Depends(require(UserRole.reviewer)),
    db: Session = Depends(catalog),
    settings: Settings = Depends(app_settings),
) -> Response:
    """Approve or reject the candidate whose promote run waits: resumes that run with the Prefect UI's form."""
    from promotion import approval, stages

    _model(db, version)
    _release(db)
    if decision not in ("approve", "reject"):
        raise HTTPException(400, "the decision is approve or reject")
    pending = stages.waiting_approval(settings, version=version)
    if pending is None or not pending.flow_run_id:
        raise HTTPException(409, f"no approval is waiting for {version}: it was decided, or its gate failed")
    try:
        result = orchestrator.decide(
            settings,
            pending.flow_run_id,
            db_id(pending),
            approve=decision == "approve",
            reviewer=web_reviewer(user),
            comment=comment.strip(),
            wait_s=settings.gate.approval_poll_s + 5.0,
        )
    except orchestrator.PrefectUnreachable as err:
        raise HTTPException(503, f"the decision was not sent: {err}") from None
    except approval.ApprovalError as err:
        raise HTTPException(409, str(err)) from None
    except Exception as err:  # Prefect refuses input the form does not accept; the run stays paused
        raise HTTPException(400, f"the decision was refused: {err}") from None
    return RedirectResponse(f"/models/{quote(version)}?decided={quote(result['status'])}#approval", status_code=303)


def db_id(row: Approval) -> int:
    if row.id is None:
        raise RuntimeError("an approval without an id")
    return row.id
