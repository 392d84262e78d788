"""Drift references per part number.

Tone differs by part number on the same machine (docs/domain.md#tone-per-machine): a window of one part compared with a
reference
of all parts mixed shows the part, not a change. So each answer is judged against reference images of its own
part number, in the window's own mix of parts:

- an answer whose part number has reference images (at least ``min_part_reference``) is compared with them;
- an answer without a part number is compared with the whole reference (the line did not say, nor do the
  images the reference holds without one);
- an answer of a part number with no reference is not judged: a new part on the line is news, not drift. It is
  reported as "no reference for part X".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNNAMED = "(none)"  # the group of answers and reference images without a part number


def _part(frame: pd.DataFrame) -> pd.Series:
    if "part_no" not in frame:
        return pd.Series(UNNAMED, index=frame.index)
    return frame["part_no"].astype(object).where(frame["part_no"].notna(), UNNAMED)


def referenced_parts(reference: pd.DataFrame, min_part_reference: int) -> dict[str, int]:
    """part number -> reference images, for the parts with enough of them to be a reference."""
    counts = _part(reference).value_counts()
    return {p: int(n) for p, n in counts.items() if p != UNNAMED and n >= min_part_reference}


def split(
    reference: pd.DataFrame, current: pd.DataFrame, min_part_reference: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """(the answers that can be judged, {part with no reference: its answers})."""
    known = referenced_parts(reference, min_part_reference)
    parts = _part(current)
    judged = parts.eq(UNNAMED) | parts.isin(list(known))
    return current[judged], {str(p): int(n) for p, n in parts[~judged].value_counts().sort_index().items()}


def matched(reference: pd.DataFrame, current: pd.DataFrame, min_part_reference: int, seed: int = 0) -> pd.DataFrame:
    """The reference in the window's mix of parts: for each part of ``current`` (all judged, see ``split``) its
    reference images, as many of each as keep the window's shares (without repeating an image); the whole
    reference for answers without a part number. The whole reference when no part is in play."""
    known = referenced_parts(reference, min_part_reference)
    parts = _part(current)
    shares = parts.value_counts(normalize=True)
    if not known or set(shares.index) <= {UNNAMED}:
        return reference
    ref_parts = _part(reference)
    pools = {p: reference if p == UNNAMED else reference[ref_parts.eq(p)] for p in shares.index}
    size = min(len(pools[p]) / shares[p] for p in shares.index)  # the largest reference with the window's shares
    rng = np.random.default_rng(seed)
    taken = [
        pool.iloc[np.sort(rng.choice(len(pool), max(1, round(shares[p] * size)), replace=False))]
        for p, pool in pools.items()
    ]
    return pd.concat(taken, ignore_index=True)


def of_part(reference: pd.DataFrame, part: str) -> pd.DataFrame:
    return reference[_part(reference).eq(part)]


def part_groups(current: pd.DataFrame):
    """(part number, its answers) for the named parts of a window, in order."""
    parts = _part(current)
    for part in sorted(p for p in parts.unique() if p != UNNAMED):
        yield part, current[parts.eq(part)]
