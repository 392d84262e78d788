"""The review pages through the ASGI test client on generated catalog rows: datasets, training records, a model
version with its confusion cells, threshold explorer and approval, drift with its reports."""

from __future__ import annotations

import re
from collections import Counter
from html import unescape
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from aoi.catalog.models import UserRole
from evaluation import scores
from tests.helpers import free_port
from tests.workbench import review_rows
from tests.workbench.helpers import logged_in, token
from tests.workbench.review_rows import BLIND, CANDIDATE, LABELS, PRODUCTION


def group(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern``'s first match in ``text`` (the test fails when there is none)."""
    match = re.search(pattern, text, flags)
    assert match, f"no {pattern!r} in the page"
    return match.group(1)


@pytest.fixture
def rows(catalog_url, settings):
    """The generated review rows, on SQLite and on PostgreSQL (a test lists ``rows`` before ``client``, so the
    app is made on that catalog)."""
    return review_rows.review_catalog(settings)


def cell_links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/models/[^"]+/errors\?[^"]+)"', html)]


def test_datasets_show_versions_lineage_cleaning_and_splits(rows, client):
    logged_in(client, UserRole.viewer)
    page = client.get("/datasets").text
    assert all(name in page for name in ("g-v1", "g-v1.1", BLIND))
    child = group(r'<tr data-name="g-v1.1">(.*?)</tr>', page, re.S)
    assert '<a href="/datasets/g-v1">g-v1</a>' in child and ">101<" in child  # parent link; 37+44+5+5+5+5 images
    detail = client.get("/datasets/g-v1.1").text
    assert re.search(r'id="lineage">g-v1.1 ← <a href="/datasets/g-v1">g-v1</a>', detail)
    cleaning = group(r'id="cleaning">(.*?)</table>', detail, re.S)
    assert "relabelled by a person" in cleaning and "removed by a person" in cleaning
    relabels = group(r"<td>relabelled by a person</td>(.*?)</tr>", cleaning, re.S)
    assert re.findall(r">(\d+) <span[^>]*>\(([−+]\d+)\)", relabels) == [("48", "−2"), ("54", "+2")]
    removed = group(r"<td>removed by a person</td>(.*?)</tr>", cleaning, re.S)
    assert "(−1)" in removed and "+" not in removed  # Short: 1 removed; Spur unchanged
    splits = group(r'id="splits">(.*?)</table>', detail, re.S)
    short = group(r"<td>Short</td>(.*?)</tr>", splits, re.S)
    assert re.findall(r">(\d+)<", short) == ["37", "5", "5", "47"]  # train, valid, test, total
    assert "Build from" not in detail  # a viewer reads
    assert client.get("/datasets/nope").status_code == 404


def test_the_build_button_needs_an_engineer_and_says_when_prefect_is_not_there(rows, client, configure, monkeypatch):
    logged_in(client, UserRole.viewer)
    form = {"new_name": "g-v1.2", "split": "8:1:1", "seed": "0", "csrf_token": token(client, "/datasets/g-v1.1")}
    assert client.post("/datasets/g-v1.1/build", data=form).status_code == 403
    # An engineer, with no Prefect server at the configured local port: a clear message, not a 500.
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # an earlier test's session server must not answer
    settings = configure(PREFECT__PORT=free_port())
    client.app.state.settings = settings
    client.cookies.clear()
    logged_in(client, UserRole.engineer)
    form["csrf_token"] = token(client, "/datasets/g-v1.1")
    refused = client.post("/datasets/g-v1.1/build", data=form)
    assert refused.status_code == 503 and "Build from" in refused.text
    assert "Prefect" in refused.text and "is not running" in refused.text and "aoi ui" in refused.text
    bad = client.post("/datasets/g-v1.1/build", data={**form, "new_name": "g-v1"})
    assert bad.status_code == 400 and "exists already" in bad.text
    assert client.post("/datasets/g-blind-0717/build", data=form).status_code == 400


def test_training_records_per_kind_with_a_trend_that_marks_failed_and_running_runs(rows, client):
    logged_in(client, UserRole.viewer)
    page = client.get("/runs").text
    gray = group(r'id="kind-gray">(.*?)</section>', page, re.S)
    assert "kind-color" in page
    table = re.findall(r'<tr class="status-(\w+)" data-run="(\d+)">', gray)
    assert len(table) == 12 and table[0][0] == "running"  # newest first
    candidate = group(rf'<a href="/models/{CANDIDATE}">{CANDIDATE}</a>(.*?)</tr>', gray, re.S)
    assert "94.00%" in candidate and ">110<" in candidate and ">130<" in candidate and ">6<" in candidate
    assert "30:00" in candidate  # the duration
    trend = group(r'id="trend-gray">(.*?)</svg>', gray, re.S)
    points = re.findall(r'<circle class="point"[^>]*data-label="([^"]+)"', trend)
    marks = dict(re.findall(r'<g class="marker (\w+)" data-label="([^"]+)"', trend))
    # The last 10 runs: runs 2..11; 8 with a figure, the failed one and the running one as markers
    assert len(points) == 8 and points[-1] == CANDIDATE and "gray-run1" not in points
    assert sorted(marks) == ["failed", "running"]
    assert "y-tick" in trend and ">0%<" not in trend  # the y axis does not start at zero


