"""The guard in front of the service, without a model: the strict /classify form, plain-text fields, odd
credentials, bounded metrics, and who may ask without a key. Fast: a plain Starlette app stands behind the guard
(the served process with BentoML behind it is tested in test_malformed.py)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from aoi.settings import Settings
from serving.guard import Guard
from serving.upload import Refused, parse_form, text_problem
from tests.serving.helpers import CT, GOOD, MALFORMED, ODD_AUTHORIZATION, body, image_part, png, text_part

KEY = "guard-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


async def _echo(request: Request) -> JSONResponse:
    """What an app behind the guard receives: the form as python-multipart (BentoML's parser) reads it."""
    form = await request.form()
    image = form.get("image")
    return JSONResponse(
        {
            "image_bytes": len(await image.read()) if image is not None else None,
            "filename": getattr(image, "filename", None),
            "fields": {k: json.loads(v) for k, v in form.items() if k != "image"},
        }
    )


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "query": dict(request.query_params)})


def guarded(api_key: str | None = KEY, **serving) -> TestClient:
    app = Starlette(
        routes=[
            Route("/classify", _echo, methods=["POST"]),
            Route("/model", _ok),
            Route("/healthz", _ok),
            Route("/machine_params", _ok),
        ]
    )
    settings = Settings(api_key=api_key, serving=serving)
    return TestClient(Guard(app, settings))


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_form_is_refused_with_a_message(case):
    with pytest.raises(Refused) as refused:
        parse_form(CT, MALFORMED[case])
    assert 400 <= refused.value.status < 500 and len(str(refused.value)) > 10


def test_what_real_clients_send_is_accepted_and_handed_on_as_a_fresh_copy():
    request = httpx.Request(
        "POST",
        "http://x/classify",
        files={"image": ("crop 01 (v2).png", png(), "image/png")},
        data={"kind": "color", "machine_id": "vrs-01", "part_no": "P-1001"},
    )
    form = parse_form(request.headers["content-type"], request.read())
    assert form.image == png() and form.fields == {"kind": "color", "machine_id": "vrs-01", "part_no": "P-1001"}
    assert parse_form(CT, GOOD).fields["machine_id"] == "機台-ü1"  # text beyond ASCII is text
    # BentoML's own client sends each value JSON-encoded, and null for an unset one; curl sends a number bare.
    as_json = body(
        image_part(),
        text_part(b"kind", b'"color"'),
        text_part(b"machine_id", b'"vrs-\\u00fc"'),
        text_part(b"part_no", b"null"),
        text_part(b"upstream_code", b"1234"),
    )
    assert parse_form(CT, as_json).fields == {"kind": "color", "machine_id": "vrs-ü", "upstream_code": "1234"}
    with guarded() as client:
        echoed = client.post("/classify", content=GOOD, headers={**AUTH, "Content-Type": CT})
        assert echoed.status_code == 200, echoed.text
        assert echoed.json() == {
            "image_bytes": len(png()),
            "filename": "image",  # the app never sees the client's name
            "fields": {"kind": "gray", "machine_id": "機台-ü1"},
        }


def test_malformed_requests_get_a_4xx_json_message_through_the_guard():
    with guarded() as client:
        for case, content in MALFORMED.items():
            answer = client.post("/classify", content=content, headers={**AUTH, "Content-Type": CT})
            assert 400 <= answer.status_code < 500 and answer.json()["error"], (case, answer.status_code, answer.text)
        for content_type in (
            "application/json",
            "text/plain",
            "multipart/form-data",
            "multipart/mixed; boundary=b0undary",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=b0undary; boundary=x",
            "multipart/form-data; boundary=" + "x" * 71,
        ):
            answer = client.post("/classify", content=GOOD, headers={**AUTH, "Content-Type": content_type})
            assert answer.status_code in (400, 415) and answer.json()["error"], (content_type, answer.text)


def test_the_body_limit_holds_whatever_content_length_says():
    with guarded(max_body_bytes=2_000) as client:
        big = body(image_part(data=png(size=200)))
        assert client.post("/classify", content=big, headers={**AUTH, "Content-Type": CT}).status_code == 413

    async def lying() -> int:  # Content-Length says 100, the body goes on
        messages = [
            {"type": "http.request", "body": b"x" * 1500, "more_body": True},
            {"type": "http.request", "body": b"x" * 1500, "more_body": False},
        ]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/classify",
            "query_string": b"",
            "client": ("127.0.0.1", 1),
            "headers": [
                (b"content-type", CT.encode()),
                (b"content-length", b"100"),
                (b"authorization", f"Bearer {KEY}".encode()),
            ],
        }
        await Guard(_never, Settings(api_key=KEY, serving={"max_body_bytes": 2_000}))(scope, receive, send)
        return sent[0]["status"]

    assert asyncio.run(lying()) == 413


