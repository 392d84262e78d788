"""The classification service at three levels: the class called directly, its ASGI app under a test client
(batching and middleware included), and a served process (``aoi serve``) called over HTTP."""

from __future__ import annotations

import asyncio
import io
import time

import bentoml
import httpx
import pytest
from PIL import Image
from sqlmodel import select
from starlette.testclient import TestClient

from aoi.catalog import db
from aoi.catalog.models import KeptAnswer, LineFeedback
from promotion import stages
from serving.trial import line_trial
from tests.evaluation.models import trained_model
from tests.flows.helpers import aoi, ingest
from tests.helpers import free_port
from tests.serving.helpers import KEY, logged, png, promote


def post(client, data: bytes | None = None, key: str | None = KEY, **form):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(
        "/classify",
        files={"image": ("x.png", png() if data is None else data, "image/png")},
        data={"kind": "gray", **form},
        headers=headers,
    )


def test_the_service_class_called_directly_answers_and_logs(gray_production, settings, tmp_path):
    from serving.service import Classifier

    image = tmp_path / "x.png"
    image.write_bytes(png())
    service = Classifier()
    try:
        answer = asyncio.run(service.classify(image=image, kind="gray", machine_id="aoi-3", upstream_code="OPEN"))
    finally:
        service.close()
    assert answer.model_version == gray_production and answer.rule == "upstream-code-to-unknown"
    assert (answer.label, answer.route, answer.machine_id) == ("UNKNOWN", "VRS", "aoi-3")
    assert answer.model_label in answer.model_dump()["top3"][0]["label"]
    [row] = logged(settings)  # close() flushed it
    assert (row.request_id, row.label, row.model_label, row.machine_id) == (
        answer.request_id,
        "UNKNOWN",
        answer.model_label,
        "aoi-3",
    )
    assert answer.quality.sharpness > 0
    assert (row.sharpness, row.smear) == (answer.quality.sharpness, answer.quality.smear)