def test_a_confusion_cell_links_to_exactly_its_images(rows, client):
    logged_in(client, UserRole.viewer)
    page = client.get(f"/models/{CANDIDATE}").text
    links = [link for link in cell_links(page) if "predicted=UNKNOWN" not in link]
    assert len(links) == len(LABELS) ** 2  # every cell opens its images
    expected = Counter((a.true, a.predicted) for a in rows.answers)
    for link in links:
        query = parse_qs(urlsplit(link).query)
        true, predicted = query["true"][0], query["predicted"][0]
        assert query["blind"] == [BLIND]
        if "Copper" not in (true, predicted):
            continue  # one row and one column are opened (empty, diagonal and off-diagonal cells): enough
        shown = client.get(link)
        assert shown.status_code == 200
        ids = [int(i) for i in re.findall(r'data-image="(\d+)"', shown.text)]
        assert sorted(ids) == sorted(a.image_id for a in rows.answers if (a.true, a.predicted) == (true, predicted))
        assert len(ids) == expected[(true, predicted)]
        count = re.search(rf'href="{re.escape(link.replace("&", "&amp;"))}" data-count="(\d+)"', page)
        assert count and int(count.group(1)) == len(ids)  # the grid's number is the list's length
        for i in ids:
            assert f'src="/images/{i}/thumb"' in shown.text and f"/models/{CANDIDATE}/gradcam/{i}.png" in shown.text
    # The Unknown column: the images of the label the filter sent to a person.
    short = next(link for link in cell_links(page) if "true=Short" in link and "predicted=UNKNOWN" in link)
    ids = [int(i) for i in re.findall(r'data-image="(\d+)"', client.get(short).text)]
    assert sorted(ids) == sorted(
        a.image_id for a in rows.answers if a.true == "Short" and a.confidence < rows.threshold
    )
    assert client.get(f"/models/{CANDIDATE}/errors?blind={BLIND}&true=Short&predicted=Nope").status_code == 404
    # These generated rows have no model files: the map says so (503) and the page still shows the images
    missing = client.get(f"/models/{CANDIDATE}/gradcam/{rows.answers[0].image_id}.png")
    assert missing.status_code == 503 and "no Grad-CAM" in missing.text


def test_the_model_page_figures_and_threshold_explorer_match_a_direct_computation(rows, client):
    logged_in(client, UserRole.viewer)
    right = np.array([a.true == a.predicted for a in rows.answers])
    confidence = np.array([a.confidence for a in rows.answers])

    def direct(t: float) -> tuple[float | None, float]:
        kept = confidence >= t
        return (float(right[kept].mean()) if kept.any() else None), float(1 - kept.mean())

    page = client.get(f"/models/{CANDIDATE}", params={"threshold": "0.6"}).text
    accuracy = group(r'class="accuracy">([\d.]+)%', page)
    assert float(accuracy) == pytest.approx(100 * right.mean(), abs=0.05)
    table = re.findall(r'<tr data-threshold="([\d.]+)" data-accepted="([\d.]*)" data-unknown="([\d.]+)"', page)
    thresholds = [float(t) for t, _, _ in table]
    assert 0.6 in thresholds and rows.threshold in thresholds and 0.9945 in thresholds
    for t, accepted, unknown in table:
        want_accepted, want_unknown = direct(float(t))
        assert float(unknown) == pytest.approx(want_unknown, abs=1e-6)
        assert (float(accepted) if accepted else None) == pytest.approx(want_accepted, abs=1e-6)
    assert '<polyline class="accepted"' in page and '<line class="current"' in page
    # Per label: recall and precision, with the evaluation's warnings (every label has 10 of 60 images: rare)
    per_label = group(r'class="data per-label">(.*?)</table>', page, re.S)
    true = np.array([LABELS.index(a.true) for a in rows.answers])
    pred = np.array([LABELS.index(a.predicted) for a in rows.answers])
    figures = scores.per_class(scores.confusion(true, pred, len(LABELS)), LABELS)
    for label in LABELS:
        row = group(rf"<td>{label}</td>(.*?)</tr>", per_label, re.S)
        assert f"{100 * figures[label]['recall']:.1f}%" in row and "only 10 images" in row
    # The comparison with production (from stored evaluations only), the gate verdict, the stage history
    comparison = group(r'id="comparison">(.*?)</table>', page, re.S)
    assert PRODUCTION in comparison and "not evaluated yet" in comparison and f"{BLIND}: accuracy" in comparison
    assert "PASSED" in page and "Pin_hole: recall 40.00% is low" in page
    history = group(r'id="history">(.*?)</table>', client.get(f"/models/{PRODUCTION}").text, re.S)
    assert "alice (os:alice) [prefect:aoi]" in history and "blind 0717 fine" in history
    assert client.get(f"/models/{CANDIDATE}", params={"threshold": "2"}).status_code == 400
    assert client.get("/models/nope").status_code == 404
    index = client.get("/models").text
    assert f'href="/models/{CANDIDATE}"' in index and "production" in index


