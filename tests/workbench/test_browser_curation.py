"""Curation in a real Chromium: relabel an image on its page and see the change in its history; select several in
the gallery and exclude them; the screenshot the README shows (docs/screenshots/curation.png)."""

from __future__ import annotations

import pytest

from aoi.catalog import db
from aoi.catalog.models import Image, ImageStatus, UserRole
from tests.workbench.helpers import PASSWORD, fill_catalog, screenshot, user_of

pytestmark = pytest.mark.browser


def log_in(page, base_url: str, name: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/gallery**")


def test_relabel_on_the_image_page_then_exclude_a_selection_in_the_gallery(settings, browser_page):
    base_url, page = browser_page
    ids = fill_catalog(settings, 12, with_bytes=12)
    target = ids[0]  # gray, labeled
    log_in(page, base_url, user_of(settings, UserRole.engineer, "erin"))

    page.goto(f"{base_url}/images/{target}")
    page.select_option("#relabel-form select[name=label]", "OPEN")
    page.fill("#relabel-form input[name=reason]", "the trace is cut through")
    page.click("#relabel-form button[type=submit]")
    page.wait_for_url(f"{base_url}/images/{target}")
    assert "Relabelled image" in page.inner_text("#flash")
    assert page.inner_text("#label") == "OPEN"
    history = page.inner_text("#history")
    assert "relabel" in history and "the trace is cut through" in history and "erin" in history
    screenshot(page, "curation")

    page.goto(f"{base_url}/gallery?source=gray&status=labeled")
    tiles = page.locator(".tile[data-status=labeled]")
    chosen = [int(tiles.nth(k).get_attribute("data-id") or 0) for k in range(3)]
    for image_id in chosen:
        page.check(f".tile[data-id='{image_id}'] input[name=image_id]")
    page.fill("#selection-reason", "smeared by the lamp")
    page.click("#exclude-selected")
    page.wait_for_url(f"{base_url}/gallery?source=gray&status=labeled")
    assert "Excluded 3 images." in page.inner_text("#flash")
    shown = {
        int(page.locator(".tile").nth(k).get_attribute("data-id") or 0) for k in range(page.locator(".tile").count())
    }
    assert not shown & set(chosen), "the filter on labeled no longer shows them"
    with db.session(settings.catalog_url) as s:
        assert all(db.get_row(s, Image, i).status == ImageStatus.excluded for i in chosen)
        assert db.get_row(s, Image, chosen[0]).status_reason == "excluded by erin: smeared by the lamp"


def test_a_viewer_sees_no_curation_controls(settings, browser_page):
    base_url, page = browser_page
    ids = fill_catalog(settings, 2, with_bytes=2)
    log_in(page, base_url, user_of(settings, UserRole.viewer, "val"))
    page.goto(f"{base_url}/images/{ids[0]}")
    assert page.locator("#relabel-form").count() == 0 and page.locator("#history").count() == 1
    page.goto(f"{base_url}/gallery")
    assert page.locator("#exclude-selected").count() == 0
