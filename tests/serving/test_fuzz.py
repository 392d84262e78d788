"""Schema-based fuzzing (schemathesis) of the served OpenAPI: whatever a client sends, no 5xx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.helpers import aoi
from tests.helpers import free_port

KEY = "fuzz-key-0123456789abcdef"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(both_in_production, configure):
    configure(API_KEY=KEY, SERVING__PORT=free_port())
    served = aoi("serve", "--background", "--json")
    try:
        st = str(Path(sys.executable).with_name("schemathesis"))
        run = subprocess.run(
            [
                st,
                "run",
                f"{served['url']}/docs.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "40",
                "--seed",
                "7",
                # the first /machine_params imports Feast (6-10 s, more on a busy machine): slow, not an error
                "--request-timeout",
                "60",
                "-H",
                f"Authorization: Bearer {KEY}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        aoi("serve", "--stop", "--json")
    assert run.returncode == 0, run.stdout[-4000:]
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated and int(generated.group(1)) > 50, run.stdout[-2000:]  # it really sent requests
