"""The workbench application: ``create_app`` assembles the pages listed in PAGES, login and logout.

Each page is a module ``workbench/pages/<name>.py`` with ``router = APIRouter()``; a module that is not there
(yet) is skipped, so a page joins the app by adding its file.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aoi.settings import Settings, get_settings
from workbench import auth
from workbench.db import catalog
from workbench.templating import render

PAGES = ("gallery", "images", "curation", "review_queue", "datasets", "runs", "models", "drift")
STATIC_DIR = Path(__file__).resolve().parent / "static"
LOGIN_FAILED = "Wrong user name or password."


# Sent with every answer: no framing by other sites (clickjacking), no content sniffing, no URLs leaked onwards.
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (plain ASGI: streamed bodies pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_modules() -> list[str]:
    """The page modules of PAGES that exist."""
    return [name for name in PAGES if importlib.util.find_spec(f"workbench.pages.{name}") is not None]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="AOI workbench",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(auth.check_csrf)],  # every POST of every page, whoever wrote it
    )
    app.state.settings = settings
    app.state.throttle = auth.LoginThrottle()
    app.add_middleware(
        SessionMiddleware,
        secret_key=auth.session_secret(settings),
        session_cookie="aoi_workbench",
        max_age=settings.workbench.session_max_age_s,
        same_site="lax",
        https_only=settings.workbench.tls,
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _handlers(app)
    _account_routes(app)
    paths: set[str] = set()
    for name in page_modules():
        module = importlib.import_module(f"workbench.pages.{name}")
        app.include_router(module.router)
        paths.update(route.path for route in module.router.routes if isinstance(route, APIRoute))
    app.state.page_paths = frozenset(paths)  # the header's nav links only to pages the app serves
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(auth.LoginRequired)
    async def _login_required(request: Request, exc: auth.LoginRequired) -> Response:
        if exc.wants_page:
            return RedirectResponse(exc.next_url, status_code=303)
        return PlainTextResponse("log in first", status_code=401)

    @app.exception_handler(auth.Forbidden)
    async def _forbidden(request: Request, exc: auth.Forbidden) -> Response:
        return error_page(request, 403, exc.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return error_page(request, exc.status_code, str(exc.detail), exc.headers)


def error_page(request: Request, status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An error as a small page for a browser, as text for anything else."""
    if "text/html" in request.headers.get("accept", ""):
        response: Response = render(request, "error.html", status_code=status_code, message=message)
    else:
        response = PlainTextResponse(message, status_code=status_code)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of this site only (an absolute URL would make /login an open redirect)."""
    if not target:
        return "/gallery"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/gallery"
    return target


def _account_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/gallery", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str | None = None, user=Depends(auth.optional_user)) -> Response:
        if user is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return render(request, "login.html", next=safe_next(next), error=None, username="")

    @app.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        next: str = Form("/gallery"),
        db: Session = Depends(catalog),
    ) -> Response:
        throttle: auth.LoginThrottle = request.app.state.throttle
        keys = (f"name:{username.strip().lower()}", f"addr:{request.client.host if request.client else '-'}")
        wait = throttle.delay(*keys)
        if wait:
            await asyncio.sleep(wait)
        user = await asyncio.to_thread(auth.authenticate, db, username, password)
        if user is None:
            throttle.failed(*keys)
            return render(
                request, "login.html", status_code=401, next=safe_next(next), error=LOGIN_FAILED, username=username
            )
        throttle.succeeded(*keys)
        auth.log_in(request, user)
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request) -> RedirectResponse:
        auth.log_out(request)
        return RedirectResponse("/login", status_code=303)
