"""Hand-made malformed requests against one served process (``aoi serve --background``, BentoML and all), beside
the schema-based fuzzing of test_fuzz.py: every one is a 4xx with a JSON message, the log holds no traceback,
unknown paths leave /metrics bounded, and /healthz keeps answering while a large image is decoded.

The AOI_HOME has no production model: everything here is refused before a model is needed, and a well-formed
request is the control (it passes every check and gets the 503 "no production model").
"""

from __future__ import annotations

import concurrent.futures
import io
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.flows.helpers import aoi
from tests.helpers import free_port, fresh_settings, image_bytes
from tests.serving.helpers import CT, GOOD, MALFORMED, ODD_AUTHORIZATION, body, image_part, png, text_part

pytestmark = pytest.mark.slow

KEY = "malformed-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, log path) of one service for the whole module."""
    home = tmp_path_factory.mktemp("malformed") / "aoi_home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AOI_HOME", str(home))
        env.setenv("AOI_API_KEY", KEY)
        env.setenv("AOI_SERVING__PORT", str(free_port()))
        fresh_settings()
        started = aoi("serve", "--background", "--json")
        try:
            yield started["url"], Path(started["log"])
        finally:
            from serving.process import stop

            stop(fresh_settings(), timeout_s=5)  # nothing to flush here: no need to wait for a slow exit
    fresh_settings()


def _png(mode: str, size: int = 32, **kw) -> bytes:
    buf = io.BytesIO()
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "I;16": 1}[mode]
    pixels = np.random.default_rng(1).integers(0, 255, (size, size, channels) if channels > 1 else (size, size))
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 250)
    else:
        image = Image.fromarray(pixels.astype(np.uint8), mode)
    image.save(buf, "PNG", **kw)
    return buf.getvalue()


# Images that are whole and decodable, but not what the line sends for the kind asked.
WRONG_IMAGES = {
    "gray PNG as colour": (png(), "color"),
    "RGB PNG as gray": (png(mode="RGB"), "gray"),
    "gray JPEG as colour": (image_bytes(mode="L", fmt="JPEG"), "color"),
    "RGB JPEG as gray": (image_bytes(mode="RGB", fmt="JPEG"), "gray"),
    "RGBA PNG": (_png("RGBA"), "color"),
    "16-bit gray PNG": (_png("I;16"), "gray"),
    "CMYK JPEG": (image_bytes(mode="CMYK", fmt="JPEG"), "color"),
    "GIF": (image_bytes(mode="L", fmt="GIF"), "gray"),
    "TIFF": (image_bytes(mode="L", fmt="TIFF"), "gray"),
    "WebP": (image_bytes(mode="RGB", fmt="WEBP"), "color"),
    "truncated PNG": (png()[:80], "gray"),
    "text": (b"GET / HTTP/1.1 not an image", "gray"),
    "an HTML page": (b"<html><script>alert(1)</script></html>", "gray"),
    "a ZIP": (b"PK\x03\x04" + b"\0" * 60, "gray"),
}


def post(url: str, content: bytes, content_type: str = CT, headers: dict | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/classify",
        content=content,
        headers={**AUTH, "Content-Type": content_type, **(headers or {})},
        timeout=30,
    )


def _refused(answer: httpx.Response, case) -> None:
    assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text[:300])
    data = answer.json()
    assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"], (case, answer.text[:300])


