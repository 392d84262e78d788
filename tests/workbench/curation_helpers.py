"""Helpers the curation tests share: accounts without the login machinery, a catalog of generated crops."""

from __future__ import annotations

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import AppUser, Image
from tests.datasets.helpers import add_images


def account(url: str, name: str, role: str, disabled: bool = False) -> None:
    """A workbench account row (the password hash is never checked by curation: `--by` names the account)."""
    with db.session(url) as s:
        s.add(AppUser(name=name, role=role, password_hash="not-a-login", disabled=disabled))
        s.commit()


def crops(url: str, n_groups: int = 4, **options) -> dict[str, list[int]]:
    """``add_images``' crops (PASS, OPEN, SHORT per group); returns label -> image ids."""
    add_images(url, n_groups, **options)
    with db.session(url) as s:
        rows = s.exec(select(Image.id, Image.label).order_by(col(Image.id))).all()
    out: dict[str, list[int]] = {}
    for image_id, label in rows:
        out.setdefault(str(label), []).append(int(image_id or 0))
    return out
