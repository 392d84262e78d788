"""``folder``: one sub-folder per class (``Spur/01_spur_01_roi_00.jpg``); files at the top are unlabelled.

Also reads the same layout inside a zip archive. The PKU colour crops lie this way as published.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ingest.candidate import Candidate
from ingest.importers.base import Discovery, ImportContext, group_of, is_image_name, map_label
from ingest.readers import open_container


def discover(path: Path, ctx: ImportContext) -> Discovery:
    container = open_container(path, ctx.limits)
    found = Discovery(candidates=[], containers=[container])
    for member in container.members():
        if member.problem is None and not is_image_name(member.name):
            found.skipped.append(member.name)
            continue
        parts = member.name.split("/")
        candidate = Candidate(
            file=member.name,
            origin=container.origin(member.name),
            problem=member.problem,
            group_key=group_of(member.name, ctx.limits.group_pattern),
            size=min(member.size, ctx.limits.max_file_bytes),  # a larger one is refused unread
        )
        if member.problem is None:
            candidate.load = partial(container.read, member.name)
            if len(parts) > 1:
                candidate.label, candidate.problem = map_label(parts[0], ctx.labels)
        found.candidates.append(candidate)
    return found
