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


@pytest.fixture
def stops_the_workbench(configure):
    """`aoi demo` leaves the workbench running for the user: the test stops it."""
    yield
    CliRunner().invoke(app, ["web", "--stop", "--json"])


def test_demo_ingests_both_sets_and_says_where_to_look(configure, tmp_path, stops_the_workbench):
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


def test_the_serving_and_drift_stages_say_what_answered_what_was_kept_labelled_and_flagged(settings):
    """The terminal report of stages 5 and 6 on results shaped as the flow returns them (the tiny demo above never
    reaches them): each export's verdict, the runtime per kind, the queue, the labels typed, the stale machine."""
    from cli.output import console
    from cli.system_cmds import _stage_report
    from demo import line_loop

    figures = {
        "engine": "onnxruntime",
        "top1_agreement": 0.9991,
        "blind_accuracy_torch": 0.93,
        "blind_accuracy_export": 0.931,
        "blind_images": 1120,
        "device": "cpu",
        "batch1_ms": 2.1,
        "batch32_images_per_s": 900.0,
        "torch_batch1_ms": 4.0,
        "torch_batch32_images_per_s": 400.0,
    }
    serving = {
        "url": "http://127.0.0.1:3000",
        "log": "serving.log",
        "exports": {
            "kinds": {
                "gray": {
                    "model_version": "gray-r1",
                    "fp32": {**figures, "accepted": True, "reason": "accepted on 1120 blind images", "seconds": 20.0},
                    "int8": {
                        **figures,
                        "accepted": False,
                        "reason": "refused: top-1 agreement 0.9810 < 0.9950",
                        "seconds": 30.0,
                    },
                },
                "color": {
                    "model_version": "color-r1",
                    "fp32": {"accepted": False, "error": "ExportError: no engine", "seconds": 1.0},
                    "int8": {"accepted": False, "error": "ExportError: no engine", "seconds": 1.0},
                },
            },
            "seconds": 52.0,
        },
        "trials": [
            {
                "kind": "gray",
                "blind_set": "deeppcb-blind",
                "sent": 100,
                "answered": 100,
                "model_versions": {"gray-r1": 100},
                "accepted_accuracy": 0.95,
                "unknown_rate": 0.04,
                "routes": {"FINAL": 90, "REVIEW": 10},
                "p50_ms": 12.0,
                "runtime": "onnx fp32 (onnxruntime)",
                "runtime_reason": "AOI_SERVING__RUNTIME=auto: the fastest accepted export",
            }
        ],
        "kept_answers": {"kept": 14, "by_reason": {"unknown": 4}, "waiting": {"gray": {"review": 10, "unknown": 4}}},
    }
    live = {"scope": line_loop.STALE_MACHINE, "drift": True, "reason": "0.45 (bound 0.52) < blind 0.93 - 0.05"}
    checked = {"kinds": {"color": {"live_accuracy": [live], "machines": {line_loop.STALE_MACHINE: {"drift": False}}}}}
    drift = {
        "monitor": {"drift": True, "kinds": {}, "machines": {}, "parts": {}, "live_accuracy": []},
        "requests": {
            "sent": 1200,
            "simulation": "an ageing lamp (SIMULATION)",
            "ageing_machine": "VRS-02",
            "light_steps": [1.0, 0.8],
        },
        "retraining": "run-1",
        "kept_answers": {"kept": 40, "by_reason": {}, "waiting": {"color": {"unknown": 35}}},
        "review": {
            "by": line_loop.ENGINEER,
            "labelled": [
                {
                    "command": f"aoi review label r1 SHORT --by {line_loop.ENGINEER}",
                    "machine_id": "VRS-02",
                    "answered": "UNKNOWN",
                    "reason": "unknown",
                }
            ],
            "failed": [],
            "note": "re-shot images (new bytes)",
        },
        "stale_machine": {
            "simulation": line_loop.STALE_NOTICE,
            "confirmed": 300,
            "confirmed_wrong": 120,
            "accepted_answers": 260,
            "verdict": line_loop.stale_verdict(checked, "color"),
        },
    }
    with console.capture() as captured:
        report = _stage_report(settings)
        report("serving", serving)
        report("drift", drift)
    text = " ".join(captured.get().split())
    assert "(52.0 s in all)" in text and "99.91%" in text and "0.930/0.931" in text and "900/400" in text
    assert "gray-r1: exported in 20.0 s (fp32), 30.0 s (int8)" in text
    assert "gray-r1 int8: refused: top-1 agreement 0.9810" in text and "color-r1 fp32: ExportError: no engine" in text
    assert "by gray-r1 on onnx fp32 (onnxruntime)" in text and "AOI_SERVING__RUNTIME=auto" in text
    assert "review queue after the line trial: gray: 10 review, 4 unknown waiting" in text
    assert f"$ aoi review label r1 SHORT --by {line_loop.ENGINEER}" in text
    assert "1 kept answers labelled" in text and "confirmed from the line" in text
    assert "SIMULATION" in text and "120 of 260 accepted ones called another class" in text
    assert f"{line_loop.STALE_MACHINE}: flagged by live accuracy (0.45" in text and "inputs: no drift" in text
