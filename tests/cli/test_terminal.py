"""What a user sees in the terminal: `aoi --version`, one line and exit code 2 for every usage, value, name or
settings error (never Click's usage block, a pydantic or Prefect traceback), choices listed by --help, no
third-party deprecation warnings from the real `aoi` program, and exit codes as the README documents them."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aoi.settings import get_settings
from cli import app
from cli.choices import Arch, ExportFormat, Format, Status
from cli.entry import EXIT_CODES, AoiGroup
from training.runs import TrainingError

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(args: list[str], needle: str = "") -> str:
    """``args`` fail with exit code 2: one JSON error with --json, one `error:` line on stderr without it."""
    as_json = invoke(*args, "--json")
    assert as_json.exit_code == 2, f"{as_json.stdout}\n{as_json.stderr}"
    error = json.loads(as_json.stdout)["error"]
    assert needle in error
    plain = invoke(*args)
    assert plain.exit_code == 2 and plain.stdout == ""
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), plain.stderr
    assert "Traceback" not in plain.stderr and "Usage:" not in plain.stderr
    return error


def test_version_prints_the_installed_package_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"aoi {metadata.version('aoi-mlops')}"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["images", "--limit", "-5"], "--limit"),
        (["images", "--limit", "0"], "--limit"),
        (["images", "--offset", "-1"], "--offset"),
        (["images", "--min-width", "0"], "--min-width"),
        (["images", "--status", "archived"], "'archived' is not one of 'unlabeled', 'labeled', 'excluded'"),
        (["images", "--source", "sepia"], "--source"),
        (["images", "--since", "last week"], "not an ISO 8601 time"),
        (["images", "--since", "2026-02-01", "--until", "2026-01-01"], "is not before --until"),
        (["quarantine", "--batch", "0"], "--batch"),
        (["runs", "--last", "0"], "--last"),
        (["predictions", "--last", "-3"], "--last"),
        (["predictions", "--kind", "infrared"], "--kind"),
        (["stages", "--kind", "blue"], "--kind"),
        (["rollback", "purple", "--reason", "x"], "kind"),
        (["train", "--dataset", "d", "--arch", "vgg16"], "'vgg16' is not one of"),
        (["train", "--dataset", "d", "--epochs", "0"], "--epochs"),
        (["train", "--dataset", "d", "--lr", "0"], "--lr 0.0: Input should be greater than 0"),
        (["evaluate", "m", "--dataset", "d", "--split", "holdout"], "--split"),
        (["evaluate", "m", "--dataset", "d", "--threshold", "1.5"], "--threshold"),
        (["monitor", "--window", "3 fortnights"], "window must look like"),
        (["monitor", "--since", "yesterday"], "--since must be an ISO time"),
        (["drift-study", "--reference", "guess"], "--reference"),
        (["drift-study", "--sizes", "50,many"], "--sizes must be positive whole numbers"),
        (["dataset", "build", "v1", "--source", "sepia"], "--source"),
        (["dataset", "build", "v1", "--source", "gray", "--split", "8:2"], "split must be three"),
        (["dataset", "build", "v1", "--source", "gray", "--group-by", "board"], "--group-by"),
        (["dataset", "blind", "b1", "--batch", "1", "--date", "2026-13-45"], "date must be a day"),
        (["spec", "derive", "s1", "--from", "source:gray", "--k", "0"], "is not above 0"),
        (["serve", "--port", "0"], "--port"),
        (["validate", "--spec", "tone@latest", "--source", "gray"], "NAME@VERSION"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_invalid_values_are_one_line_and_exit_2(aoi_home, args, needle):
    assert_one_line_error(args, needle)


def test_ingest_format_is_refused_before_anything_runs(aoi_home, tmp_path):
    assert "'tiff' is not one of 'folder'" in assert_one_line_error(["ingest", str(tmp_path), "--format", "tiff"])
    assert not aoi_home.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--dataset", "nope"], "no dataset version nope"),
        (["promote", "v-nope"], "no model version v-nope"),
        (["validate", "--spec", "no-such-spec", "--source", "gray"], "no spec no-such-spec"),
        (["validate", "--spec", "vrs-capture-2023", "--batch", "42"], "no ingest batch 42"),
        (["validate", "--spec", "vrs-capture-2023", "--dataset", "nope"], "no dataset version nope"),
        (["dataset", "build", "v1", "--source", "gray", "--spec", "no-such-spec"], "no spec no-such-spec"),
        (["dataset", "build", "v1", "--source", "gray", "--parent", "nope"], "no dataset version nope"),
        (["monitor", "--kind", "color"], "no production color model"),
    ],
)
def test_unknown_names_are_refused_before_a_flow_starts(aoi_home, args, needle):
    """No Prefect server is given: the aoi_home fixture fails the test if the command started one (it would,
    to run the flow), so the name was checked first."""
    assert_one_line_error(args, needle)


def test_a_user_error_inside_a_flow_is_one_line_without_prefects_traceback(aoi_home, prefect_api, capfd):
    """An empty catalog: the build flow itself refuses (DatasetError in a task); Prefect's records of that
    failure stay out of the terminal, the CLI says it once."""
    result = invoke("dataset", "build", "v1", "--source", "gray")
    terminal = capfd.readouterr().err  # Prefect's console handler writes to the process's stderr
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines() == ["error: no labelled gray images in the catalog"]
    assert "Traceback" not in terminal and "DatasetError" not in terminal, terminal


def test_an_invalid_setting_is_one_line_naming_the_variable_not_a_traceback(aoi_home, monkeypatch):
    monkeypatch.setenv("AOI_SERVING__PORT", "eighty")
    get_settings.cache_clear()
    error = assert_one_line_error(["config"], "AOI_SERVING__PORT")
    assert error.startswith("invalid setting AOI_SERVING__PORT: ") and "eighty" not in error
    monkeypatch.setenv("AOI_API_KEY", "zq9")  # too short: refused, and a key is never printed
    get_settings.cache_clear()
    error = assert_one_line_error(["images"], "AOI_API_KEY")
    assert "zq9" not in error
    get_settings.cache_clear()


def _help(*command: str) -> str:
    return CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"}).stdout  # no wrapped choices


def test_help_lists_the_choices_of_every_enum_option():
    assert "<folder|deeppcb|labelme|labelimg|csv>" in _help("ingest")
    assert "<resnet18|mobilenet_v3_small|efficientnet_b0>" in _help("train")
    assert "<unlabeled|labeled|excluded|deleted>" in _help("images") and "<gray|color>" in _help("images")
    assert "<train|valid|test>" in _help("evaluate") and "<source_image|none>" in _help("dataset", "build")
    assert "<line|dataset>" in _help("drift-study") and "<gray|color>" in _help("stages")


def test_the_enums_are_the_values_the_code_accepts():
    from aoi.catalog.models import ImageStatus
    from ingest.importers import FORMATS
    from training.model import ARCHITECTURES

    assert tuple(Format) == FORMATS and tuple(Arch) == ARCHITECTURES and list(Status) == list(ImageStatus)
    from export.exports import FORMATS as EXPORT_FORMATS

    assert tuple(ExportFormat) == EXPORT_FORMATS
    assert json.dumps({"source": Format.csv}) == '{"source": "csv"}'  # JSON values are the plain words


def _sitecustomize(folder: Path) -> Path:
    """A sitecustomize that, when the program ends, warns as libraries do (after the CLI set its filters): a
    library's deprecation and future change, one after a library re-adds its own filter on import (feast does), one
    captured into logging (great_expectations does), and ours; and prints what subprocesses inherit."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        f"""