def test_asgi_app_guards_limits_and_answers(gray_production, configure, asgi_app):
    settings = configure(API_KEY=KEY, SERVING__MAX_BODY_BYTES=200_000, SERVING__MAX_PIXELS=100_000)

    with TestClient(asgi_app) as client:
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.get("/docs.json").status_code == 200  # the OpenAPI page needs no key
        refused = post(client, key=None)
        assert refused.status_code == 401 and "AOI_API_KEY" in refused.json()["error"]
        assert post(client, key="wrong").status_code == 401
        assert client.get("/model").status_code == 401
        ok = post(client, machine_id="aoi-1", part_no="P-1")
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["model_version"] == gray_production and len(body["top3"]) == 3 and body["tone"]["brightness"] > 0
        big = post(client, data=b"\0" * 300_000)
        assert big.status_code == 413 and "200,000" in big.json()["error"]
        many_pixels = post(client, data=png(size=400))  # 160,000 pixels, small file
        assert many_pixels.status_code == 413 and "pixels" in many_pixels.json()["error"]
        text = post(client, data=b"GET / HTTP/1.1 this is not an image")
        assert text.status_code == 415 and "not an image" in text.json()["error"]
        truncated = post(client, data=png()[:60])
        assert truncated.status_code == 415
        bad_kind = post(client, kind="blue")
        assert bad_kind.status_code == 400 and "gray" in bad_kind.text
        wrong_mode = post(client, data=png(mode="RGB"))  # a colour image sent as gray: refused, not answered
        assert wrong_mode.status_code == 422 and "kind=color" in wrong_mode.json()["error"]
        control = post(client, machine_id="aoi-1\x00")
        assert control.status_code == 400 and "U+0000" in control.json()["error"]
        odd_name = client.post(
            "/classify",
            files={"image": ("../x.png", png(), "image/png")},
            data={"kind": "gray"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert odd_name.status_code == 400 and "path" in odd_name.json()["error"]
        gif = io.BytesIO()
        Image.open(io.BytesIO(png())).save(gif, "GIF")
        assert post(client, data=gif.getvalue()).status_code == 415  # not a format the line sends
        no_model = post(client, data=png(mode="RGB"), kind="color")
        assert no_model.status_code == 503 and "no production model" in no_model.json()["error"]
        info = client.get("/model", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert info["models"]["gray"]["version"] == gray_production and "color" not in info["models"]
        assert info["models"]["gray"]["taxonomy"]["coarse"]["SHORT"] == "REPAIRABLE"
    rows = logged(settings)
    assert [r.request_id for r in rows] == [body["request_id"]]  # refused requests are not answers
    assert (rows[0].machine_id, rows[0].part_no, rows[0].format) == ("aoi-1", "P-1", "PNG")


def test_a_promotion_and_a_rollback_are_picked_up_without_restart(gray_production, configure, asgi_app):
    settings = configure(SERVING__RELOAD_POLL_S=0.3)

    with TestClient(asgi_app) as client:
        assert post(client, key=None).json()["model_version"] == gray_production
        newer = trained_model(settings, epochs=0, seed=3)
        promote(settings, newer)
        deadline = time.monotonic() + 20
        while post(client, key=None).json()["model_version"] != newer and time.monotonic() < deadline:
            time.sleep(0.3)
        assert post(client, key=None).json()["model_version"] == newer
        stages.rollback(settings, "gray", "test", "back to the first")
        time.sleep(1.5)
        assert post(client, key=None).json()["model_version"] == gray_production
        assert client.get("/model").json()["swaps"] == 3  # first load, promotion, rollback


@pytest.mark.slow
def test_a_served_process_answers_over_http_and_flushes_its_log_when_stopped(gray_production, configure):
    port = free_port()
    settings = configure(API_KEY=KEY, SERVING__PORT=port, SERVING__LOG_FLUSH_S=30)  # only the shutdown flush writes
    started = aoi("serve", "--background", "--json")
    try:
        assert started["url"] == f"http://127.0.0.1:{port}" and started["started"]
        client = bentoml.SyncHTTPClient(started["url"], token=KEY, server_ready_timeout=60)
        answers = [client.classify(image=_file(settings, i), kind="gray", machine_id=f"m{i}") for i in range(5)]
        assert {a["model_version"] for a in answers} == {gray_production}
        report = {"request_id": answers[0]["request_id"], "label": "NOT_DEFECT", "by": "vrs-01"}
        auth = {"Authorization": f"Bearer {KEY}"}
        confirmed = httpx.post(f"{started['url']}/feedback", json=report, headers=auth, timeout=30)
        assert confirmed.status_code == 200 and confirmed.json()["outcome"] == "created", confirmed.text
        again = httpx.post(f"{started['url']}/feedback", json=report, headers=auth, timeout=30)
        assert again.status_code == 200 and again.json()["outcome"] == "same"
        assert httpx.post(f"{started['url']}/feedback", json=report, timeout=30).status_code == 401
        assert aoi("serve", "--background", "--json")["started"] is False  # one service per AOI_HOME
        client.close()
        trial = line_trial(settings, started["url"], "gray", _gray_blind_set(settings), n=12)  # the demo's last stage
    finally:
        assert aoi("serve", "--stop", "--json")["stopped"]
    assert (trial["sent"], trial["answered"], trial["errors"]) == (12, 12, [])
    assert trial["model_versions"] == {gray_production: 12} and sum(trial["routes"].values()) == 12
    assert sum(trial["labels"].values()) == 12 and 0 <= trial["unknown_rate"] <= 1
    rows = logged(settings)
    assert len(rows) == 17 and {a["request_id"] for a in answers} <= {r.request_id for r in rows}
    doubtful = {a["request_id"] for a in answers if a["unknown"] or a["route"] in ("REVIEW", "VRS")}
    with db.session(settings.catalog_url) as s:
        kept = {k.request_id for k in s.exec(select(KeptAnswer)).all()}
        assert [f.request_id for f in s.exec(select(LineFeedback)).all()] == [answers[0]["request_id"]]
    assert doubtful <= kept  # the shutdown drained the keeper
    summary = aoi("predictions", "--json")
    assert summary["answers"] == 17 and summary["by_model"][0]["model_version"] == gray_production


def _gray_blind_set(settings) -> str:
    """A blind set of 8-bit gray images, as an AOI sends them (the generated training images are RGB, which
    /classify refuses for kind gray)."""
    from tests.evaluation.models import GRAY
    from tests.helpers import image_bytes, write

    root = settings.home / "blind-gray"
    for n, label in enumerate(GRAY):
        for k in range(2):
            write(root / label / f"{label.lower()}_{k}.png", image_bytes(mode="L", seed=900 + 10 * n + k))
    aoi("dataset", "blind", "g-blind-gray", "--folder", str(root), "--source", "gray", "--date", "2026-07-20")
    return "g-blind-gray"


def _file(settings, i: int):
    path = settings.home / f"upload-{i}.png"
    path.write_bytes(png(seed=i))
    return path


def test_machine_params_come_from_the_online_store(configure, asgi_app, tmp_path):
    """Auto VRS: GET /machine_params answers the imported camera parameters; 404 with a message otherwise."""
    configure(API_KEY=KEY)
    auth = {"Authorization": f"Bearer {KEY}"}
    table = tmp_path / "camera.csv"
    table.write_text("machine_id,part_no,light,exposure,gain_r,gain_g,gain_b\nvrs-01,P-1001,48,13,9,6,13\n")
    with TestClient(asgi_app) as client:
        before = client.get("/machine_params", params={"machine_id": "vrs-01", "part_no": "P-1001"}, headers=auth)
        assert before.status_code == 404 and "aoi machines import" in before.json()["error"], before.text
        imported = aoi("machines", "import", str(table), "--json")
        assert (imported["added"], imported["online"]) == (1, 1)
        found = client.get("/machine_params", params={"machine_id": "vrs-01", "part_no": "P-1001"}, headers=auth)
        assert found.status_code == 200, found.text
        assert found.json() == {
            "machine_id": "vrs-01",
            "part_no": "P-1001",
            "light": 48,
            "exposure": 13,
            "gain_r": 9.0,
            "gain_g": 6.0,
            "gain_b": 13.0,
        }
        unknown = client.get("/machine_params", params={"machine_id": "vrs-01", "part_no": "P-9"}, headers=auth)
        assert unknown.status_code == 404 and "'P-9'" in unknown.json()["error"]
        assert client.get("/machine_params", params={"machine_id": "vrs-01"}, headers=auth).status_code in (400, 422)
        assert client.get("/machine_params", params={"machine_id": "vrs-01", "part_no": "P-1001"}).status_code == 401
    assert aoi("machines", "list", "--json")["pairs"][0]["machine_id"] == "vrs-01"


def test_a_request_from_a_calibrated_machine_is_calibrated(settings, tmp_path, both_in_production):
    """/classify applies the machine's colour calibration from the online store, and says so."""
    from demo.simulated_line import reference_machine
    from serving.service import Classifier
    from tests.features.helpers import SHIFTED, T0, board, write_line

    ref = reference_machine(settings.features.reference_machine)
    write_line(tmp_path, {"ref": (ref, T0), "first": (SHIFTED, T0)})
    for key in ("ref", "first"):
        ingest(tmp_path / f"reference-{key}.csv", "--format", "csv", "--source", "color", "--reference")
    aoi("machines", "refresh")
    image = tmp_path / "x.jpg"
    buf = io.BytesIO()
    board(1, seed=9)[0].save(buf, "JPEG")
    image.write_bytes(buf.getvalue())
    service = Classifier()
    try:
        known = asyncio.run(service.classify(image=image, kind="color", machine_id="vrs-7"))
        unknown = asyncio.run(service.classify(image=image, kind="color", machine_id="vrs-404"))
    finally:
        service.close()
    assert known.calibrated and not unknown.calibrated
