"""A spec as a list of checks: the one meaning both engines (Great Expectations, plain pandas) run.

Row checks name the images that fail them (those are excluded); set checks judge the whole set (a mix of
compressed and uncompressed images, domain fact 4) and exclude nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from validation.specs import Limits, Spec


@dataclass(frozen=True)
class Check:
    kind: str  # "between", "in_set" (row checks) or "one_value" (set check)
    column: str
    description: str  # what a failing image is told, e.g. "brightness outside 130..188"
    low: float | None = None
    high: float | None = None
    values: tuple = ()

    @property
    def row_check(self) -> bool:
        return self.kind != "one_value"


def _between(column: str, limits: Limits) -> Check:
    return Check("between", column, f"{column} outside {limits.text()}", limits.min, limits.max)


def checks_for(spec: Spec, machine: str | None = None) -> list[Check]:
    """The checks of ``spec`` for images of ``machine`` (its own tone limits where the spec has them)."""
    checks = [_between(metric, limits) for metric, limits in spec.tone_limits_for(machine).items()]
    # Quality metrics are missing (None) on images measured before they existed: no check judges a missing value.
    checks += [_between(metric, limits) for metric, limits in spec.quality.items()]
    c = spec.compression
    if c is not None:
        if c.formats:
            checks.append(Check("in_set", "format", f"format not in {list(c.formats)}", values=tuple(c.formats)))
        if c.jpeg_quality:
            checks.append(_between("jpeg_quality", c.jpeg_quality))
        if c.bytes_per_pixel:
            checks.append(_between("bytes_per_pixel", c.bytes_per_pixel))
        if c.compressed == "required":
            checks.append(Check("in_set", "compressed", "not compressed (spec requires compressed)", values=(True,)))
        elif c.compressed == "forbidden":
            checks.append(Check("in_set", "compressed", "compressed (spec forbids compressed)", values=(False,)))
        if not c.allow_mixed:
            checks.append(Check("one_value", "compressed", "mixed compressed and uncompressed images in one set"))
    return checks


def limit_groups(spec: Spec, machines: set[str]) -> dict[str, str | None]:
    """Group name -> machine: one group per machine with its own limits, 'overall' for the rest."""
    groups: dict[str, str | None] = {"overall": None}
    for machine in sorted(machines & set(spec.machines)):
        groups[f"machine-{machine}"] = machine
    return groups
