"""The features flow's steps (and the simulated-line flow's camera-parameter import): rebuild the sources from
the catalog, register the definitions, load the online store."""

from __future__ import annotations

from features.calibration import write_source as calibration_source
from features.camera_params import import_csv as import_camera_params
from features.store import apply, materialize, materialized_views
from features.tone_stats import write_source as tone_source

__all__ = ["apply", "calibration_source", "import_camera_params", "materialize", "materialized_views", "tone_source"]
