"""The bentofile builds a Bento holding the service and the code it imports, without tests or data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT


@pytest.mark.slow
def test_bentoml_build_packs_the_service(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    build = subprocess.run(
        [bentoml, "build", "-f", "serving/bentofile.yaml", "."],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    [bento] = list((tmp_path / "bentoml" / "bentos" / "aoi-classifier").glob("*/src"))
    packed = {str(p.relative_to(bento)) for p in bento.rglob("*") if p.is_file()}
    assert {
        "serving/service.py",
        "serving/rules.yaml",
        "aoi/preprocess.py",
        "aoi/image_metrics.py",
        "evaluation/evaluate.py",
        "features/calibration.py",
        "features/definitions.py",
    } <= packed  # what it imports
    assert not any(p.startswith("tests/") for p in packed)
