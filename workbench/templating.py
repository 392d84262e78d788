"""Server-rendered pages: Jinja2 templates under ``workbench/templates`` with the user, the CSRF field and the nav."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from workbench import auth, curation

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# The header's links: shown when the app serves the page (each page module adds its own).
NAV = (
    ("Gallery", "/gallery"),
    ("Review", "/review"),
    ("Datasets", "/datasets"),
    ("Training records", "/runs"),
    ("Models", "/models"),
    ("Drift", "/drift"),
)


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(TEMPLATES_DIR))
    t.env.globals["may"] = auth.may
    t.env.globals["curation_labels"] = curation.labels_for
    t.env.filters["when"] = when
    return t


def when(value: Any) -> str:
    """A time as the pages show it: UTC to the second."""
    if value is None:
        return ""
    try:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    except AttributeError:
        return str(value)


def nav(request: Request) -> list[dict[str, Any]]:
    paths: frozenset[str] = getattr(request.app.state, "page_paths", frozenset())
    current = request.url.path
    return [
        {"label": label, "href": href, "current": current == href or current.startswith(href + "/")}
        for label, href in NAV
        if href in paths
    ]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` with ``context`` plus ``user`` (or None), ``csrf_field()``, ``csrf_token``, ``nav``."""
    token = auth.csrf_token(request)

    def csrf_field() -> Markup:
        return Markup(f'<input type="hidden" name="{auth.CSRF_FIELD}" value="{escape(token)}">')

    context.setdefault("user", getattr(request.state, "user", None))
    context.update(csrf_field=csrf_field, csrf_token=token, nav=nav(request))
    return templates().TemplateResponse(request, template, context, status_code=status_code)
