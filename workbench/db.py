"""The workbench's handles on the catalog and the settings, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlmodel import Session

from aoi.catalog import db
from aoi.settings import Settings


def app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def catalog(request: Request) -> Iterator[Session]:
    """A catalog session for one request, closed after it."""
    with db.session(app_settings(request).catalog_url) as session:
        yield session


def release(session: Session) -> None:
    """End the session's transaction (its loaded rows stay usable). On SQLite every transaction of the catalog
    holds the write lock (BEGIN IMMEDIATE, aoi/catalog/db.py): a request that opens another session, or works a
    while after reading (a thumbnail), releases it first."""
    session.commit()
