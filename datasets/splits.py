"""Group-aware, seeded splits and per-class sampling: pure functions over (image id, label, group) rows."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Row:
    image_id: int
    sha256: str
    label: str
    group: str


def parse_ratio(text: str) -> tuple[float, float, float]:
    """``8:1:1`` -> (0.8, 0.1, 0.1)."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f"split must be three non-negative numbers like 8:1:1, not {text!r}")
    total = sum(parts)
    return parts[0] / total, parts[1] / total, parts[2] / total


def cap_per_class(rows: list[Row], n: int, seed: int) -> list[Row]:
    """At most ``n`` images per class, drawn with ``seed`` (the report's 'every class capped at N')."""
    by_class: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.image_id):
        by_class[row.label].append(row)
    rng = random.Random(seed)
    kept: list[Row] = []
    for label in sorted(by_class):
        members = by_class[label]
        kept += members if len(members) <= n else rng.sample(members, n)
    return sorted(kept, key=lambda r: r.image_id)


def assign_splits(rows: list[Row], ratio: tuple[float, float, float], seed: int) -> dict[int, str]:
    """image id -> split, stratified by class and keeping groups whole (no crop of one source image in two
    splits). Groups are shuffled with ``seed``; each goes to the split whose per-class targets it helps most:
    the sum over its images of how far that split is below its share of the image's class."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    totals = Counter(row.label for row in rows)
    active = [s for i, s in enumerate(SPLITS) if ratio[i] > 0]
    target = {(label, s): ratio[SPLITS.index(s)] * n for label, n in totals.items() for s in active}
    filled: Counter = Counter()
    out: dict[int, str] = {}
    for key in order:
        members = Counter(row.label for row in groups[key])

        def need(split: str, members: Counter = members) -> tuple[float, int]:
            gap = sum(n * (target[(label, split)] - filled[(label, split)]) for label, n in members.items())
            return gap, -SPLITS.index(split)

        split = max(active, key=need)
        for label, n in members.items():
            filled[(label, split)] += n
        for row in groups[key]:
            out[row.image_id] = split
    return out
