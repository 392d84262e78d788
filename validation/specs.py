"""Specs: named, versioned limits on the per-image metrics of ``aoi.metrics``.

A tone spec limits brightness and the channel differences, overall and optionally per machine; quality
limits bound sharpness and smear (an image not measured for them, from before they existed, is not judged); a
compression spec limits format, JPEG quality and bytes per pixel and says whether compressed images are
required, forbidden or allowed. Specs are YAML files (``validation/specs/`` ships the report's VRS capture
spec) and every spec used is kept in the catalog under its name and version.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aoi.metrics import QUALITY_FIELDS, TONE_FIELDS

TONE_METRICS = TONE_FIELDS  # brightness, mean_r/g/b, r_minus_g, r_minus_b, g_minus_b, b_diff
DEFAULT_DERIVED = ("brightness", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff")


class SpecError(ValueError):
    """A spec that cannot be used; the message says what to fix."""


class Limits(BaseModel):
    """A closed range; either end may be open (None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Limits":
        if self.min is None and self.max is None:
            raise ValueError("a limit needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"lower limit {self.min} exceeds upper limit {self.max}")
        return self

    def text(self) -> str:
        low = "-inf" if self.min is None else f"{self.min:g}"
        high = "inf" if self.max is None else f"{self.max:g}"
        return f"{low}..{high}"


def _check_metrics(limits: dict[str, Limits], known: tuple[str, ...] = TONE_METRICS,
                   what: str = "tone") -> dict[str, Limits]:  # fmt: skip
    unknown = sorted(set(limits) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} metric(s) {unknown}; known: {', '.join(known)}")
    return limits


class CompressionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    formats: tuple[str, ...] | None = Field(None, description="Accepted formats, e.g. [JPEG]; None: any")
    jpeg_quality: Limits | None = None
    bytes_per_pixel: Limits | None = None
    compressed: Literal["any", "required", "forbidden"] = "any"
    allow_mixed: bool = Field(False, description="A set mixing compressed and uncompressed images passes")


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: int = Field(1, ge=1)
    source: str = Field("", description="Where the limits come from (report, derivation, reference set)")
    applies_to: Literal["gray", "color", "any"] = "any"
    mostly: float = Field(1.0, gt=0, le=1, description="Share of images that must pass for the set to pass")
    tone: dict[str, Limits] = Field(default_factory=dict)
    machines: dict[str, dict[str, Limits]] = Field(default_factory=dict, description="Per-machine tone limits")
    quality: dict[str, Limits] = Field(default_factory=dict, description="Limits on sharpness and smear")
    compression: CompressionSpec | None = None

    _tone_metrics = field_validator("tone")(classmethod(lambda cls, v: _check_metrics(v)))
    _quality_metrics = field_validator("quality")(
        classmethod(lambda cls, v: _check_metrics(v, QUALITY_FIELDS, "quality"))
    )

    @field_validator("machines")
    @classmethod
    def _machine_metrics(cls, value: dict[str, dict[str, Limits]]) -> dict[str, dict[str, Limits]]:
        for machine, limits in value.items():
            try:
                _check_metrics(limits)
            except ValueError as err:
                raise ValueError(f"machine {machine}: {err}") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> "Spec":
        if not self.tone and not self.machines and not self.quality and self.compression is None:
            raise ValueError("the spec limits nothing: give tone, machines, quality or compression")
        return self

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def tone_limits_for(self, machine: str | None) -> dict[str, Limits]:
        """The machine's own limits where it has them, the overall limits otherwise."""
        return {**self.tone, **self.machines.get(machine or "", {})}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)


def parse_spec(text: str, origin: str = "spec") -> Spec:
    """A Spec from YAML text, or SpecError naming every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"{origin} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{origin} must be a mapping with at least name and tone/compression")
    try:
        return Spec.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise SpecError(f"{origin} refused: {problems}") from None


def derive(
    name: str,
    metrics: pd.DataFrame,
    *,
    k: float = 1.5,
    per_machine: bool = False,
    columns: tuple[str, ...] = DEFAULT_DERIVED,
    version: int = 1,
    source: str = "",
    applies_to: str = "any",
) -> Spec:
    """Limits at mean ± k·σ (σ: sample standard deviation, ddof=1) of each metric over ``metrics``;
    with ``per_machine`` one set per machine_id as well (machines with fewer than 2 images are skipped)."""
    if len(metrics) < 2:
        raise SpecError(f"cannot derive {name}: the reference set has {len(metrics)} image(s), need at least 2")

    def limits(frame: pd.DataFrame) -> dict[str, Limits]:
        mean, std = frame[list(columns)].mean(), frame[list(columns)].std(ddof=1)
        return {c: Limits(min=float(mean[c] - k * std[c]), max=float(mean[c] + k * std[c])) for c in columns}

    machines = {}
    if per_machine:
        for machine, frame in metrics.dropna(subset=["machine_id"]).groupby("machine_id"):
            if len(frame) >= 2:
                machines[str(machine)] = limits(frame)
    return Spec(name=name, version=version, source=source, applies_to=applies_to, tone=limits(metrics),
                machines=machines)  # fmt: skip
