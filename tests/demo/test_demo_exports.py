"""The demo's serving stage exports each production model (fp32, then INT8) through the parity gate, reports a
refusal or an error as an outcome, and reads back from the service which runtime answers each kind."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from demo import exports, line_loop
from tests.evaluation.models import gray_data, trained_model
from tests.serving.helpers import KEY, png, promote

pytestmark = pytest.mark.slow  # a model trained, exported twice and served: about 50 s on 2 cores


@pytest.fixture
def gray_production(configure, tmp_path, prefect_api) -> str:
    settings = configure(EXPORT__LATENCY_S="0.1", API_KEY=KEY, SERVING__RUNTIME="onnx")
    gray_data(tmp_path)
    version = trained_model(settings, epochs=0)  # parity is about the file, not the accuracy
    promote(settings, version)
    return version


def test_the_production_models_are_exported_judged_and_the_service_says_what_answers(
    settings, gray_production, asgi_app
):
    made = exports.export_production(settings, {"gray": gray_production, "color": "no-such-version"})
    gray = made["kinds"]["gray"]
    assert gray["model_version"] == gray_production
    fp32, int8 = gray["fp32"], gray["int8"]
    assert fp32["accepted"] is True and fp32["top1_agreement"] >= 0.995, fp32
    assert fp32["blind_images"] > 0 and fp32["batch32_images_per_s"] > 0 and fp32["device"]
    # INT8 accepted or refused, either way with its figures and the gate's reason
    assert isinstance(int8["accepted"], bool) and int8["reason"].startswith(("accepted", "refused"))
    assert int8["top1_agreement"] is not None and int8["seconds"] >= 0
    color = made["kinds"]["color"]  # an export that cannot be made is reported, never raised
    assert color["fp32"]["accepted"] is False and "no-such-version" in color["fp32"]["error"]
    assert made["seconds"] >= fp32["seconds"] + int8["seconds"] - 0.2

    with TestClient(asgi_app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        answering = exports.answering(settings, client)
        answers = [
            client.post("/classify", files={"image": ("x.png", png(seed=i), "image/png")}, data={"kind": "gray"})
            for i in range(6)
        ]
        queue = line_loop.kept_answers(settings, client)  # waits for the service's keeper and prediction log
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    doubtful = [a.json() for a in answers if a.json()["unknown"] or a.json()["route"] in ("REVIEW", "VRS")]
    assert queue["kept"] >= len(doubtful) and sum(queue["waiting"].get("gray", {}).values()) == queue["kept"]
    assert queue["waiting"].get("gray", {}).get("unknown", 0) == sum(a["unknown"] for a in doubtful)
    assert answering["gray"]["model_version"] == gray_production
    assert answering["gray"]["runtime"].startswith("onnx"), answering  # an accepted export answers
    assert "AOI_SERVING__RUNTIME=onnx" in answering["gray"]["runtime_reason"]
