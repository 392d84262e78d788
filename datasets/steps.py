"""The build-dataset flow's steps: freeze a version. The work is in ``versions``; this module names what the
flow wraps as tasks (and the simulated-line flow's blind set), so a reader finds every step of a stage in one place."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from datasets.versions import DatasetError, build, register_blind

freeze = build
hold_out = register_blind


class BuiltVersion(BaseModel):
    """What the build-dataset flow returns (``aoi dataset build --json``): the frozen version as ``aoi dataset
    show`` describes it, the small-label warnings, and the validation run that cleaned it (when a spec was given).
    A key ``describe`` gains must be declared here (extra keys are refused, never dropped from the JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: str
    source: str
    parent: str | None
    spec_key: str | None
    seed: int
    split: str | None
    per_class: int | None
    group_by: str | None
    taxonomy: list[str]
    cleaning: list[dict]
    counts: dict[str, dict[str, int]]
    dropped_blind: int
    blind_date: str | None
    note: str | None
    created_at: datetime | str
    images: int
    class_loss_allowed: bool
    lineage: list[str]
    warnings: list[str] = []
    validation: dict | None = None

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")


__all__ = ["BuiltVersion", "DatasetError", "freeze", "hold_out"]
