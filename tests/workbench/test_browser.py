"""The workbench in a real Chromium: log in, filter the gallery, open an image; a viewer sees no curation
controls and a form posted without its CSRF token is refused. Saves the README's screenshots."""

from __future__ import annotations

import re

import pytest

from aoi.catalog import db
from aoi.catalog.models import DatasetVersion, ImageChange, UserRole
from tests.workbench.helpers import PASSWORD, START, fill_catalog, screenshot, user_of

pytestmark = pytest.mark.browser


def log_in(page, base: str, name: str, target: str = "/gallery") -> None:
    page.goto(f"{base}{target}")
    assert "/login" in page.url  # sent to the login form first
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(target) + "$"))


def test_log_in_filter_the_gallery_and_open_an_image(browser_page, settings):
    base, page = browser_page
    ids = fill_catalog(settings, 60, with_bytes=60)
    with db.session(settings.catalog_url) as s:
        s.add(
            ImageChange(
                image_id=ids[1],
                action="relabel",
                old_label="Short",
                new_label="Spur",
                old_status="labeled",
                new_status="labeled",
                reason="the copper spur is clear at full size",
                by="reviewer1",
                at=START,
            )
        )
        s.add(DatasetVersion(name="color-v1", role="train", source="color", spec_key="line-colour@1"))
        s.commit()
    from validation.records import register_spec
    from validation.specs import parse_spec

    spec = "name: line-colour\napplies_to: color\ntone:\n  brightness: {min: 90, max: 140}\n"
    register_spec(settings, parse_spec(spec + "  r_minus_g: {min: -5, max: 5}\nquality:\n  sharpness: {min: 20}\n"))
    name = user_of(settings, UserRole.engineer)
    page.goto(f"{base}/login")
    screenshot(page, "login")
    log_in(page, base, name)
    assert page.locator(".tile").count() == 60

    page.select_option("select[name=source]", "color")
    page.fill("input[name=label]", "Spur")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"source=color.*label=Spur"))
    tiles = page.locator(".tile")
    assert tiles.count() == 10  # k odd and k % 6 == 1 among 60
    assert set(tiles.evaluate_all("ts => ts.map(t => t.dataset.label)")) == {"Spur"}
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_selector("#counts #matching")  # the counts per label arrive after the page
    assert page.locator("#matching").inner_text() == "10"
    screenshot(page, "gallery")

    page.click(f'.tile[data-id="{ids[1]}"] img')
    page.wait_for_url(f"{base}/images/{ids[1]}")
    assert page.locator("#label").inner_text() == "Spur"
    assert "the copper spur is clear" in page.locator("#history").inner_text()
    assert "line-colour@1" in page.locator("#spec").inner_text()
    page.wait_for_function("() => document.querySelector('#picture img').naturalWidth > 0")
    screenshot(page, "image")


def test_a_viewer_sees_no_curation_controls_and_a_form_without_its_token_is_refused(browser_page, settings):
    base, page = browser_page
    ids = fill_catalog(settings, 5, with_bytes=1)
    log_in(page, base, user_of(settings, UserRole.viewer), f"/images/{ids[0]}")
    posts = page.locator("form[method=post]")
    assert posts.count() == 1 and posts.get_attribute("action") == "/logout"  # only the log-out button
    # The log-out form with its token removed, sent by the browser itself: refused, still logged in.
    page.evaluate("document.querySelector('form[action=\"/logout\"] input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.url.endswith("/logout")) as answer:
        page.click("form[action='/logout'] button")
    assert answer.value.status == 403
    assert "CSRF" in page.locator(".error").inner_text()
    page.goto(f"{base}/gallery")
    assert page.url == f"{base}/gallery"  # the session is intact
