"""What an importer hands to the ingest pipeline: one would-be image, not yet read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

MAX_CODE_LENGTH = 64  # machine_id, part_no, upstream_code, label: short codes, as the catalog columns


def clean_text(text: str | None) -> str | None:
    """A name any database accepts: undecodable bytes (surrogates from a non-UTF-8 file system) and NUL
    become visible escapes instead of failing the catalog write."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


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
    size: int = 0  # bytes ``load`` returns at most, known before reading (file size, zip entry, crop bound): chunking

    def __post_init__(self) -> None:
        for name in ("file", "origin", "name", "group_key", "parent_file"):
            setattr(self, name, clean_text(getattr(self, name)))

    def metadata_problem(self) -> str | None:
        """Why the machine/part/upstream codes cannot be catalogued, or None."""
        for name in ("machine_id", "part_no", "upstream_code"):
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) > MAX_CODE_LENGTH:
                return f"{name} is {len(value)} characters long, over the limit of {MAX_CODE_LENGTH}"
            if clean_text(value) != value:
                return f"{name} {value!r} holds characters that are not text (NUL or undecodable bytes)"
        return None

    @property
    def file_name(self) -> str:
        return self.name or self.file.rsplit("/", 1)[-1]


class BadInput(ValueError):
    """A file that cannot be read or is not acceptable before decoding; ``str(err)`` is the reason."""
