"""`aoi demo` end to end on small generated copies of the two public sets' layouts."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli import app
from tests.helpers import class_folder, mini_deeppcb

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_demo_ingests_both_sets_and_says_where_to_look(configure, tmp_path):
    datasets = tmp_path / "datasets"
    class_folder(datasets / "pku-pcb-roi", {"Spur": 3, "Missing_hole": 2}, fmt="JPEG")
    class_folder(datasets / "pku-pcb-roi", {"Spur": 2}, fmt="JPEG", seed=5, board="11")  # the blind board
    mini_deeppcb(datasets / "DeepPCB")
    settings = configure(DATASETS_DIR=datasets)
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ingest"]["pku-pcb-roi"]["by_label"] == {"MISSING_HOLE": 2, "SPUR": 5}
    assert data["ingest"]["deeppcb"]["by_label"] == {"NICK": 1, "OPEN": 1, "PASS": 4, "PINHOLE": 1}
    by_source = {}
    for row in data["catalog"]:
        by_source[row["source"]] = by_source.get(row["source"], 0) + row["images"]
    assert by_source == {"color": 7, "gray": 7}
    assert data["spec"] == "pku-color-tone@1"
    blind = data["blind"]
    assert blind["gray"]["counts"] == {"blind": {"PASS": 1, "PINHOLE": 1}}  # pair 10000001, the test list
    assert blind["color"]["counts"] == {"blind": {"SPUR": 2}}  # board 11
    assert "fewer than 100 for each of 4 machines" in data["line"]["skipped"]  # too few crops to simulate a line
    gray, color = data["datasets"]["gray"], data["datasets"]["color"]
    assert gray["dropped_blind"] == 2 and gray["images"] == 5
    assert color["validation"]["evaluated"] == 7
    steps = color["cleaning"]
    assert sum(steps[0]["before"].values()) == 7 and sum(steps[-1]["after"].values()) == color["images"]
    validation = next(step for step in steps if step["rule"].startswith("not excluded by validation"))
    assert sum(validation["before"].values()) - sum(validation["after"].values()) == color["validation"]["excluded"]
    # The tiny copies cannot cover the taxonomies: the training stage says so instead of failing the demo.
    assert set(data["models"]) == {"gray", "color"}
    assert all(
        m["skipped"].startswith(("dataset ", "classes with no training images")) for m in data["models"].values()
    )
    assert data["where"]["training"] == "aoi runs; aoi models"
    assert data["serving"] == {"skipped": "no model reached production"}  # nothing to serve: no service started
    assert data["where"]["service"].startswith("not started")
    assert data["drift"] == {"skipped": "needs the running service and the simulated line"}
    assert data["where"]["aoi_home"] == str(settings.home)
    assert data["where"]["prefect_ui"].startswith("http")
    # In the terminal each stage prints its results when it ends, then the next stage's title (the same renderers
    # `aoi demo` hands the flow, fed the stage results it returned).
    from cli.output import console
    from cli.system_cmds import _stage_report

    with console.capture() as captured:
        report = _stage_report(settings)
        for stage in ("models", "promotion", "serving", "drift"):
            report(stage, data if stage == "models" else data[stage])
    text = captured.get()
    order = ["spec pku-color-tone@1 derived", "gray model: skipped", "4/6", "5/6", "serving: skipped", "6/6", "drift:"]
    assert [text.index(line) for line in order] == sorted(text.index(line) for line in order), text
    again = CliRunner().invoke(app, ["demo", "--json"])  # dataset versions are immutable: one demo per AOI_HOME
    assert again.exit_code == 5 and "make clean && make demo" in json.loads(again.stdout)["error"]


def test_the_demo_checks_its_home_without_importing_prefect(aoi_home):
    """Prefect freezes its settings when imported: anything `aoi demo` runs before it starts the local server and
    exports its address must leave Prefect unimported, or every flow silently runs on a throwaway server."""
    code = (
        "import sys\nfrom cli.system_cmds import _refuse_a_second_demo\nfrom aoi.settings import get_settings\n"
        "_refuse_a_second_demo(get_settings(), True)\nassert 'prefect' not in sys.modules, 'prefect imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
