"""The self-contained Bento: production models packed with what answering needs, read without the model store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from aoi.settings import Settings
from serving.bento import MANIFEST, PACKED, PackedModels, model_source, pack_models
from serving.models import load_deployed
from tests.flows.helpers import aoi
from tests.helpers import free_port


@pytest.mark.parametrize(
    ("setting", "packed", "expected"),
    [("auto", False, "catalog"), ("auto", True, "bento"), ("catalog", True, "catalog"), ("bento", False, "bento")],
)
def test_the_model_source_setting(tmp_path, setting, packed, expected):
    if packed:
        (tmp_path / PACKED).mkdir()
        (tmp_path / PACKED / MANIFEST).write_text("{}")
    settings = Settings(serving={"model_source": setting})
    assert model_source(settings, tmp_path) == expected


def _imports_of(root: Path, modules: list[str], packages: set[str]) -> set[str]:
    """The project's top-level packages that ``modules`` import, at module level or in a function (ast)."""
    import ast

    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = root / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = root / module.replace(".", "/") / "__init__.py"
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            todo += [n for n in names if n.split(".")[0] in packages]
    return {m.split(".")[0] for m in seen}


def test_the_bento_packs_every_package_the_service_imports():
    from serving.bento import CODE_ROOT, PACKAGES

    ours = {p.parent.name for p in CODE_ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    needed = _imports_of(CODE_ROOT, ["serving.service", "serving.bento"], ours)
    assert needed - set(PACKAGES) == set()  # a missing one fails only in a built Bento, at start-up
    included = (CODE_ROOT / "serving" / "bentofile.yaml").read_text()
    assert [p for p in PACKAGES if f'"{p}/**/*.py"' not in included] == []


def test_no_production_model_no_bento(settings, tmp_path):
    from serving.bento import BentoError

    with pytest.raises(BentoError, match="no production model"):
        pack_models(settings, tmp_path)
    aoi("bento", "build", code=2)


def test_packed_models_answer_as_the_catalogs_do(settings, gray_production, tmp_path):
    manifest = pack_models(settings, tmp_path)
    entry = manifest["models"]["gray"]
    assert entry["version"] == gray_production
    assert sorted(entry["files"]) == ["gray/aoi.json", "gray/model.pt"]
    assert {p.name for p in (tmp_path / PACKED / "gray").iterdir()} == {"aoi.json", "model.pt"}
    packed = PackedModels(settings, tmp_path)
    assert packed.refresh() == [f"gray: - -> {gray_production}"]
    assert packed.refresh() == []  # loaded once: a new model is a new Bento
    mine, theirs = packed.get("gray"), load_deployed(settings, gray_production)
    assert (mine.version, mine.threshold, mine.prep, mine.tone_spec) == (
        theirs.version,
        theirs.threshold,
        theirs.prep,
        theirs.tone_spec,
    )
    assert mine.taxonomy.as_dict() == theirs.taxonomy.as_dict()
    batch = np.random.default_rng(0).normal(0, 1, (3, *mine.input_shape)).astype(np.float32)
    np.testing.assert_allclose(mine.probabilities(batch), theirs.probabilities(batch), rtol=1e-6)


def test_the_export_that_answers_is_packed_and_answers_in_the_bento(gray_production, configure, tmp_path):
    from export.exports import export_model

    settings = configure(EXPORT__LATENCY_S=0.1, SERVING__RUNTIME="onnx")
    exported = export_model(settings, gray_production)
    assert exported["accepted"], exported["reason"]
    entry = pack_models(settings, tmp_path)["models"]["gray"]
    runtime = entry["runtime"]
    assert runtime["export"]["sha256"] == exported["sha256"] and runtime["engine"] == exported["engine"]
    assert f"gray/{runtime['file']}" in entry["files"] and (tmp_path / PACKED / "gray" / runtime["file"]).is_file()
    packed = PackedModels(settings, tmp_path)
    packed.refresh()
    mine, theirs = packed.get("gray"), load_deployed(settings, gray_production)
    assert mine.runtime is not None and mine.describe()["runtime"] == theirs.describe()["runtime"]
    assert "packed in the Bento" in mine.describe()["runtime_reason"]
    batch = np.random.default_rng(1).normal(0, 1, (4, *mine.input_shape)).astype(np.float32)
    np.testing.assert_allclose(mine.probabilities(batch), theirs.probabilities(batch), atol=1e-5)

    on_torch = PackedModels(configure(SERVING__RUNTIME="torch"), tmp_path)
    on_torch.refresh()
    assert on_torch.get("gray").runtime is None  # the setting still takes a Bento back to PyTorch

    (tmp_path / PACKED / "gray" / runtime["file"]).write_bytes(b"not an onnx graph")  # a damaged file
    broken = PackedModels(configure(SERVING__RUNTIME="onnx"), tmp_path)
    broken.refresh()
    assert broken.get("gray").runtime is None  # PyTorch answers, the service still starts

    torch_entry = pack_models(configure(SERVING__RUNTIME="torch"), tmp_path / "torch")["models"]["gray"]
    assert torch_entry["runtime"] is None and sorted(torch_entry["files"]) == ["gray/aoi.json", "gray/model.pt"]


def _gray_scan(datasets_dir: Path) -> Path:
    for path in sorted((datasets_dir / "DeepPCB" / "PCBData").rglob("*_test.jpg")):
        with Image.open(path) as image:
            if image.mode == "L":
                return path
    raise AssertionError("no gray DeepPCB scan")


@pytest.mark.slow
@pytest.mark.integration
def test_the_bento_answers_without_the_model_store(gray_production, configure, tmp_path, monkeypatch, datasets_dir):
    from export.exports import export_model

    exported = export_model(configure(EXPORT__LATENCY_S=0.1, SERVING__RUNTIME="onnx"), gray_production)
    assert exported["accepted"], exported["reason"]  # packed: the Bento answers on it
    bentoml_home = tmp_path / "bentoml-home"
    monkeypatch.setenv("BENTOML_HOME", str(bentoml_home))
    built = aoi("bento", "build", "--version", "t1")
    assert built["tag"] == "aoi-classifier:t1" and built["models"] == {"gray": gray_production}
    src = Path(built["path"]) / "src"
    assert json.loads((src / PACKED / MANIFEST).read_text())["models"]["gray"]["version"] == gray_production
    assert not any(p.startswith("tests") for p in os.listdir(src))

    fresh = tmp_path / "line-host"  # a new AOI_HOME: no catalog, no model store
    fresh.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOI_", "PYTHONPATH"))}
    env.update(AOI_HOME=str(fresh), BENTOML_HOME=str(bentoml_home), BENTOML_DO_NOT_TRACK="True")
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    served = subprocess.Popen(
        [bentoml, "serve", built["tag"], "--host", "127.0.0.1", "--port", str(port)],
        cwd=fresh,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert served.poll() is None, served.stdout.read().decode()[-3000:] if served.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise AssertionError("the Bento did not become ready")
        described = httpx.get(f"{url}/model", timeout=10).json()
        assert described["model_source"] == "bento"
        assert described["models"]["gray"]["version"] == gray_production
        assert described["models"]["gray"]["runtime"] == f"onnx fp32 ({exported['engine']})"
        scan = _gray_scan(datasets_dir)
        answer = httpx.post(
            f"{url}/classify",
            files={"image": (scan.name, scan.read_bytes(), "image/jpeg")},
            data={"kind": "gray", "machine_id": "aoi-1"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == gray_production and body["format"] == "JPEG"
        assert body["label"] in [*described["models"]["gray"]["taxonomy"]["fine"], "UNKNOWN"]
        assert not (fresh / "bentoml").exists()  # no model store was read or made
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/model", timeout=10).json()["prediction_log"]["written"] < 1:
            assert time.monotonic() < deadline, "the answer never reached the local prediction log"
            time.sleep(0.5)
        assert (fresh / "catalog.db").is_file()
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        try:
            served.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(served.pid, signal.SIGKILL)
            served.wait()