def raw(url: str, request: bytes) -> bytes:
    """Send bytes no HTTP client would; the status line and what follows."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_bodies_images_and_credentials_are_4xx_with_a_message_and_no_traceback(served):
    url, log = served
    control = post(url, GOOD)
    assert control.status_code == 503 and "no production model" in control.json()["error"], control.text
    for case, content in MALFORMED.items():
        _refused(post(url, content), case)
    for case, (data, kind) in WRONG_IMAGES.items():
        answer = post(url, body(image_part(data=data), text_part(b"kind", kind.encode())))
        _refused(answer, case)
        assert answer.status_code in (415, 422), (case, answer.text)
    for content_type in (
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary="b0undary"; charset',
    ):
        _refused(
            post(url, GOOD if "json" not in content_type else b'{"image": "/etc/passwd"}', content_type), content_type
        )
    for value in ODD_AUTHORIZATION:
        reply = raw(
            url,
            b"POST /classify HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
            + CT.encode()
            + b"\r\nAuthorization: "
            + value
            + b"\r\nContent-Length: %d\r\n\r\n" % len(GOOD)
            + GOOD,
        )
        # Not even legal HTTP (a DEL byte): the HTTP server's own 400; otherwise the guard's 401 with its message.
        assert (reply.startswith(b"HTTP/1.1 401") and b"AOI_API_KEY" in reply) or (
            reply.startswith(b"HTTP/1.1 400") and b"\x7f" in value
        ), (value[:40], reply[:300])
    for header in (
        b"Authorization: Bearer " + KEY.encode() + b"\x00",
        b"Authorization: Bearer \x01\x02",
        b"Authorization: " + b"B" * 100_000,
    ):
        reply = raw(url, b"GET /model HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n")
        assert reply.startswith((b"HTTP/1.1 4", b"")) and not reply.startswith(b"HTTP/1.1 5"), reply[:200]
    _refused(
        httpx.get(f"{url}/machine_params", params={"machine_id": "vrs\x00", "part_no": "P"}, headers=AUTH), "NUL query"
    )
    _refused(httpx.get(f"{url}/machine_params?machine_id=%ff&part_no=P", headers=AUTH), "not UTF-8 query")
    for path in ("/forward_gray", "/forward_color", "/nope", "/../etc/passwd", "/classify/x"):
        _refused(httpx.post(f"{url}{path}", json={"batch": "abc"}, headers=AUTH), path)
    _refused(httpx.get(f"{url}/classify", headers=AUTH), "GET /classify")
    time.sleep(0.5)  # the last log lines
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.find("Traceback") - 300 : text.find("Traceback") + 3000]
    assert KEY not in text


def test_unknown_paths_do_not_grow_metrics_which_need_the_key(served):
    url, _ = served
    assert httpx.get(f"{url}/metrics").status_code == 401

    def series() -> set[str]:
        answer = httpx.get(f"{url}/metrics", headers=AUTH)
        assert answer.status_code == 200
        return {line.rsplit(" ", 1)[0] for line in answer.text.splitlines() if line and not line.startswith("#")}

    httpx.get(f"{url}/nothing-here")
    before = series()
    with httpx.Client() as client:
        for i in range(60):
            client.get(f"{url}/scan-{i}")
            client.post(f"{url}/wp-admin/{i}.php", headers=AUTH)
    after = series()
    assert not any("scan-" in s or "wp-admin" in s for s in after)
    assert len(after - before) <= 25, sorted(after - before)  # one new status of the "other" route at most


def _big_gray_png(side: int) -> bytes:
    """A large gray PNG that compresses well (a fine pattern): small to send, slow to decode and measure."""
    row, column = (np.arange(side) * 7 % 251).astype(np.uint16), (np.arange(side) * 3 % 251).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(((row[None, :] + column[:, None]) % 251).astype(np.uint8), "L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_healthz_answers_while_large_images_are_decoded(served):
    url, _ = served
    big = body(image_part(data=_big_gray_png(4800)), text_part(b"kind", b"gray"))
    with httpx.Client(timeout=60) as client:
        client.get(f"{url}/healthz")
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            started = time.perf_counter()
            jobs = [pool.submit(post, url, big) for _ in range(6)]
            waits = []
            while not all(job.done() for job in jobs):
                t = time.perf_counter()
                assert client.get(f"{url}/healthz").status_code == 200
                waits.append(time.perf_counter() - t)
                time.sleep(0.02)
            busy = time.perf_counter() - started
    assert {job.result().status_code for job in jobs} == {503}  # decoded and measured, then: no model
    waits.sort()
    # Relative, not timed: on the event loop, each decode stalls /healthz for its whole length, so the slowest
    # /healthz would take about busy / 6 and few would fit in; off it, /healthz waits for little of the time.
    print(f"6 images of 4800x4800 in {busy:.2f} s; /healthz: {len(waits)} calls, slowest {waits[-1] * 1e3:.0f} ms")
    assert len(waits) >= 8 and waits[-1] < busy / 8, (busy, waits[-5:])