async def _never(scope, receive, send):
    raise AssertionError("the guard let this through")


@pytest.mark.parametrize(
    "value", ["aoi\x00", "\x07bell", "tab\there", "c1\u0080", "zw\u200d", "\ufeffbom", "pu\ue000", "para\u2029"]
)
def test_text_with_control_or_invisible_characters_is_not_plain_text(value):
    assert "U+" in text_problem("machine_id", value)


@pytest.mark.parametrize("value", ["aoi-3", "VRS_01.b", "機台-1", "Ü", "P 1001", ""])
def test_plain_text_in_any_script_is_accepted(value):
    assert text_problem("machine_id", value) is None


def test_query_parameters_are_plain_text_too():
    with guarded() as client:
        ok = client.get("/machine_params", params={"machine_id": "vrs-01", "part_no": "P-1"}, headers=AUTH)
        assert ok.status_code == 200
        for query in (
            "machine_id=vrs%00&part_no=P",
            "machine_id=%1b&part_no=P",
            "machine_id=%C2%85&part_no=P",
            "machine_id=%ff&part_no=P",
            "ma%00chine=1",
        ):
            answer = client.get(f"/machine_params?{query}", headers=AUTH)
            assert answer.status_code == 400 and answer.json()["error"], (query, answer.text)


def test_odd_credentials_are_a_401_with_a_message_never_an_error():
    with guarded() as client:
        for value in ODD_AUTHORIZATION:
            answer = client.get("/model", headers=[(b"authorization", value)])
            assert answer.status_code == 401 and "AOI_API_KEY" in answer.json()["error"], (value[:40], answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
        assert client.get("/model", headers={"Authorization": f"bearer   {KEY}"}).status_code == 200  # case, spaces
        assert client.get("/healthz", headers=[(b"authorization", b"Bearer \xff")]).status_code == 200  # open


def test_unknown_paths_do_not_grow_the_metrics_and_metrics_need_the_key():
    with guarded() as client:
        assert client.get("/metrics").status_code == 401
        client.get("/model", headers=AUTH)

        def series() -> list[str]:
            text = client.get("/metrics", headers=AUTH).text
            return [line for line in text.splitlines() if line and not line.startswith("#")]

        before = series()
        for i in range(40):
            client.get(f"/probe-{i}")
            client.post(f"/admin/{i}", headers=AUTH)
            client.request(f"M{i}", "/model")
        after = series()
        assert len(after) - len(before) < 40, len(after) - len(before)  # a few "other" series, not 120 or more
        assert not any("probe-" in line or "admin/" in line or "M1" in line for line in after)
        assert any('route="other"' in line for line in after)
        assert any('route="/model"' in line and 'status="200"' in line for line in after)


def test_without_a_key_only_this_host_is_answered():
    async def call(client: tuple[str, int], path: str = "/model") -> int:
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [], "client": client}
        await Guard(_ok_app, Settings(api_key=None))(scope, receive, send)
        return sent[0]["status"]

    assert asyncio.run(call(("203.0.113.7", 5000))) == 403
    assert asyncio.run(call(("10.1.2.3", 5000))) == 403
    assert asyncio.run(call(("203.0.113.7", 5000), "/healthz")) == 200  # probes from the cluster still see health
    assert asyncio.run(call(("127.0.0.1", 5000))) == 200
    assert asyncio.run(call(("::1", 5000))) == 200


async def _ok_app(scope, receive, send):
    await JSONResponse({"ok": True})(scope, receive, send)


@pytest.mark.parametrize(
    "key", ["", "   ", "short-key", "a key with spaces inside", "ключ-ключ-ключ-ключ-ключ", "x\x00" * 10]
)
def test_an_empty_short_or_odd_api_key_is_a_settings_error_that_does_not_show_it(key):
    with pytest.raises(ValidationError) as err:
        Settings(api_key=key)
    assert "AOI_API_KEY" in str(err.value)
    if key.strip():
        assert key not in str(err.value)


def test_image_formats_are_a_setting_of_known_formats():
    assert Settings().serving.image_formats == ("PNG", "JPEG", "BMP")
    assert Settings(serving={"image_formats": ["png", "tiff"]}).serving.image_formats == ("PNG", "TIFF")
    for bad in (["EPS"], ["GIF"], []):
        with pytest.raises(ValidationError):
            Settings(serving={"image_formats": bad})
