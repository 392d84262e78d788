"""``deeppcb``: the DeepPCB layout (``PCBData/groupG/G/NNN_test.jpg``, ``..._temp.jpg``,
``groupG/G_not/NNN.txt`` with one ``x1 y1 x2 y2 type`` box per line).

For every usable box: a window cut from the tested image, labelled by defect type, and the same window cut
from the defect-free template, labelled PASS. Both share the group key of their image pair, so dataset
splits never separate them. Works on the folder or on the published zip archive.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path, PurePosixPath

from aoi.labels import UnknownLabel
from ingest.candidate import ArchiveRefused, BadInput, Candidate
from ingest.crops import Box, SourceImages, crop_bytes_bound
from ingest.importers.base import Discovery, ImportContext
from ingest.readers import Container, open_container

_ANNOTATION = re.compile(r"(?:^|.*/)group(?P<group>\d+)/(?P=group)_not/(?P<pair>\d+)\.txt$")


def parse_boxes(text: str) -> list[tuple[Box, int] | str]:
    """Each line as ((x1, y1, x2, y2), type), or the reason the line is unusable. Space or comma separated."""
    rows: list[tuple[Box, int] | str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = re.split(r"[,\s]+", line.strip())
        try:
            x1, y1, x2, y2, kind = (int(float(f)) for f in fields[:5])
            if len(fields) != 5:
                raise ValueError
        except (ValueError, OverflowError):
            rows.append(f"line {number} is not 'x1 y1 x2 y2 type': {line.strip()[:80]!r}")
            continue
        rows.append(((x1, y1, x2, y2), kind))
    return rows


def discover(path: Path, ctx: ImportContext) -> Discovery:
    container = open_container(path, ctx.limits)
    annotations = [m.name for m in container.members() if m.problem is None and _ANNOTATION.match(m.name)]
    if not annotations:
        container.close()
        raise ArchiveRefused(f"no DeepPCB annotations (groupG/G_not/NNN.txt) found under {Path(path).name}")
    found = Discovery(candidates=[], containers=[container], default_source="gray")
    # Links and escaping members are quarantined by name (never read), as the other importers do.
    found.candidates += [
        Candidate(file=m.name, origin=container.origin(m.name), problem=m.problem)
        for m in container.members()
        if m.problem
    ]
    sources = SourceImages(container.read, ctx.limits, expect_gray=True)
    for name in annotations:
        found.candidates += _pair_candidates(container, sources, name, ctx)
    return found


def _pair_candidates(container: Container, sources: SourceImages, ann: str, ctx: ImportContext) -> list[Candidate]:
    match = _ANNOTATION.match(ann)
    assert match is not None
    folder = PurePosixPath(ann).parent.parent / match["group"]
    pair = match["pair"]
    tested, template = f"{folder}/{pair}_test.jpg", f"{folder}/{pair}_temp.jpg"
    try:
        rows = parse_boxes(container.read(ann).decode("utf-8", errors="replace"))
    except BadInput as err:
        return [Candidate(file=ann, origin=container.origin(ann), problem=f"annotation unreadable: {err}")]
    out: list[Candidate] = []
    size, margin = ctx.limits.crop_size, ctx.limits.crop_margin
    for index, row in enumerate(rows):
        for parent, is_template in ((tested, False), (template, True)):
            crop_name = f"{parent}#box{index}"
            candidate = Candidate(
                file=crop_name,
                origin=container.origin(parent) + f"#box{index}",
                group_key=f"deeppcb:{pair}",
                parent_file=parent,
                name=f"{PurePosixPath(parent).stem}_box{index}.png",
            )
            out.append(candidate)
            if isinstance(row, str):
                candidate.problem = f"annotation {ann}: {row}"
                continue
            box, kind = row
            candidate.bbox = ",".join(map(str, box))
            candidate.size = crop_bytes_bound(box, size, margin)
            try:
                candidate.label = "PASS" if is_template else ctx.labels.deeppcb(kind)
            except UnknownLabel as err:
                candidate.problem = str(err)
                continue
            candidate.load = partial(sources.cut, candidate, parent, box, size, margin)
    return out
