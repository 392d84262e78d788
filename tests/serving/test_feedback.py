"""Confirmed truth from the line: serving/feedback.py's ``confirm`` and ``POST /feedback`` (fuzzed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import select
from starlette.testclient import TestClient

from aoi.catalog import db
from aoi.catalog.models import LineFeedback, Prediction, table_of
from aoi.store import sha256_of
from serving.feedback import BadLabel, FeedbackError, UnknownAnswer, confirm
from tests.serving.helpers import KEY, an_answer, png, row


def answers(settings, n: int = 3, kind: str = "gray") -> list[str]:
    """Prediction rows ``req000000`` ... as the prediction log writes them."""
    rows = [row(i, kind=kind) for i in range(n)]
    with db.get_engine(settings.catalog_url).begin() as connection:
        connection.execute(table_of(Prediction).insert(), rows)
    return [r["request_id"] for r in rows]


def feedback_rows(settings) -> list[LineFeedback]:
    with db.session(settings.catalog_url) as s:
        return list(s.exec(select(LineFeedback)).all())


def test_confirm_is_idempotent_refuses_a_second_label_and_checks_the_kind(settings):
    ids = answers(settings)
    with db.session(settings.catalog_url) as s:
        first = confirm(s, ids[0], "Mouse_bite", "vrs-01", "api")  # the label mapping's name for NICK
        again = confirm(s, ids[0], "NICK", "operator-7", "import")
        other = confirm(s, ids[0], "SHORT", "vrs-01", "api")
        no_defect = confirm(s, ids[1], "not-defect", "vrs-01", "review")
        with pytest.raises(UnknownAnswer):
            confirm(s, "f" * 32, "SHORT", "vrs-01", "api")
        with pytest.raises(BadLabel, match="not a class of a gray answer"):
            confirm(s, ids[2], "MISSING_HOLE", "vrs-01", "api")  # a colour class, not a gray one
        with pytest.raises(FeedbackError, match="U\\+0000"):
            confirm(s, ids[2], "SHORT", "vrs\x00", "api")
        fresh = confirm(s, "a" * 32, "MISSING_HOLE", "vrs-01", "api", kind="color")  # still in the journal
    assert (first.outcome, first.label, again.outcome, again.label, again.by) == (
        "created",
        "NICK",
        "same",
        "NICK",
        "vrs-01",
    )
    assert (other.outcome, other.label) == ("conflict", "NICK")  # the first confirmation stands
    # gray's class for "not a defect" is PASS: the same truth whether it comes from /feedback or the review queue
    assert (no_defect.outcome, no_defect.label, fresh.outcome) == ("created", "PASS", "created")
    rows = {r.request_id: (r.label, r.by, r.source) for r in feedback_rows(settings)}
    assert rows == {
        ids[0]: ("NICK", "vrs-01", "api"),
        ids[1]: ("PASS", "vrs-01", "review"),
        "a" * 32: ("MISSING_HOLE", "vrs-01", "api"),
    }


def post(client, payload, key: str | None = KEY):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/feedback", json=payload, headers=headers)


def test_feedback_over_http_answers_200_409_404_422_401_and_4xx_for_bad_bodies(configure, asgi_app):
    settings = configure(API_KEY=KEY)
    ids = answers(settings)
    report = {"request_id": ids[0], "label": "SHORT", "by": "vrs-01"}
    with TestClient(asgi_app) as client:
        assert post(client, report, key=None).status_code == 401
        assert post(client, report, key="wrong").status_code == 401
        created = post(client, report)
        assert created.status_code == 200, created.text
        assert created.json()["outcome"] == "created" and created.json()["label"] == "SHORT"
        same = post(client, report)
        assert (
            same.status_code == 200 and same.json()["outcome"] == "same" and same.json()["at"] == created.json()["at"]
        )
        conflict = post(client, {**report, "label": "OPEN"})
        assert conflict.status_code == 409 and "already confirmed as SHORT" in conflict.json()["error"]
        unknown = post(client, {**report, "request_id": "0" * 32})
        assert unknown.status_code == 404 and "no answer" in unknown.json()["error"]
        bad_label = post(client, {**report, "request_id": ids[1], "label": "SCRATCH"})
        assert bad_label.status_code == 422 and "NOT_DEFECT" in bad_label.json()["error"]
        for body in ({"request_id": ids[1]}, {**report, "label": 7}, {**report, "by": ""}, [1, 2], "x"):
            refused = post(client, body)
            assert 400 <= refused.status_code < 500, (body, refused.text)
        not_json = client.post(
            "/feedback",
            content=b"{nope",
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert 400 <= not_json.status_code < 500
        for content_type in ("multipart/form-data", "text/plain", None):  # multipart without a boundary was a 500
            headers = {"Authorization": f"Bearer {KEY}", **({"Content-Type": content_type} if content_type else {})}
            wrong = client.post("/feedback", content=json.dumps(report).encode(), headers=headers)
            assert wrong.status_code == 415 and "application/json" in wrong.json()["error"]
        huge = post(client, {**report, "by": "x" * 20_000})
        assert huge.status_code == 413 and "16,384" in huge.json()["error"]
        assert client.get("/feedback", headers={"Authorization": f"Bearer {KEY}"}).status_code == 405
    assert [(r.request_id, r.label) for r in feedback_rows(settings)] == [(ids[0], "SHORT")]


_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=200),
    st.sampled_from(["SHORT", "NOT_DEFECT", "req000000", "", " ", "\x00", "\u202e", "null"]),
)
_VALUE = st.one_of(
    _TEXT, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(), st.lists(_TEXT, max_size=3)
)


_BODY = st.one_of(
    st.fixed_dictionaries({"request_id": _VALUE, "label": _VALUE, "by": _VALUE}),
    st.dictionaries(st.sampled_from(["request_id", "label", "by", "extra", "kind"]), _VALUE, max_size=5),
    _VALUE,
)


def test_fuzzed_feedback_bodies_are_never_a_server_error(configure, asgi_app):
    answers(configure(API_KEY=KEY), 2)
    seen: set[int] = set()
    with TestClient(asgi_app) as client:  # one service for every fuzzed body

        @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(body=_BODY)
        def check(body) -> None:
            response = post(client, body)
            seen.add(response.status_code)
            assert response.status_code < 500, (body, response.text)
            assert response.status_code in (200, 409) or "error" in json.dumps(response.json())

        check()
    assert len(seen) >= 2, seen  # it reached the handler's checks, not one refusal for everything


def test_a_just_answered_request_can_be_confirmed_and_its_image_is_kept(configure):
    """The answer hook of the service: the answer's image is queued for keeping, and a confirmation that comes
    before its prediction row reaches the catalog (still in the journal) is recorded, not a 404."""
    import asyncio

    from serving.service import Classifier

    settings = configure(SERVING__KEEP_SHARE=0)
    service = Classifier()  # no production model: it answers nothing, but /feedback works
    try:
        data = png(seed=5)
        fresh = an_answer("b" * 32, route="REVIEW")
        service._answered(fresh, data, sha256_of(data))  # what /classify does once the answer is logged
        done = asyncio.run(service.feedback(request_id=fresh.request_id, label="SPUR", by="vrs-01"))
        unknown = asyncio.run(service.feedback(request_id="c" * 32, label="SPUR", by="vrs-01"))
        described = service.describe()["kept_answers"]
    finally:
        service.close()
    assert done["outcome"] == "created" and done["kind"] == "gray"
    assert unknown.status_code == 404
    assert described["by_reason"]["review"] + described["queued"] == 1, described
    [kept_row] = _kept(settings)  # close() drained the keeper
    assert (kept_row.request_id, kept_row.reason, kept_row.bytes) == (fresh.request_id, "review", len(data))
    assert [(r.request_id, r.label) for r in feedback_rows(settings)] == [(fresh.request_id, "SPUR")]


def _kept(settings):
    from aoi.catalog.models import KeptAnswer

    with db.session(settings.catalog_url) as s:
        return list(s.exec(select(KeptAnswer)).all())
