"""A catalog with a production gray model (small, trained in-process) for the serving tests."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from promotion import stages
from promotion.gate import rule
from tests.evaluation.models import gray_data, trained_model


def promote(settings, version: str, kind: str = "gray", reviewer: str = "test") -> None:
    """Make ``version`` production the only way the system allows: a passed gate verdict and an approval."""
    current = stages.production(settings, kind)  # the gate compares with it, as the promote flow's does
    verdict = stages.record_verdict(
        settings,
        version,
        kind,
        [rule("blind accuracy on b", 0.95, ">=", 0.9)],
        ["b"],
        current.version if current else None,
        None,
    )
    approval = stages.open_approval(settings, verdict["verdict_id"], None)
    stages.decide(settings, approval, True, reviewer, "serving test")


def png(size: int = 32, mode: str = "L", value: int = 120, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    pixels = np.clip(rng.normal(value, 20, (size, size, channels)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels.squeeze() if channels == 1 else pixels, mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def gray_production(settings, tmp_path, prefect_api) -> str:
    """The version of a production gray model in this test's AOI_HOME."""
    gray_data(tmp_path)
    version = trained_model(settings, epochs=1)
    promote(settings, version)
    return version


COLOR = {"Missing_hole": 8, "Open_circuit": 8, "Short": 8, "Mouse_bite": 8, "Spur": 8, "Spurious_copper": 8}


@pytest.fixture
def both_in_production(settings, tmp_path, prefect_api) -> dict[str, str]:
    """A production gray and a production colour model (tiny, untrained beyond one epoch)."""
    from tests.flows.test_ingest_flow import aoi, ingest
    from tests.helpers import class_folder

    gray_data(tmp_path)
    ingest(class_folder(tmp_path / "color", COLOR, seed=3), "--source", "color")
    aoi("dataset", "build", "c-v1", "--source", "color", "--seed", "1", "--split", "6:2:0")
    versions = {"gray": trained_model(settings, epochs=1), "color": trained_model(settings, "c-v1", epochs=1)}
    for kind, version in versions.items():
        promote(settings, version, kind)
    return versions
