"""Safe readers for the two containers importers walk: a folder and a zip archive.

A zip is never extracted: members are read into memory with size caps, so nothing is ever written
outside AOI_HOME, and a member whose path escapes the archive (``../x``, ``/etc/x``) is reported, not read.
A zip bomb (too many members, too large uncompressed, too high a compression ratio) refuses the whole archive.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aoi.ingest.candidate import ArchiveRefused, BadInput
from aoi.settings import IngestSettings


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, or ``BadInput`` with a reason (missing, not a file, too big, unreadable)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BadInput("unreadable: file not found (a dangling link or removed while ingesting)") from None
    except OSError as err:
        raise BadInput(f"unreadable: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput("not a regular file (a device, pipe or folder)")
    if info.st_size > max_bytes:
        raise BadInput(f"file is {_mb(info.st_size)}, over the limit of {_mb(max_bytes)}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise BadInput("unreadable: permission denied") from None
    except OSError as err:
        raise BadInput(f"unreadable: {err.strerror or err}") from None
    if len(data) > max_bytes:
        raise BadInput(f"file grew over the limit of {_mb(max_bytes)} while being read")
    return data


@dataclass(frozen=True)
class Member:
    name: str  # POSIX path inside the container
    problem: str | None = None  # why it cannot be read, when known before reading


class Container:
    """A folder or a zip archive, walked the same way by the importers."""

    label: str  # how the container appears in origins

    def members(self) -> Iterator[Member]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def origin(self, name: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FolderContainer(Container):
    def __init__(self, root: Path, limits: IngestSettings) -> None:
        self.root = Path(root)
        self.limits = limits
        self.label = str(self.root)

    def members(self) -> Iterator[Member]:
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                rel = (Path(dirpath) / name).relative_to(self.root).as_posix()
                yield Member(rel)

    def read(self, name: str) -> bytes:
        if _escapes(name):
            raise BadInput(f"path {name} leaves the input folder; not read")
        return read_file(self.root / name, self.limits.max_file_bytes)

    def origin(self, name: str) -> str:
        return str(self.root / name)


def _escapes(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


class ZipContainer(Container):
    def __init__(self, path: Path, limits: IngestSettings) -> None:
        self.path = Path(path)
        self.limits = limits
        self.label = str(self.path)
        try:
            archive_size = self.path.stat().st_size
            self.zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise ArchiveRefused(f"archive not found: {self.path.name}") from None
        except Exception as err:  # BadZipFile, undecodable member names, I/O errors: the archive is unusable
            raise ArchiveRefused(f"not a readable zip archive: {type(err).__name__}: {err}") from None
        self._check_bomb(archive_size)

    def _check_bomb(self, archive_size: int) -> None:
        infos = self.zip.infolist()
        limits = self.limits
        if len(infos) > limits.zip_max_members:
            self.close()
            raise ArchiveRefused(f"zip bomb: {len(infos):,} members, over the limit of {limits.zip_max_members:,}")
        total = sum(i.file_size for i in infos)
        if total > limits.zip_max_total_bytes:
            self.close()
            raise ArchiveRefused(
                f"zip bomb: {_mb(total)} uncompressed, over the limit of {_mb(limits.zip_max_total_bytes)}"
            )
        ratio = total / max(archive_size, 1)
        worst = max((i.file_size / max(i.compress_size, 1) for i in infos), default=0.0)
        if max(ratio, worst) > limits.zip_max_ratio:
            self.close()
            raise ArchiveRefused(
                f"zip bomb: compression ratio {max(ratio, worst):,.0f}:1, over the limit of {limits.zip_max_ratio:,.0f}:1"
            )

    def members(self) -> Iterator[Member]:
        for info in sorted(self.zip.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            name = info.filename
            if _escapes(name):
                yield Member(name, f"zip member path escapes the archive ({name}); not extracted")
            elif stat.S_ISLNK(info.external_attr >> 16):
                yield Member(name, "zip member is a symbolic link; not followed")
            elif info.flag_bits & 0x1:
                yield Member(name, "zip member is encrypted")
            elif any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts):
                continue  # resource forks and hidden files that archivers add
            else:
                yield Member(name)

    def read(self, name: str) -> bytes:
        info = self.zip.getinfo(name)
        if info.file_size > self.limits.max_file_bytes:
            raise BadInput(f"zip member is {_mb(info.file_size)}, over the limit of {_mb(self.limits.max_file_bytes)}")
        try:
            with self.zip.open(info) as fh:
                data = fh.read(self.limits.max_file_bytes + 1)
        except Exception as err:  # bad CRC, corrupt deflate stream (zlib.error), unsupported compression ...
            raise BadInput(f"unreadable zip member: {type(err).__name__}: {err}") from None
        if len(data) > self.limits.max_file_bytes:
            raise BadInput(f"zip member over the limit of {_mb(self.limits.max_file_bytes)}")
        return data

    def origin(self, name: str) -> str:
        return f"{self.path}!{name}"

    def close(self) -> None:
        self.zip.close()


def open_container(path: Path, limits: IngestSettings) -> Container:
    path = Path(path)
    if path.is_dir():
        return FolderContainer(path, limits)
    if zipfile.is_zipfile(path):
        return ZipContainer(path, limits)
    if not path.exists():
        raise ArchiveRefused(f"input not found: {path}")
    raise ArchiveRefused(f"{path.name} is neither a folder nor a zip archive")
