"""The review queue in a real Chromium: label two answers with the keyboard and see them leave the queue; the
screenshot the README shows (docs/screenshots/review.png)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import KeptAnswer, UserRole
from tests.workbench.helpers import PASSWORD, screenshot, user_of
from tests.workbench.kept_helpers import kept_answers

pytestmark = pytest.mark.browser


def log_in(page, base_url: str, name: str) -> None:
    page.goto(f"{base_url}/login?next=/review")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/review**")


def current(page) -> str:
    return page.get_attribute("#review-item", "data-request-id") or ""


def test_two_answers_labelled_with_the_keyboard_leave_the_queue(settings, browser_page):
    base_url, page = browser_page
    ids = kept_answers(settings, [("SHORT", 0.31), ("OPEN", 0.42), ("SPUR", 0.55), ("NICK", 0.61)], size=(96, 80))
    log_in(page, base_url, user_of(settings, UserRole.engineer, "erin"))
    assert current(page) == ids[0]
    assert page.locator("#answer-image").evaluate("img => img.complete && img.naturalWidth") == 96
    screenshot(page, "review")

    page.keyboard.press("3")  # gray's third class: SHORT
    page.wait_for_function(f"document.querySelector('#review-item').dataset.requestId !== '{ids[0]}'")
    assert "labelled SHORT" in page.inner_text("#flash") and current(page) == ids[1]
    page.keyboard.press("n")  # not a defect: PASS for gray
    page.wait_for_function(f"document.querySelector('#review-item').dataset.requestId !== '{ids[1]}'")
    assert current(page) == ids[2]
    queued = {page.locator("#upcoming .tile").nth(k).get_attribute("data-request-id") for k in range(1)}
    assert queued == {ids[3]} and not {ids[0], ids[1]} & {current(page), *queued}

    with db.session(settings.catalog_url) as s:
        rows = {a.request_id: a for a in s.exec(select(KeptAnswer)).all()}
    assert (rows[ids[0]].status, rows[ids[0]].true_label, rows[ids[0]].decided_by) == ("labelled", "SHORT", "erin")
    assert (rows[ids[1]].status, rows[ids[1]].true_label) == ("not_defect", "PASS")
    assert rows[ids[2]].status == "waiting"

    # A key typed into the filter form is no decision.
    page.focus("#review-filters select[name=kind]")
    page.keyboard.press("1")
    assert current(page) == ids[2]


def test_a_viewer_sees_no_decision_buttons(settings, browser_page):
    base_url, page = browser_page
    ids = kept_answers(settings, [("SHORT", 0.3)])
    log_in(page, base_url, user_of(settings, UserRole.viewer, "val"))
    assert current(page) == ids[0] and page.locator("#decision-form").count() == 0
    page.keyboard.press("1")
    page.wait_for_timeout(300)
    assert current(page) == ids[0]
