"""The review queue through the ASGI test client: the page, its orders, the decisions and who may make them."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import KeptAnswer, KeptAnswerStatus, LineFeedback, UserRole
from tests.workbench.helpers import logged_in, token
from tests.workbench.kept_helpers import kept_answers
from workbench import review_queue

SHOWN = re.compile(r'id="review-item" data-request-id="([^"]+)"')
UPCOMING = re.compile(r'class="tile" href="[^"]*" data-request-id="([^"]+)"')


def shown(html: str) -> str | None:
    match = SHOWN.search(html)
    return match.group(1) if match else None


def order_of(client: TestClient, query: str = "") -> list[str]:
    html = client.get(f"/review{query}").text
    first = shown(html)
    return ([first] if first else []) + UPCOMING.findall(html)


def row(settings, request_id: str) -> KeptAnswer:
    with db.session(settings.catalog_url) as s:
        return s.exec(select(KeptAnswer).where(KeptAnswer.request_id == request_id)).one()


def feedback(settings) -> dict[str, LineFeedback]:
    with db.session(settings.catalog_url) as s:
        return {f.request_id: f for f in s.exec(select(LineFeedback)).all()}


def decide(client: TestClient, request_id: str, label: str, **form) -> httpx.Response:
    data = {"label": label, "csrf_token": token(client, "/review"), **form}
    return client.post(f"/review/{request_id}/decision", data=data, follow_redirects=False)


ANSWERS = [("SHORT", 0.60), ("SHORT", 0.40), ("SHORT", 0.50), ("OPEN", 0.90), ("SHORT", 0.30), ("PINHOLE", 0.95)]


@pytest.mark.parametrize(
    "order, expected",
    [
        ("lowest_confidence", [4, 1, 2, 0, 3, 5]),
        ("oldest", [0, 1, 2, 3, 4, 5]),
        # rank 1 of each answered label (lowest confidence first among them), then rank 2...: the rare
        # OPEN and PINHOLE answers come before the second SHORT.
        ("class_quota", [4, 3, 5, 1, 2, 0]),
    ],
)
def test_the_queue_follows_the_order_setting(configure, order, expected):
    from workbench.app import create_app

    settings = configure(WORKBENCH__REVIEW_ORDER=order)
    ids = kept_answers(settings, ANSWERS)
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        assert order_of(client) == [ids[k] for k in expected]


def test_class_quota_goes_round_the_classes_the_model_leaned_to_even_for_unknown_answers(catalog_url, configure):
    from tests.workbench.helpers import board
    from tests.workbench.kept_helpers import keep
    from workbench.app import create_app

    settings = configure(WORKBENCH__REVIEW_ORDER="class_quota")
    leaned = [("SHORT", 0.5), ("SHORT", 0.45), ("SHORT", 0.40), ("PINHOLE", 0.6), ("SHORT", 0.35), ("OPEN", 0.7)]
    for k, (top1, p) in enumerate(leaned):
        keep(
            settings,
            board(500 + k, mode="L"),
            request_id=f"u{k}",
            label="UNKNOWN",  # every one answered Unknown: the answer alone would make one class of them all
            confidence=p,
            top=[[top1, p], ["NICK", round(1 - p - 0.01, 4)], ["SPUR", 0.01]],
        )
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        assert order_of(client) == ["u4", "u3", "u5", "u2", "u1", "u0"]


def test_an_unknown_order_setting_is_refused(configure):
    with pytest.raises(ValueError, match="review_order"):
        configure(WORKBENCH__REVIEW_ORDER="newest")


def test_the_page_shows_the_answer_top3_codes_and_filters_by_kind(settings, client):
    gray = kept_answers(settings, [("SHORT", 0.41)])
    color = kept_answers(settings, [("MISSING_HOLE", 0.2)], kind="color", seed=1)
    logged_in(client, UserRole.engineer)
    page = client.get("/review?kind=gray").text
    assert shown(page) == gray[0] and color[0] not in page
    assert 'href="/review"' in client.get("/gallery").text, "the queue is in the nav"
    top = re.search(r'<table class="data" id="top3">(.*?)</table>', page, re.S)
    assert top is not None
    assert re.findall(r"<td>(\w+)</td><td class=\"num\">", top.group(1)) == ["SHORT", "OPEN", "NICK"]
    assert 'id="answer-machine">AOI-1<' in page and 'id="answer-part">P-100<' in page
    assert 'id="answer-upstream">SHORT<' in page and "gray-v1" in page
    buttons = re.findall(r'value="([A-Z_]+)" data-key="(\w)"', page)
    assert buttons[:7] == [(label, str(k + 1)) for k, label in enumerate(review_queue.fine_classes("gray"))]
    assert buttons[7:] == [("NOT_DEFECT", "n"), ("BAD_IMAGE", "b"), ("SKIP", "s")]
    assert shown(client.get("/review?kind=color").text) == color[0]
    image = client.get(f"/review/{gray[0]}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert client.get(f"/review/{gray[0]}/thumb").headers["content-type"] == "image/jpeg"
    # No model files here: the map is refused with a reason, the page keeps the image.
    assert client.get(f"/review/{gray[0]}/gradcam.png").status_code == 503
    assert client.get("/review?kind=blue").status_code == 400
    assert client.get("/review/nope/image").status_code == 404


def test_a_label_is_recorded_with_the_logged_in_name_and_the_next_answer_shows(settings, client):
    ids = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.4), ("SPUR", 0.5)])
    logged_in(client, UserRole.engineer, "erin")
    response = decide(client, ids[0], "NICK")
    assert response.status_code == 303 and response.headers["location"] == "/review"
    page = client.get("/review").text
    assert f"Request {ids[0]}: labelled NICK." in page and shown(page) == ids[1]
    answer = row(settings, ids[0])
    assert (answer.status, answer.true_label, answer.decided_by) == ("labelled", "NICK", "erin")
    assert answer.decided_at is not None
    truth = feedback(settings)[ids[0]]
    assert (truth.label, truth.by, truth.source) == ("NICK", "erin", "review")
    # A name the label map knows resolves as at ingest; the kind filter carries over to the next page.
    assert decide(client, ids[1], "mouse bite", kind="gray").headers["location"] == "/review?kind=gray"
    assert row(settings, ids[1]).true_label == "NICK"


def test_not_a_defect_bad_image_and_skip(settings, client):
    gray = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.4), ("SPUR", 0.5)])
    color = kept_answers(settings, [("SHORT", 0.3)], kind="color", seed=2)
    logged_in(client, UserRole.reviewer, "rita")
    for request_id, label in [(gray[0], "NOT_DEFECT"), (gray[1], "BAD_IMAGE"), (gray[2], "SKIP")]:
        assert decide(client, request_id, label).status_code == 303
    assert decide(client, color[0], "not a defect").status_code == 303
    got = {r: (row(settings, r).status, row(settings, r).true_label) for r in gray + color}
    assert got == {
        gray[0]: ("not_defect", "PASS"),  # gray has a class for it: PASS
        gray[1]: ("bad_image", None),
        gray[2]: ("skipped", None),
        color[0]: ("not_defect", "NOT_DEFECT"),  # colour has none
    }
    truths = feedback(settings)
    assert {r: f.label for r, f in truths.items()} == {gray[0]: "PASS", color[0]: "NOT_DEFECT"}
    assert shown(client.get("/review").text) is None, "a skipped answer leaves the default queue"
    assert shown(client.get("/review?status=skipped").text) == gray[2]
    # A skipped answer can still be labelled later.
    assert decide(client, gray[2], "SPUR", status="skipped").headers["location"] == "/review?status=skipped"
    assert row(settings, gray[2]).status == "labelled"


def test_a_decided_answer_is_not_overwritten(settings, client):
    ids = kept_answers(settings, [("SHORT", 0.3)])
    logged_in(client, UserRole.engineer, "erin")
    assert decide(client, ids[0], "SHORT").status_code == 303
    client.post("/logout", data={"csrf_token": token(client)})
    logged_in(client, UserRole.engineer, "ed")
    response = decide(client, ids[0], "OPEN")
    assert response.status_code == 303
    page = client.get("/review").text
    assert f"request {ids[0]} was already labelled SHORT by erin" in page
    refused = client.post(
        f"/review/{ids[0]}/decision",
        data={"label": "OPEN", "csrf_token": token(client, "/review")},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 409 and "by erin" in refused.json()["error"]
    answer = row(settings, ids[0])
    assert (answer.true_label, answer.decided_by) == ("SHORT", "erin")
    assert feedback(settings)[ids[0]].label == "SHORT"
    assert "already labelled SHORT by erin" in client.get(f"/review?request_id={ids[0]}").text


def test_bad_labels_are_refused_and_nothing_changes(settings, client):
    ids = kept_answers(settings, [("SHORT", 0.3)])
    logged_in(client, UserRole.engineer)
    for label in ("MISSING_HOLE", "banana", ""):  # MISSING_HOLE is a colour class, not a gray one
        response = client.post(
            f"/review/{ids[0]}/decision",
            data={"label": label, "csrf_token": token(client, "/review")},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 400, label
    assert row(settings, ids[0]).status == "waiting" and not feedback(settings)
    missing = decide(client, "no-such-request", "SHORT")
    assert missing.status_code == 303 and "no kept answer" in client.get("/review").text


def test_viewers_look_but_cannot_decide_and_csrf_is_checked(settings, client):
    ids = kept_answers(settings, [("SHORT", 0.3)])
    logged_in(client, UserRole.viewer)
    page = client.get("/review").text
    assert shown(page) == ids[0] and 'id="decision-form"' not in page and 'id="viewer-note"' in page
    assert decide(client, ids[0], "SHORT").status_code == 403
    client.post("/logout", data={"csrf_token": token(client)})
    logged_in(client, UserRole.engineer)
    no_token = client.post(f"/review/{ids[0]}/decision", data={"label": "SHORT"}, follow_redirects=False)
    assert no_token.status_code == 403
    assert row(settings, ids[0]).status == KeptAnswerStatus.waiting


def test_not_logged_in_is_sent_to_login(settings, client):
    kept_answers(settings, [("SHORT", 0.3)])
    response = client.get("/review", follow_redirects=False, headers={"Accept": "text/html"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_the_queue_on_sqlite_and_postgresql(catalog_url, configure):
    from workbench.app import create_app

    settings = configure(WORKBENCH__REVIEW_ORDER="class_quota")
    ids = kept_answers(settings, ANSWERS)
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.engineer, "erin")
        assert order_of(client) == [ids[k] for k in (4, 3, 5, 1, 2, 0)]
        assert decide(client, ids[4], "SHORT").status_code == 303
        assert order_of(client) == [ids[k] for k in (1, 3, 5, 2, 0)]  # SHORT's next answer is its rank 1 now
    assert row(settings, ids[4]).decided_by == "erin" and feedback(settings)[ids[4]].source == "review"
