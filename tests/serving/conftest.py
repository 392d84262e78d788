"""A catalog with a production gray model (small, trained in-process) for the serving tests."""

from __future__ import annotations

import pytest

from tests.evaluation.models import gray_data, trained_model
from tests.serving.helpers import promote


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
    from tests.flows.helpers import aoi, ingest
    from tests.helpers import class_folder

    gray_data(tmp_path)
    ingest(class_folder(tmp_path / "color", COLOR, seed=3), "--source", "color")
    aoi("dataset", "build", "c-v1", "--source", "color", "--seed", "1", "--split", "6:2:0")
    versions = {"gray": trained_model(settings, epochs=1), "color": trained_model(settings, "c-v1", epochs=1)}
    for kind, version in versions.items():
        promote(settings, version, kind)
    return versions
