"""Helpers the serving tests share: images, promotion, hand-made /classify bodies, the prediction log."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import numpy as np
from PIL import Image
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Prediction
from aoi.image_metrics import Tone
from promotion import stages
from promotion.gate import rule
from serving.answer import Answer, Candidate


def promote(settings, version: str, kind: str = "gray", reviewer: str = "test") -> None:
    """Make ``version`` production the only way the system allows: a passed gate verdict and an approval."""
    current = stages.production(settings, kind)  # the gate compares with it, as the promote flow's does
    verdict = stages.record_verdict(
        settings,
        version,
        kind,
        [rule("blind accuracy on b", 0.95, ">=", 0.9)],
        ["b"],
        current.version if current else None,
        None,
    )
    approval = stages.open_approval(settings, verdict["verdict_id"], None)
    stages.decide(settings, approval, True, reviewer, "serving test")


def png(size: int = 32, mode: str = "L", value: int = 120, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    pixels = np.clip(rng.normal(value, 20, (size, size, channels)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels.squeeze() if channels == 1 else pixels, mode).save(buf, "PNG")
    return buf.getvalue()


def body(*parts: tuple[bytes, bytes], boundary: bytes = b"b0undary", close: bool = True) -> bytes:
    out = b"".join(b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n" for headers, content in parts)
    return out + (b"--" + boundary + b"--\r\n" if close else b"")


def image_part(filename: bytes = b"crop.png", data: bytes | None = None, name: bytes = b"image") -> tuple[bytes, bytes]:
    return (
        b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"\r\n'
        b"Content-Type: image/png",
        png() if data is None else data,
    )


def text_part(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="' + name + b'"', value


KEY = "line-key-0123456789abcdef"

CT = "multipart/form-data; boundary=b0undary"


GOOD = body(image_part(), text_part(b"kind", b"gray"), text_part(b"machine_id", "機台-ü1".encode()))


# Hand-made bodies that are not the /classify form; each must be refused with a 4xx and a message.
MALFORMED = {
    "truncated": GOOD[:-40],
    "no closing boundary": body(image_part(), text_part(b"kind", b"gray"), close=False),
    "closing boundary only": b"--b0undary--\r\n",
    "empty body": b"",
    "not multipart at all": b"image=/etc/passwd&kind=gray",
    "other boundary": body(image_part(), boundary=b"another"),
    "no headers end": b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="x.png"',
    "two images": body(image_part(), image_part(b"other.png")),
    "image as a URL": body(text_part(b"image", b"http://169.254.169.254/latest/meta-data")),
    "image as a local path": body(text_part(b"image", b"/etc/passwd")),
    "image as text": body(text_part(b"image", b"hello")),
    "no image": body(text_part(b"kind", b"gray")),
    "empty image": body(image_part(data=b"")),
    "filename with ../": body(image_part(b"../../etc/cron.d/x.png")),
    "filename with a backslash path": body(image_part(b"C:\\line\\crop.png")),
    "filename with NUL": body(image_part(b"crop\x00.png")),
    "filename with a C1 control": body(image_part("crop\u0085.png".encode())),
    "very long filename": body(image_part(b"a" * 300 + b".png")),
    "empty filename": body(image_part(b"")),
    "filename*": body((b"Content-Disposition: form-data; name=\"image\"; filename*=UTF-8''x.png", png())),
    "kind as a file": body(image_part(), image_part(b"kind.txt", b"gray", name=b"kind")),
    "unknown field": body(image_part(), text_part(b"callback_url", b"http://x")),
    "field twice": body(image_part(), text_part(b"kind", b"gray"), text_part(b"kind", b"color")),
    "unknown kind": body(image_part(), text_part(b"kind", b"blue")),
    "NUL in machine_id": body(image_part(), text_part(b"machine_id", b"aoi-1\x00")),
    "ESC in part_no": body(image_part(), text_part(b"part_no", b"\x1b[31mP-1")),
    "C1 control in upstream_code": body(image_part(), text_part(b"upstream_code", "SHORT\u009b".encode())),
    "zero-width space in machine_id": body(image_part(), text_part(b"machine_id", "aoi\u200b1".encode())),
    "bidi override in machine_id": body(image_part(), text_part(b"machine_id", "\u202eaoi-1".encode())),
    "line separator in part_no": body(image_part(), text_part(b"part_no", "P\u20281".encode())),
    "not UTF-8 machine_id": body(image_part(), text_part(b"machine_id", b"\xff\xfeaoi")),
    "machine_id over 64": body(image_part(), text_part(b"machine_id", b"m" * 65)),
    "JSON-escaped NUL in machine_id": body(image_part(), text_part(b"machine_id", b'"aoi\\u0000"')),
    "JSON-escaped ESC in part_no": body(image_part(), text_part(b"part_no", b'"\\u001b[2J"')),
    "JSON object as machine_id": body(image_part(), text_part(b"machine_id", b'{"$ne": 1}')),
    "JSON list as kind": body(image_part(), text_part(b"kind", b'["gray"]')),
    "JSON-quoted unknown kind": body(image_part(), text_part(b"kind", b'"blue"')),
    "null then a value": body(image_part(), text_part(b"part_no", b"null"), text_part(b"part_no", b"P-1")),
    "text field as JSON": body(
        image_part(), (b'Content-Disposition: form-data; name="kind"\r\nContent-Type: application/json', b'"gray"')
    ),
    "base64 transfer encoding": body(
        (
            b'Content-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Transfer-Encoding: base64',
            b"iVBORw0KGgo=",
        )
    ),
    "header without colon": body((b'Content-Disposition: form-data; name="image"; filename="x.png"\r\nbroken', png())),
    "not form-data": body((b'Content-Disposition: attachment; name="image"; filename="x.png"', png())),
    "no field name": body((b'Content-Disposition: form-data; filename="x.png"', png())),
    "NUL in a header": body((b'Content-Disposition: form-data; name="image"; filename="x.png"\x00', png())),
}


ODD_AUTHORIZATION = [
    b"",
    b"Bearer",
    b"Bearer ",
    b"bearer",
    b"Basic " + KEY.encode(),
    KEY.encode(),
    b"Bearer  " + KEY.encode() + b"x",
    b"Bearer " + "ü".encode(),
    b"Bearer \xff\xfe",
    b"Bearer " + KEY.encode()[:-1],
    b"Bearer " + b"k" * 8000,
    b"Bearer\t" + KEY.encode() + b"\x7f",
    "Bearer 鍵".encode(),
    b"Bearer %s" % KEY.encode() + b" extra",
]


def row(i: int, **changes) -> dict:
    tone = dict.fromkeys(
        ("brightness", "mean_r", "mean_g", "mean_b", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff"), 1.0
    )
    return {
        "request_id": f"req{i:06d}",
        "at": datetime.now(UTC),
        "latency_ms": 1.0,
        "kind": "gray",
        "model_version": "gray-r1",
        "machine_id": "m1",
        "part_no": None,
        "upstream_code": None,
        "sha256": "0" * 64,
        "label": "PASS",
        "coarse_label": "PASS",
        "model_label": "PASS",
        "confidence": 0.99,
        "unknown": False,
        "route": "FINAL",
        "rule": None,
        **tone,
        "format": "PNG",
        "jpeg_quality": None,
        "bytes_per_pixel": 1.0,
        "width": 32,
        "height": 32,
        "in_spec": None,
        **changes,
    }


def logged(settings, timeout_s: float = 10) -> list[Prediction]:
    """The prediction log, once it stops growing (it is written off the request path)."""
    rows: list[Prediction] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.session(settings.catalog_url) as s:
            now = list(s.exec(select(Prediction).order_by(col(Prediction.id))).all())
        if now and len(now) == len(rows):
            return now
        rows = now
        time.sleep(0.6)
    return rows


TOP = [("SHORT", 0.61), ("SPUR", 0.30), ("OPEN", 0.05)]


def an_answer(request_id: str, *, unknown: bool = False, route: str = "FINAL", label: str = "SHORT") -> Answer:
    """An answer as decide() makes it, with the fields keeping reads (built without a model)."""
    return Answer(
        request_id=request_id,
        kind="gray",
        model_version="gray-r1",
        label="UNKNOWN" if unknown else label,
        coarse_label="UNKNOWN" if unknown else "REPAIRABLE",
        confidence=TOP[0][1],
        unknown=unknown,
        threshold=0.9,
        route=route,
        model_label=label,
        top3=[Candidate(label=name, coarse_label="REPAIRABLE", confidence=p) for name, p in TOP],
        tone=Tone(**tone()),
        format="PNG",
        jpeg_quality=None,
        machine_id="aoi-2",
        part_no="P-7",
        upstream_code="SHORT",
    )


def tone() -> dict:
    return dict.fromkeys(
        ("brightness", "mean_r", "mean_g", "mean_b", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff"), 1.0
    )
