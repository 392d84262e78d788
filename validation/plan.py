"""A spec as a list of checks: the one meaning both engines (Great Expectations, plain pandas) run.

Row checks name the images that fail them (those are excluded); set checks judge the whole set (a mix of
compressed and uncompressed images, docs/domain.md#compression) and exclude nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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


def checks_for(
    spec: Spec, machine: str | None = None, part: str | None = None, label: str | None = None
) -> list[Check]:
    """The checks of ``spec`` for images of ``machine``, ``part`` and ``label``: for each tone metric the most
    specific limits the spec has (machine × part, else machine, else class, else overall)."""
    checks = [_between(metric, limits) for metric, limits in spec.tone_limits_for(machine, part, label).items()]
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


@dataclass(frozen=True)
class Group:
    """The images that share one set of limits: ``name`` is the most specific limit group that applies."""

    name: str
    machine: str | None
    part: str | None
    label: str | None


def _value(row, column: str) -> str | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) else str(value)


def partition(spec: Spec, frame: pd.DataFrame) -> list[tuple[Group, pd.DataFrame]]:
    """Split ``frame`` into groups of images judged by the same limits; 'overall' holds those no group claims.

    Two images share a group when the same limit groups of the spec apply to them, so one checkpoint per group
    checks each image against the most specific limits for it."""
    if not spec.groups and not spec.machines:
        return [(Group("overall", None, None, None), frame)] if len(frame) else []
    keys, selectors = [], {}
    for row in frame[[c for c in ("machine_id", "part_no", "label") if c in frame]].to_dict("records"):
        selector = (_value(row, "machine_id"), _value(row, "part_no"), _value(row, "label"))
        if selector not in selectors:
            matching = spec.matching_groups(*selector)
            if not matching:
                selectors[selector] = Group("overall", None, None, None)
            else:  # the selector restricted to what the matching groups name gives the same limits
                top = matching[-1]
                used = {f for g in matching for f in ("machine", "part", "label") if getattr(g, f) is not None}
                m, p, lab = (v if f in used else None for v, f in zip(selector, ("machine", "part", "label")))
                name = (
                    ".".join(
                        [f"machine-{m}"] * (m is not None)
                        + [f"part-{p}"] * (p is not None)
                        + [f"label-{lab}"] * (lab is not None)
                    )
                    or top.name
                )
                selectors[selector] = Group(name, m, p, lab)
        keys.append(selectors[selector].name)
    names = pd.Series(keys, index=frame.index)
    groups = {g.name: g for g in selectors.values()}
    return [
        (groups[name], frame[names == name])
        for name in sorted(groups, key=lambda n: (n != "overall", n))
        if (names == name).any()
    ]
