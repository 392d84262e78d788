"""Specs: named, versioned limits on the per-image metrics of ``aoi.image_metrics``.

A tone spec limits brightness and the channel differences, overall and optionally per class (label), per
machine and per machine × part number; an image is judged by the most specific limits that match it. Quality
limits bound sharpness and smear (an image not measured for them, from before they existed, is not judged). A
compression spec limits format, JPEG quality and bytes per pixel and says whether compressed images are
required, forbidden or allowed. Specs are YAML files (``validation/specs/`` ships the report's VRS capture
spec) and every spec used is kept in the catalog under its name and version.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aoi.image_metrics import JOINT_TONE_FIELDS, QUALITY_FIELDS, TONE_FIELDS

TONE_METRICS = TONE_FIELDS  # brightness, mean_r/g/b, r_minus_g, r_minus_b, g_minus_b, b_diff
DEFAULT_DERIVED = JOINT_TONE_FIELDS


class SpecError(ValueError):
    """A spec that cannot be used; the message says what to fix."""


class Limits(BaseModel):
    """A closed range; either end may be open (None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.min is None and self.max is None:
            raise ValueError("a limit needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"lower limit {self.min} exceeds upper limit {self.max}")
        return self

    def text(self) -> str:
        low = "-inf" if self.min is None else f"{self.min:g}"
        high = "inf" if self.max is None else f"{self.max:g}"
        return f"{low}..{high}"


def _check_metrics(
    limits: dict[str, Limits], known: tuple[str, ...] = TONE_METRICS, what: str = "tone"
) -> dict[str, Limits]:
    unknown = sorted(set(limits) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} metric(s) {unknown}; known: {', '.join(known)}")
    return limits


class LimitGroup(BaseModel):
    """Tone limits for the images of one class, machine or machine × part (or a combination of them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    machine: str | None = None
    part: str | None = Field(None, description="A part number (part_no); needs machine: parts are per machine")
    label: str | None = Field(None, description="A class: its images are judged against their own class's tone")
    tone: dict[str, Limits]

    _tone_metrics = field_validator("tone")(classmethod(lambda cls, v: _check_metrics(v)))

    @model_validator(mode="after")
    def _selects(self) -> LimitGroup:
        if self.part is not None and self.machine is None:
            raise ValueError(f"part {self.part}: give its machine too (limits are per machine × part)")
        if self.machine is None and self.label is None:
            raise ValueError("a limit group needs machine, label or both (overall limits go under tone)")
        return self

    @property
    def rank(self) -> tuple[int, int, int]:
        """Specificity: machine × part before machine before class before overall."""
        return (self.part is not None, self.machine is not None, self.label is not None)

    @property
    def name(self) -> str:
        parts = [f"machine-{self.machine}"] if self.machine is not None else []
        parts += [f"part-{self.part}"] if self.part is not None else []
        parts += [f"label-{self.label}"] if self.label is not None else []
        return ".".join(parts)

    def matches(self, machine: str | None, part: str | None, label: str | None) -> bool:
        return (
            (self.machine is None or self.machine == machine)
            and (self.part is None or self.part == part)
            and (self.label is None or self.label == label)
        )


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
    groups: tuple[LimitGroup, ...] = Field((), description="Tone limits per class, machine × part, or both")
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
    def _not_empty(self) -> Spec:
        if not self.tone and not self.machines and not self.groups and not self.quality and self.compression is None:
            raise ValueError("the spec limits nothing: give tone, machines, groups, quality or compression")
        return self

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def matching_groups(
        self, machine: str | None, part: str | None = None, label: str | None = None
    ) -> list[LimitGroup]:
        """Every limit group that applies to an image of ``machine``, ``part`` and ``label``, least specific first
        (the ``machines`` entries count as machine-only groups)."""
        found = [g for g in self.groups if g.matches(machine, part, label)]
        if machine is not None and machine in self.machines:
            found.append(LimitGroup(machine=machine, tone=self.machines[machine]))
        return sorted(found, key=lambda g: g.rank)

    def tone_limits_for(
        self, machine: str | None, part: str | None = None, label: str | None = None
    ) -> dict[str, Limits]:
        """The most specific limits for each metric: machine × part, else machine, else class, else overall."""
        limits = dict(self.tone)
        for group in self.matching_groups(machine, part, label):
            limits.update(group.tone)
        return limits

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
    per_part: bool = False,
    per_class: bool = False,
    columns: tuple[str, ...] = DEFAULT_DERIVED,
    version: int = 1,
    source: str = "",
    applies_to: str = "any",
) -> Spec:
    """Limits at mean ± k·σ (σ: sample standard deviation, ddof=1) of each metric over ``metrics``.

    ``per_machine``: one set per machine_id as well; ``per_part``: one per machine × part_no (implies per machine);
    ``per_class``: one per label within each of those scopes, so that what a class shows (a missing hole brightens
    a crop) is judged against its own class and not read as camera tone. A group with fewer than 2 images gets
    no limits of its own: its images fall back to the next less specific limits."""
    if not k > 0:
        raise SpecError(f"cannot derive {name}: k must be above 0, not {k:g}")
    if len(metrics) < 2:
        raise SpecError(f"cannot derive {name}: the reference set has {len(metrics)} image(s), need at least 2")

    def limits(frame: pd.DataFrame) -> dict[str, Limits]:
        mean, std = frame[list(columns)].mean(), frame[list(columns)].std(ddof=1)
        return {c: Limits(min=float(mean[c] - k * std[c]), max=float(mean[c] + k * std[c])) for c in columns}

    def by(frame: pd.DataFrame, keys: list[str]):
        for key, part in frame.dropna(subset=keys).groupby(keys):
            if len(part) >= 2:
                yield dict(zip(keys, (str(v) for v in key), strict=True)), part

    machines, groups = {}, []
    scopes: list[list[str]] = (
        [[]] + [["machine_id"]] * (per_machine or per_part) + [["machine_id", "part_no"]] * per_part
    )
    for keys in scopes:
        for selector in ([[*keys, "label"]] if per_class else []) + ([keys] if keys else []):
            for values, frame in by(metrics, selector):
                if list(values) == ["machine_id"]:
                    machines[values["machine_id"]] = limits(frame)
                else:
                    groups.append(
                        LimitGroup(
                            machine=values.get("machine_id"),
                            part=values.get("part_no"),
                            label=values.get("label"),
                            tone=limits(frame),
                        )
                    )
    return Spec(
        name=name,
        version=version,
        source=source,
        applies_to=applies_to,
        tone=limits(metrics),
        machines=machines,
        groups=tuple(groups),
    )
