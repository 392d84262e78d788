"""The layout is the pipeline: imports point one way, ``aoi`` <- stages <- ``flows`` <- ``cli``, and a stage
imports only the stages before it in the order the data flows. Imports inside a function are for the heavy
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
    "promotion",
    "serving",
    "monitoring",
    "demo",
)
LAYERS = {CORE: 0, **dict.fromkeys(STAGES, 1), "flows": 2, "cli": 3}
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