import atexit, logging, os, sys, warnings

def _late():
    lib = os.path.join(sys.prefix, "lib", "site-packages", "somelib", "mod.py")  # a library, not ours
    warnings.warn_explicit("LIBRARY-DEPRECATED", DeprecationWarning, lib, 1, module="somelib.mod")
    warnings.simplefilter("once", DeprecationWarning)
    warnings.warn_explicit("AFTER-FEAST-LIKE-RESET", DeprecationWarning, lib, 2, module="somelib.mod")
    warnings.warn_explicit("LIBRARY-FUTURE", FutureWarning, lib, 3, module="somelib.mod")
    ours = {str(REPO / "training" / "steps.py")!r}
    warnings.warn_explicit("OURS-DEPRECATED", DeprecationWarning, ours, 4, module="training.steps")
    logging.basicConfig()  # as Prefect's logging configuration does: captured warnings reach the terminal
    logging.captureWarnings(True)
    warnings.warn_explicit("CAPTURED-LIBRARY", DeprecationWarning, lib, 5, module="somelib.mod")
    warnings.warn_explicit("CAPTURED-OURS", DeprecationWarning, ours, 6, module="training.steps")
    print("PYTHONWARNINGS=" + os.environ.get("PYTHONWARNINGS", ""), file=sys.stderr)

