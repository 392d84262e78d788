"""``csv``: a manifest ``path,label,machine_id,part_no,captured_at,upstream_code`` (only ``path`` required).

Paths are relative to the manifest's folder and must stay inside it: an absolute path, a ``..`` that climbs out
of the folder, or a symbolic link anywhere on the way (the manifest itself included) is refused by rule, and
the file is never opened. A row with a bad label or time is quarantined with its reason; a manifest without
a ``path`` column is refused whole.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from ingest.candidate import ArchiveRefused, BadInput, Candidate
from ingest.importers.base import Discovery, ImportContext, map_label
from ingest.readers import FolderContainer, inside, link_on_the_way, read_file, refuse_linked_input

COLUMNS = ("path", "label", "machine_id", "part_no", "captured_at", "upstream_code")


def parse_time(text: str) -> datetime:
    """ISO 8601, returned in UTC; a time without an offset is taken as UTC. ValueError when unusable."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent
        raise ValueError(f"{text!r} is out of range") from None


def _size(path: Path, max_bytes: int) -> int:
    """The file's size for chunking (a larger file than the limit is refused unread; a missing one reads nothing)."""
    try:
        return min(os.lstat(path).st_size, max_bytes)
    except (OSError, ValueError):
        return 0


def discover(path: Path, ctx: ImportContext) -> Discovery:
    manifest = Path(path)
    refuse_linked_input(manifest)
    try:
        text = read_file(manifest, ctx.limits.max_file_bytes).decode("utf-8-sig")
    except (BadInput, UnicodeDecodeError) as err:
        raise ArchiveRefused(f"manifest {manifest.name} unreadable: {err}") from None
    reader = csv.DictReader(io.StringIO(text))
    if "path" not in (reader.fieldnames or []):
        raise ArchiveRefused(f"manifest {manifest.name} has no 'path' column (expected {','.join(COLUMNS)})")
    found = Discovery(candidates=[])
    try:
        rows = list(reader)
    except csv.Error as err:
        raise ArchiveRefused(f"manifest {manifest.name} is not valid CSV: {err}") from None
    # Reads inside the manifest's folder only, never through a link (the folder is where the manifest lies, as a
    # folder input's own parent: not itself checked).
    folder = FolderContainer(manifest.parent, ctx.limits, input_root=False)
    for line, row in enumerate(rows, start=2):
        rel = (row.get("path") or "").strip()
        file = rel or f"{manifest.name}:{line}"
        try:
            name = inside(rel) if rel else None
            problem = link_on_the_way(folder.root, name) if name else None
        except BadInput as err:  # Refused (absolute, climbs out) or a path that names no file ('.', '/')
            name, problem = None, str(err)
        candidate = Candidate(
            file=file,
            # A refused path is not a location this batch read: the origin is the manifest's line.
            origin=str((manifest.parent / name).absolute())
            if name and not problem
            else f"{manifest.absolute()}:{line}",
            machine_id=(row.get("machine_id") or "").strip() or None,
            part_no=(row.get("part_no") or "").strip() or None,
            upstream_code=(row.get("upstream_code") or "").strip().upper() or None,
        )
        found.candidates.append(candidate)
        if not rel:
            candidate.problem = f"manifest line {line} has an empty path"
            continue
        if problem:
            candidate.problem = f"manifest line {line}: {problem}"
            continue
        if (row.get("label") or "").strip():
            candidate.label, candidate.problem = map_label(row["label"], ctx.labels)
        if (row.get("captured_at") or "").strip() and candidate.problem is None:
            try:
                candidate.captured_at = parse_time(row["captured_at"])
            except ValueError:
                candidate.problem = f"captured_at {row['captured_at']!r} is not an ISO 8601 time"
        if candidate.problem is None:
            candidate.size = _size(folder.root / name, ctx.limits.max_file_bytes)
            candidate.load = partial(folder.read, name)  # checks again at read time: no link swapped in since
    return found
