"""aoi export: the ONNX file, its parity gate against PyTorch on the blind sets, the latency record, and the
catalog row; on a small model trained in-process on generated crops."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from aoi.catalog import db
from aoi.catalog.models import ModelExport
from aoi.settings import ExportSettings
from cli import app
from export import engines, exports, onnx
from tests.evaluation.models import gray_data, trained_model


def run(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def gray_model(configure, tmp_path, prefect_api) -> str:
    """An untrained network registered as a version (parity is about the file, not the accuracy)."""
    settings = configure(EXPORT__LATENCY_S="0.1")
    gray_data(tmp_path)
    return trained_model(settings, epochs=0)


def test_the_gate_accepts_only_agreeing_exports_and_says_why():
    limits = ExportSettings(min_top1_agreement=0.995, max_accuracy_delta=0.003)
    true = np.arange(1000) % 5
    same = exports.judge(limits, true, true.copy(), true.copy())
    assert same.accepted and same.top1_agreement == 1.0 and "accepted" in same.reason
    flipped = true.copy()
    flipped[:6] = (flipped[:6] + 1) % 5  # 6 of 1000 differ: 99.4% agreement, accuracy 0.6 points lower
    judge = exports.judge(limits, true, true, flipped)
    assert not judge.accepted and judge.top1_agreement == pytest.approx(0.994)
    assert "top-1 agreement 0.9940 < 0.9950" in judge.reason and "off by 0.0060" in judge.reason
    # Agreement alone is not enough: the same 4 flips on right answers, 2 more on wrong ones.
    torch_pred = true.copy()
    torch_pred[:2] = (true[:2] + 2) % 5  # PyTorch wrong on 2
    export_pred = torch_pred.copy()
    export_pred[2:6] = (true[2:6] + 1) % 5  # the export wrong on 4 more: agreement 99.6%, 0.4 points lower
    verdict = exports.judge(limits, true, torch_pred, export_pred)
    assert verdict.top1_agreement == pytest.approx(0.996) and not verdict.accepted
    assert "off by 0.0040 > 0.0030" in verdict.reason
    empty = exports.judge(limits, true[:0], true[:0], true[:0])
    assert not empty.accepted and "no labelled blind image" in empty.reason


@pytest.mark.slow
def test_export_fp32_agrees_with_pytorch_records_latency_and_is_idempotent(settings, gray_model):
    code, first = run("export", gray_model)
    assert code == 0, first
    assert first["accepted"] and first["parity"]["top1_agreement"] == 1.0
    assert first["parity"]["blind_accuracy_export"] == first["parity"]["blind_accuracy_torch"]
    assert first["parity"]["images"] == 21 and first["parity"]["blind_sets"] == ["g-blind-0717"]
    latency = first["latency"]
    assert latency["device"] == engines.cpu_name() and latency["batch1_ms"] > 0 and latency["batch32_images_per_s"] > 0
    assert first["engine"] in engines.ENGINES and set(first["engines"]) == set(engines.installed())
    assert first["path"].endswith(f"onnx-fp32-{first['sha256'][:16]}.onnx")
    code, again = run("export", gray_model)
    assert code == 0 and again["path"] == first["path"] and again["sha256"] == first["sha256"]
    with db.session(settings.catalog_url) as s:
        rows = s.query(ModelExport).all()
    assert len(rows) == 1 and rows[0].accepted and rows[0].device == latency["device"]
    listed = run("models")[1]
    mine = next(m for m in listed if m["version"] == gray_model)
    assert mine["exports"][0]["latency"]["device"] == latency["device"] and "fp32" in mine["export"]


@pytest.mark.slow
def test_int8_export_is_calibrated_and_judged_by_its_own_figures(settings, gray_model):
    code, out = run("export", gray_model, "--int8")
    parity = out["parity"]
    assert out["int8"] and "int8" in out["path"]
    import onnx as onnx_lib

    graph = onnx_lib.load(out["path"]).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)  # a quantized graph, not the fp32 one renamed
    delta = abs(parity["blind_accuracy_export"] - parity["blind_accuracy_torch"])
    expected = parity["top1_agreement"] >= 0.995 and delta <= 0.003
    assert out["accepted"] is expected and code == (0 if expected else 2)
    code, fp32 = run("export", gray_model)
    assert fp32["sha256"] != out["sha256"] and len(run("models")[1][0]["exports"]) == 2


def test_a_broken_graph_is_refused_with_its_figures(settings, gray_model, monkeypatch):
    import onnx as onnx_lib
    from onnx import numpy_helper

    real = onnx.to_onnx

    def perturbed(model, shape, path):
        real(model, shape, path)
        proto = onnx_lib.load(str(path))
        last = next(i for i in reversed(proto.graph.initializer) if len(i.dims) == 2)  # the classifier's weights
        weights = numpy_helper.to_array(last).copy()
        weights[0] += 5 * np.abs(weights).max()  # class 0 now wins far more often
        last.CopyFrom(numpy_helper.from_array(weights, last.name))
        onnx_lib.save(proto, str(path))

    monkeypatch.setattr(onnx, "to_onnx", perturbed)
    code, out = run("export", gray_model)
    assert code == 2 and out["accepted"] is False
    assert out["parity"]["top1_agreement"] < 0.995 and "refused" in out["error"]
    with db.session(settings.catalog_url) as s:
        row = s.query(ModelExport).one()
    assert not row.accepted and row.reason.startswith("refused")
    from promotion import gate

    shown = gate.exports_markdown([exports.as_dict(row)])  # what the promote verdict shows beside the rules
    assert "onnx fp32" in shown and "| refused |" in shown and f"{row.top1_agreement:.2%}" in shown
    assert "Not exported" in gate.exports_markdown([])
    assert exports.fastest_accepted(settings, gray_model) is None  # serving will not run it


def test_an_unknown_version_is_one_line_exit_2(settings, prefect_api):
    code, out = run("export", "gray-nope")
    assert code == 2 and "no model version gray-nope" in out["error"]


@pytest.mark.gpu
def test_export_on_cuda_records_the_gpus_name(settings, gray_model):
    if not engines.cuda_available():
        pytest.skip("no CUDA provider in this onnxruntime (onnxruntime-gpu on a GPU machine runs it)")
    code, out = run("export", gray_model)
    assert code == 0 and out["latency"]["device"] == engines.gpu_name()