atexit.register(_late)
"""
    )
    return folder


def test_the_aoi_program_shows_our_warnings_but_no_library_deprecation(aoi_home, tmp_path):
    site = _sitecustomize(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    env.pop("PYTHONWARNINGS", None)
    aoi = str(Path(sys.executable).with_name("aoi"))
    done = subprocess.run([aoi, "config", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OURS-DEPRECATED" in done.stderr and "CAPTURED-OURS" in done.stderr, done.stderr  # ours still show
    for library in ("LIBRARY-DEPRECATED", "AFTER-FEAST-LIKE-RESET", "LIBRARY-FUTURE", "CAPTURED-LIBRARY"):
        assert library not in done.stderr, done.stderr
    found = re.search(r"PYTHONWARNINGS=(.*)", done.stderr)
    assert found, done.stderr
    inherited = found[1]
    assert {"ignore::DeprecationWarning", "ignore::FutureWarning"} <= set(inherited.split(","))
    # The same program run as a plain Python process (no aoi entry) shows them: the test can tell.
    bare = subprocess.run(
        [sys.executable, "-c", "import warnings; warnings.simplefilter('default')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for library in ("LIBRARY-DEPRECATED", "AFTER-FEAST-LIKE-RESET", "LIBRARY-FUTURE", "CAPTURED-LIBRARY"):
        assert library in bare.stderr, bare.stderr


def _int(node: ast.AST | None) -> int | None:
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


def _codes_in_the_cli() -> set[int]:
    """Every exit code the CLI's code can end with: fail(code=N), Exit(N), getattr(err, "exit_code", N) and the
    exit_code of the errors it reports."""
    found: list[int | None] = []
    files = [*(REPO / "cli").glob("*.py"), REPO / "flows" / "prefect_server.py"]
    for tree in (ast.parse(f.read_text()) for f in files):
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in ("code", "exit_code"):
                found.append(_int(node.value))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "Exit":
                found.append(_int(node.args[0]) if node.args else None)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr" and len(node.args) == 3:
                found.append(_int(node.args[2]))
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "exit_code" for t in node.targets):
                found.append(_int(node.value))
    return {code for code in found if code is not None}


def test_every_exit_code_the_cli_uses_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| `?(\d+)`? \|", section, re.MULTILINE)}
    used = _codes_in_the_cli()
    assert {1, 2, 3, 4, 5} <= used  # the scan finds them
    assert used | {0, 130} == documented == set(EXIT_CODES), (used, documented)


def test_a_user_error_a_command_lets_through_is_still_one_line_but_a_bug_keeps_its_traceback():
    small = typer.Typer(cls=AoiGroup, pretty_exceptions_enable=False)

    @small.command("refused")
    def refused(as_json: bool = typer.Option(False, "--json")) -> None:
        raise TrainingError("dataset d has no valid images; see postgresql://aoi:hunter2@db/aoi")

    @small.command("bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    result = CliRunner().invoke(small, ["refused"])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        "error: dataset d has no valid images; see postgresql://aoi:***@db/aoi"
    ]
    result = CliRunner().invoke(small, ["refused", "--json"])
    assert result.exit_code == 2 and "hunter2" not in result.stdout
    assert json.loads(result.stdout)["error"].startswith("dataset d has no valid images")
    crashed = CliRunner().invoke(small, ["bug"])
    assert crashed.exit_code == 1 and isinstance(crashed.exception, RuntimeError)
