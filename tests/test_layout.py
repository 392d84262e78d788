"""The layout is the pipeline: imports point one way, ``aoi`` <- stages <- ``flows`` <- ``workbench`` <- ``cli``,
and a stage imports only the stages before it in the order the data flows. Imports inside a function are for the heavy
libraries only (they cost seconds at start-up), never a way around that order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = "aoi"
STAGES = (
    "ingest",
    "validation",
    "datasets",
    "features",
    "training",
    "evaluation",
    "export",
    "promotion",
    "serving",
    "monitoring",
    "demo",
)
LAYERS = {CORE: 0, **dict.fromkeys(STAGES, 1), "flows": 2, "workbench": 3, "cli": 4}
HEAVY = {
    "torch",
    "torchvision",
    "ray",
    "feast",
    "evidently",
    "great_expectations",
    "bentoml",
    "prefect",
    "matplotlib",
    "pandas",
    "pyarrow",
    "scipy",
    "sklearn",
    "onnxruntime",
    "onnx",
    "openvino",
    "psutil",
}


def modules():
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield package, path


def imports(tree: ast.AST):
    """(top-level name, line, inside a function) of every absolute import."""

    def walk(node, inside):
        for child in ast.iter_child_nodes(node):
            now = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name.split(".")[0], child.lineno, now
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield child.module.split(".")[0], child.lineno, now
            yield from walk(child, now)

    yield from walk(tree, False)


def test_the_folder_list_is_the_pipeline_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    picture = readme[readme.index("<!-- pipeline -->") : readme.index("<!-- /pipeline -->")]
    folders = [word.rstrip("/") for word in picture.split() if word.endswith("/")]
    stages = [f for f in dict.fromkeys(folders) if f in STAGES]
    assert stages == [s for s in STAGES if s != "demo"], stages  # the demo's parts are no stage of the pipeline
    assert {"flows", "cli", CORE} <= set(folders)
    on_disk = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name not in {"tests", "bench"}}
    assert on_disk == set(LAYERS), on_disk ^ set(LAYERS)


@pytest.mark.parametrize("package,path", list(modules()), ids=lambda v: str(v).rsplit("/", 1)[-1])
def test_imports_point_one_way(package, path):
    tree = ast.parse(path.read_text(), str(path))
    wrong = []
    for name, line, inside in imports(tree):
        if name in LAYERS and name != package:
            if LAYERS[name] > LAYERS[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name} from a lower layer")
            elif (
                LAYERS[name] == LAYERS[package] == 1
                and name != "demo"
                and package != "demo"
                and STAGES.index(name) > STAGES.index(package)
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: the {package} stage imports a later stage, {name}")
        elif inside and name not in HEAVY and name not in LAYERS:
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name} inside a function (not a heavy library)")
    assert not wrong, "\n".join(wrong)


def import_statements(tree: ast.AST):
    """(line, dotted modules it may load) of every absolute import: ``from tests import conftest`` may load
    ``tests`` and ``tests.conftest``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, [alias.name]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]


def shared_helper_misuse(path: Path, root: Path = ROOT) -> list[str]:
    """Imports that reach into a test module or a conftest (pytest's, not a library) from any module, or into
    ``tests`` at all from ``bench/``: shared helpers live in ``helpers`` modules."""
    where = path.relative_to(root)
    wrong = []
    for line, modules in import_statements(ast.parse(path.read_text(), str(path))):
        into_tests = [m.split(".") for m in modules if m.split(".")[0] == "tests"]
        if not into_tests:
            continue
        if where.parts[0] == "bench":
            wrong.append(f"{where}:{line} imports from tests: bench/ imports nothing from tests/")
        elif any(p.startswith("test_") or p == "conftest" for parts in into_tests for p in parts[1:]):
            wrong.append(f"{where}:{line} imports a test module or conftest: move what it needs into a helpers module")
    return wrong


def test_no_module_imports_a_test_module_or_a_conftest_and_bench_imports_nothing_from_tests():
    paths = sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    wrong = [line for path in paths for line in shared_helper_misuse(path)]
    assert not wrong, "\n".join(wrong)


def test_the_helper_rule_catches_what_it_names(tmp_path):
    cases = {
        "tests/a/test_x.py": ("from tests.flows.test_ingest_flow import aoi\n", 1),
        "tests/a/test_y.py": ("from tests.serving import conftest\n", 1),
        "tests/a/test_z.py": ("import tests.monitoring.conftest as c\n", 1),
        "tests/a/test_ok.py": ("from tests.flows.helpers import aoi\nfrom tests.helpers import write\n", 0),
        "bench/run.py": ("from tests.helpers import write\n", 1),
        "bench/ok.py": ("from aoi.settings import get_settings\n", 0),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        assert len(shared_helper_misuse(path, tmp_path)) == expected, name
