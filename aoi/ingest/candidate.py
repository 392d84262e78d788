"""What an importer hands to the ingest pipeline: one would-be image, not yet read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


class ArchiveRefused(ValueError):
    """The whole input is refused (zip bomb, unreadable manifest); ``str(err)`` is the reason."""


@dataclass
class Candidate:
    file: str  # the name as the user knows it, relative to the ingested input
    origin: str  # full location, unique across inputs: a path, or "archive!member", or "image#box"
    load: Callable[[], bytes] | None = None  # returns the bytes to store; raises BadInput/BadImage
    problem: str | None = None  # set by the importer when it already knows the file is bad
    label: str | None = None  # project label, already mapped
    machine_id: str | None = None
    part_no: str | None = None
    upstream_code: str | None = None
    captured_at: datetime | None = None
    group_key: str | None = None  # crops of one source image share it: splits never separate them
    parent_file: str | None = None
    parent_sha256: str | None = None  # filled by ``load`` for derived crops
    bbox: str | None = None
    name: str | None = None  # the stored image's own file name, when it differs from ``file`` (crops)

    @property
    def file_name(self) -> str:
        return self.name or self.file.rsplit("/", 1)[-1]


class BadInput(ValueError):
    """A file that cannot be read or is not acceptable before decoding; ``str(err)`` is the reason."""
