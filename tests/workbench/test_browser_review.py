"""The review pages in a real Chromium: a confusion cell opens its images; a reviewer approves a paused candidate
and the Prefect run resumes. Screenshots of the datasets, training records, model and drift pages for the README."""

from __future__ import annotations

import pytest

from aoi.catalog.models import UserRole
from tests.workbench import review_rows
from tests.workbench.helpers import PASSWORD, screenshot, user_of
from tests.workbench.review_flows import PausedRun
from tests.workbench.review_rows import BLIND, CANDIDATE

pytestmark = pytest.mark.browser


def log_in(base: str, page, settings, role: UserRole, name: str | None = None) -> None:
    name = user_of(settings, role, name)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/gallery")


def test_a_confusion_cell_opens_its_images_and_the_pages_are_pictured(settings, browser_page):
    base, page = browser_page
    rows = review_rows.review_catalog(settings)
    log_in(base, page, settings, UserRole.engineer)
    for path, name in (("/datasets/g-v1.1", "datasets"), ("/runs", "runs"), ("/drift", "drift")):
        page.goto(f"{base}{path}")
        screenshot(page, name)
    page.goto(f"{base}/models/{CANDIDATE}")
    page.locator(f"#blind-{BLIND} table.confusion").scroll_into_view_if_needed()
    screenshot(page, "model")
    # The explorer's slider: its figures at any threshold are the direct computation's
    slider, live = page.locator("div.explorer input.slider"), page.locator("div.explorer output.live-figures")
    for t in (0.0, 0.6123, 0.9, 1.0):
        slider.evaluate("(e, t) => { e.value = t; e.dispatchEvent(new Event('input')); }", str(t))
        kept = [a for a in rows.answers if a.confidence >= t]
        accepted = sum(a.true == a.predicted for a in kept) / len(kept) if kept else None
        shown = live.get_attribute("data-accepted")
        assert (float(shown) if shown else None) == pytest.approx(accepted)
        assert float(live.get_attribute("data-unknown") or "nan") == pytest.approx(1 - len(kept) / len(rows.answers))
        assert f"at {t:.4f}: " in live.inner_text()
    # The most populated wrong cell: click it as a person would
    pairs = {(a.true, a.predicted) for a in rows.answers if a.true != a.predicted}
    true, predicted = max(pairs, key=lambda p: sum((a.true, a.predicted) == p for a in rows.answers))
    expected = sorted(a.image_id for a in rows.answers if (a.true, a.predicted) == (true, predicted))
    cell = page.locator(f'table.confusion a[href*="true={true}&"][href*="predicted={predicted}&"]')
    assert cell.inner_text() == str(len(expected))
    cell.click()
    page.wait_for_url("**/errors?**")
    assert f"true={true}" in page.url and f"predicted={predicted}" in page.url
    shown = sorted(
        int(i) for i in page.locator("figure.cell-image").evaluate_all("els => els.map(e => e.dataset.image)")
    )
    assert shown == expected
    # Every thumbnail loaded from the store (the generated images have bytes)
    loaded = page.locator("figure.cell-image a img").evaluate_all(
        "els => Promise.all(els.map(e => e.decode().then(() => e.naturalWidth, () => 0)))"
    )
    assert all(loaded) and len(loaded) == len(expected)


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.slow
def test_a_reviewer_approves_a_paused_candidate_and_the_run_resumes(configure, browser_page):
    from promotion import approval

    base, page = browser_page
    settings = configure(GATE__APPROVAL_POLL_S=1)
    review_rows.review_catalog(settings)
    run = PausedRun(review_rows.promotion_records(settings))
    run_id = run.wait_paused(settings, CANDIDATE)
    log_in(base, page, settings, UserRole.reviewer, "rita")
    page.goto(f"{base}/models/{CANDIDATE}")
    assert run_id in page.locator("#approval").inner_text()
    page.fill("form.decision input[name=comment]", "blind 0717 holds")
    page.click("#approve")
    page.wait_for_selector("#decided")
    assert "approved" in page.locator("#decided").inner_text()
    assert page.locator("#stage").inner_text() == "production"
    assert "web:rita [prefect:unauthenticated]" in page.locator("#approvals").inner_text()
    assert run.finish()["status"] == "approved" and approval.state_of(run_id).is_completed()
