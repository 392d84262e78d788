"""The features flow's steps (and the simulated-line flow's camera-parameter import): rebuild the sources from
the catalog, register the definitions, load the online store."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from features.calibration import write_source as calibration_source
from features.camera_params import import_csv as import_camera_params
from features.store import apply, materialize
from features.tone_stats import write_source as tone_source


class FeaturesResult(BaseModel):
    """What the features flow returns (``aoi features refresh --json``): rows written per source, the views
    registered, and what was loaded into the online store."""

    model_config = ConfigDict(frozen=True)

    tone_stats: dict
    calibration: dict
    registered: list[str]
    online: dict

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")


__all__ = [
    "FeaturesResult",
    "apply",
    "calibration_source",
    "import_camera_params",
    "materialize",
    "tone_source",
]
