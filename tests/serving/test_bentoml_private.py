"""What the project uses of BentoML's private API still exists as used: an upgrade that moves or changes it fails
here, not in a served process (``training/bentoml_private.py``)."""

from __future__ import annotations

import ast
import asyncio
import inspect

from tests.helpers import REPO_ROOT


def test_only_the_private_module_imports_bentomls_internals():
    found = set()
    for path in REPO_ROOT.rglob("*.py"):
        if {".venv", "node_modules", "raw"} & set(path.relative_to(REPO_ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.startswith("bentoml._internal") for n in names):
                found.add(str(path.relative_to(REPO_ROOT)))
    assert found == {"training/bentoml_private.py"}


def test_the_model_store_takes_a_folder_and_the_public_calls_take_it(tmp_path):
    import bentoml

    from training.bentoml_private import ModelStore

    store = ModelStore(str(tmp_path))
    assert list(store.list()) == []
    for public in (bentoml.models.create, bentoml.models.get):
        assert "_model_store" in inspect.signature(public).parameters, public
    with bentoml.models.create("probe", metadata={"a": 1}, _model_store=store) as model:
        (tmp_path / "written").write_text("x")  # the model's own folder is written below
        with open(f"{model.path}/weights", "w") as fh:
            fh.write("w")
    got = bentoml.models.get("probe:latest", _model_store=store)
    assert got.info.metadata == {"a": 1}
    assert (tmp_path / "probe").is_dir() and got.path.startswith(str(tmp_path))


def test_the_cork_dispatcher_batches_as_serving_batching_calls_it():
    from training.bentoml_private import CorkDispatcher

    parameters = inspect.signature(CorkDispatcher.__init__).parameters
    assert {"max_latency_in_ms", "max_batch_size", "fallback", "get_batch_size", "batch_dim"} <= set(parameters)
    assert callable(CorkDispatcher.shutdown)

    async def run() -> list:
        import numpy as np

        from serving.batching import Batcher

        batcher = Batcher(lambda batch: list(batch * 2), max_batch_size=8, max_latency_ms=5000)
        try:
            outputs = await asyncio.gather(*(batcher(np.full((1, 2), float(i))) for i in range(6)))
        finally:
            batcher.close()
        return [o[0].tolist() for o in outputs]

    assert asyncio.run(run()) == [[2.0 * i, 2.0 * i] for i in range(6)]
