"""The forward pass on an accepted export (AOI_SERVING__RUNTIME): same answers as PyTorch, ``/model`` names the
runtime of each kind, a refused export never serves, and PyTorch answers where there is no export."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from export.exports import export_model
from serving.models import load_deployed
from tests.serving.helpers import KEY, png


def classify(client, data: bytes) -> dict:
    response = client.post(
        "/classify",
        files={"image": ("x.png", data, "image/png")},
        data={"kind": "gray"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_export_answers_as_pytorch_does_and_model_says_which_runtime(gray_production, configure, asgi_app):
    settings = configure(EXPORT__LATENCY_S=0.1, SERVING__RUNTIME="onnx", API_KEY=KEY)
    torch_only = load_deployed(settings, gray_production)
    assert (
        torch_only.runtime is None
        and "no export that passed the parity gate" in torch_only.describe()["runtime_reason"]
    )

    exported = export_model(settings, gray_production)
    assert exported["accepted"], exported["reason"]
    onnx = load_deployed(settings, gray_production)
    assert onnx.runtime is not None and onnx.describe()["runtime"] == f"onnx fp32 ({exported['engine']})"
    batch = np.random.default_rng(0).standard_normal((8, *onnx.input_shape), dtype=np.float32)
    np.testing.assert_allclose(onnx.probabilities(batch), torch_only.probabilities(batch), atol=1e-4)

    images = [png(seed=i, value=40 + 20 * i) for i in range(4)]
    with TestClient(asgi_app) as client:
        model = client.get("/model", headers={"Authorization": f"Bearer {KEY}"}).json()["models"]["gray"]
        assert model["runtime"] == onnx.describe()["runtime"] and model["export"]["sha256"] == exported["sha256"]
        on_export = [classify(client, data) for data in images]
    torch_settings = configure(SERVING__RUNTIME="torch")
    assert load_deployed(torch_settings, gray_production).describe()["runtime"] == "torch"
    with TestClient(asgi_app) as client:
        on_torch = [classify(client, data) for data in images]
    for a, b in zip(on_export, on_torch, strict=True):
        assert a["model_label"] == b["model_label"]
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)


def test_auto_takes_only_a_faster_export_and_a_refused_one_never_serves(gray_production, configure, monkeypatch):
    from export import exports

    settings = configure(EXPORT__LATENCY_S=0.1)  # auto is the default
    latency = export_model(settings, gray_production)["latency"]
    deployed = load_deployed(settings, gray_production)
    faster = latency["batch32_images_per_s"] > latency["torch_batch32_images_per_s"]
    assert (deployed.runtime is not None) is faster, (latency, deployed.describe()["runtime_reason"])

    settings = configure(SERVING__RUNTIME="onnx")
    real = exports.judge

    def strict(limits, true, torch_pred, export_pred):  # nothing agrees above 100%: the gate refuses
        return real(limits.model_copy(update={"min_top1_agreement": 1.01}), true, torch_pred, export_pred)

    monkeypatch.setattr(exports, "judge", strict)
    assert not export_model(settings, gray_production)["accepted"]  # the same file, now refused
    assert load_deployed(settings, gray_production).runtime is None


@pytest.mark.slow
def test_a_served_process_answers_on_the_export(gray_production, configure, tmp_path):
    import bentoml
    import httpx

    from tests.flows.helpers import aoi
    from tests.helpers import free_port

    port = free_port()
    settings = configure(EXPORT__LATENCY_S=0.1, SERVING__RUNTIME="onnx", API_KEY=KEY, SERVING__PORT=port)
    exported = export_model(settings, gray_production, int8=True)
    if not exported["accepted"]:  # an untrained network's near-tied logits: INT8 may be refused, fp32 never
        exported = export_model(settings, gray_production)
    assert exported["accepted"], exported["reason"]
    started = aoi("serve", "--background", "--json")
    try:
        client = bentoml.SyncHTTPClient(started["url"], token=KEY, server_ready_timeout=60)
        files = [tmp_path / f"{i}.png" for i in range(3)]
        for i, file in enumerate(files):
            file.write_bytes(png(seed=i, value=60 + 40 * i))
        answers = [client.classify(image=file, kind="gray") for file in files]
        headers = {"Authorization": f"Bearer {KEY}"}
        model = httpx.get(f"{started['url']}/model", headers=headers, timeout=10).json()["models"]["gray"]
        client.close()
    finally:
        assert aoi("serve", "--stop", "--json")["stopped"]
    assert {a["model_version"] for a in answers} == {gray_production}
    precision = "int8" if exported["int8"] else "fp32"
    assert model["runtime"] == f"onnx {precision} ({exported['engine']})"
    assert model["export"]["sha256"] == exported["sha256"]