def test_only_a_reviewer_may_decide_and_only_with_the_csrf_token(rows, client, settings):
    verdict = review_rows.promotion_records(settings)
    from promotion import stages

    stages.open_approval(settings, verdict, "00000000-0000-0000-0000-000000000000")
    for role in (UserRole.viewer, UserRole.engineer):
        client.cookies.clear()
        logged_in(client, role)
        page = client.get(f"/models/{CANDIDATE}").text
        assert 'id="approve"' not in page and "waits for a reviewer" in page
        refused = client.post(
            f"/models/{CANDIDATE}/decision", data={"decision": "approve", "csrf_token": token(client)}
        )
        assert refused.status_code == 403 and "reviewer" in refused.text
    client.cookies.clear()
    logged_in(client, UserRole.reviewer)
    assert 'id="approve"' in client.get(f"/models/{CANDIDATE}").text
    no_token = client.post(f"/models/{CANDIDATE}/decision", data={"decision": "approve"})
    assert no_token.status_code == 403
    assert stages.waiting_approval(settings, version=CANDIDATE) is not None  # nothing was decided
    # No approval waits for the production model: a clear refusal
    late = client.post(f"/models/{PRODUCTION}/decision", data={"decision": "approve", "csrf_token": token(client)})
    assert late.status_code == 409 and "no approval is waiting" in late.text


def test_drift_checks_per_kind_and_machine_link_their_reports(rows, client, settings):
    logged_in(client, UserRole.viewer)
    page = client.get("/drift").text
    checks = re.findall(r'<tr data-check="(\d+)"', page)
    assert len(checks) == 3 and "drift: retraining triggered" in page and "too few samples" in page
    machines = re.findall(r'<tr data-machine="([^"]+)"', page)
    assert Counter(machines) == {"AOI-1": 2, "AOI-2": 1}
    reports = [unescape(h) for h in re.findall(r'class="report" href="([^"]+)"', page)]
    assert len(reports) == 2 and all(h.startswith("/reports/monitoring/drift-gray-") for h in reports)
    bodies = {client.get(h).text for h in reports}
    assert bodies == {
        "<html><body><h1>Evidently overall report</h1></body></html>",
        "<html><body><h1>Evidently AOI-2 report</h1></body></html>",
    }
    assert "episode" in page and "open" in page
    trend = group(r'id="drift-trend-gray">(.*?)</svg>', page, re.S)
    assert len(re.findall(r'<circle class="point"', trend)) == 2  # the clean and the drifted check
    assert re.findall(r'<g class="marker ([\w-]+)" data-label', trend) == ["too-few-samples"]


def test_the_report_route_serves_nothing_outside_the_reports_folder(rows, client, settings):
    logged_in(client, UserRole.viewer)
    (settings.home / "secret.txt").write_text("not a report")
    for path in (
        "/reports/../secret.txt",
        "/reports/..%2Fsecret.txt",
        "/reports/%2e%2e/secret.txt",
        "/reports/monitoring/..%2F..%2Fsecret.txt",
        f"/reports/{settings.home / 'secret.txt'}",
        "/reports/%2Fetc%2Fpasswd",
        "/reports/monitoring",
    ):
        response = client.get(path)
        assert response.status_code == 404 and "not a report" not in response.text, path


def test_a_link_out_of_the_reports_folder_is_refused(settings):
    from fastapi import HTTPException

    from workbench.reports import report_file, report_href

    (settings.reports_dir / "monitoring").mkdir(parents=True)
    secret = settings.home / "secret.txt"
    secret.write_text("not a report")
    (settings.reports_dir / "monitoring" / "out.html").symlink_to(secret)
    (settings.reports_dir / "monitoring" / "in.html").write_text("a report")
    assert report_file(settings, "monitoring/in.html").read_text() == "a report"
    for relative in ("monitoring/out.html", "../secret.txt", str(secret), "monitoring/../../secret.txt", ""):
        with pytest.raises(HTTPException):
            report_file(settings, relative)
    assert report_href(settings, str(secret)) is None
    assert report_href(settings, str(settings.reports_dir / "monitoring" / "in.html")) == "/reports/monitoring/in.html"


def test_pages_need_a_login(rows, client):
    for path in ("/datasets", "/runs", f"/models/{CANDIDATE}", "/drift", "/reports/monitoring/x.html"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
