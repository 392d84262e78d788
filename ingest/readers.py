"""Safe readers for the two containers importers walk: a folder and a zip archive.

A zip is never extracted: members are read into memory with size caps, so nothing is ever written
outside AOI_HOME, and a member whose path escapes the archive (``../x``, ``/etc/x``) is reported, not read.
A zip bomb (too many members, too large uncompressed, too high a compression ratio) refuses the whole archive.

Nothing outside the input is ever read: a name that is absolute or climbs above the input with ``..`` is
refused, and symbolic links are refused everywhere (the input itself, a file, a folder on the way to a file,
a zip member stored as a link), whether they point outside the input or inside it: one rule, no resolving.
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aoi.settings import IngestSettings
from ingest.candidate import ArchiveRefused, BadInput


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


LINK_REFUSED = "is a symbolic link; links are never followed in an input (not read)"


class Missing(BadInput):
    """The named file is not in the input (as opposed to being there and refused)."""


class Refused(BadInput):
    """The name leaves the input or passes through a symbolic link: refused by rule, nothing read."""


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, or ``BadInput`` with a reason (missing, a link, not a file, too big, unreadable).

    A symbolic link is refused, not followed (``O_NOFOLLOW`` too, so a link swapped in after the check is not read).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise Missing("unreadable: file not found (removed while ingesting?)") from None
    except (OSError, ValueError) as err:
        raise BadInput(f"unreadable: {getattr(err, 'strerror', None) or err}") from None
    if stat.S_ISLNK(info.st_mode):
        raise Refused(f"{path.name} {LINK_REFUSED}")
    if not stat.S_ISREG(info.st_mode):
        raise BadInput("not a regular file (a device, pipe or folder)")
    if info.st_size > max_bytes:
        raise BadInput(f"file is {_mb(info.st_size)}, over the limit of {_mb(max_bytes)}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise BadInput("unreadable: permission denied") from None
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW met a link that replaced the file after the check
            raise Refused(f"{path.name} {LINK_REFUSED}") from None
        raise BadInput(f"unreadable: {err.strerror or err}") from None
    if len(data) > max_bytes:
        raise BadInput(f"file grew over the limit of {_mb(max_bytes)} while being read")
    return data


@dataclass(frozen=True)
class Member:
    name: str  # POSIX path inside the container
    problem: str | None = None  # why it cannot be read, when known before reading
    size: int = 0  # bytes, as the folder or the archive's directory says (for chunking)


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


def inside(ref: str, start: str = "") -> str:
    """``ref``, relative to the folder ``start`` of an input, as a normalised name inside the input.

    ``BadInput`` (naming the rule) when ``ref`` is absolute (``/x``, ``C:\\x``, ``\\\\host\\x``) or its ``..``
    climb above the input's root; a ``..`` that stays inside (``../images/a.png`` beside ``ann/``) is fine.
    """
    text = ref.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise Refused(f"path {ref} is absolute: only paths inside the input are read (not read)")
    parts = [p for p in PurePosixPath(start).parts if p not in (".", "/")]
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise Refused(f"path {ref} leaves the input's folder through '..' (not read)")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise BadInput(f"path {ref!r} names no file")
    return "/".join(parts)


def link_on_the_way(root: Path, name: str) -> str | None:
    """Why ``root/name`` must not be read when a folder or the file on the way is a symbolic link, else None."""
    current = Path(root)
    for part in name.split("/"):
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return f"{current.relative_to(root).as_posix()} {LINK_REFUSED}"
        except (OSError, ValueError):
            return None  # missing or unreadable: the read says so
    return None


def refuse_linked_input(path: Path) -> None:
    """The input an importer was given (folder, archive, manifest) must not itself be a link."""
    if Path(path).is_symlink():
        raise ArchiveRefused(f"input {Path(path).name} {LINK_REFUSED}")


class FolderContainer(Container):
    def __init__(self, root: Path, limits: IngestSettings, input_root: bool = True) -> None:
        if input_root:
            refuse_linked_input(root)
        self.root = Path(root)
        self.limits = limits
        self.label = str(self.root)

    def members(self) -> Iterator[Member]:
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            base = Path(dirpath)
            links = sorted(d for d in dirnames if not d.startswith(".") and (base / d).is_symlink())
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in links)
            entries = [(n, False) for n in filenames if not n.startswith(".")] + [(d, True) for d in links]
            for name, _ in sorted(entries):
                rel = (base / name).relative_to(self.root).as_posix()
                try:
                    info = os.lstat(base / name)
                except OSError:
                    yield Member(rel)  # gone or unreadable: the read says why
                    continue
                if stat.S_ISLNK(info.st_mode):
                    yield Member(rel, f"{rel} {LINK_REFUSED}")
                else:
                    yield Member(rel, size=info.st_size)

    def read(self, name: str) -> bytes:
        normal = inside(name)  # refuses absolute names and '..' that climbs out (also written with backslashes)
        # A name as the folder lists it is read as is: on POSIX a backslash is part of a file's name.
        if not name.startswith("/") and all(part not in ("", ".", "..") for part in name.split("/")):
            normal = name
        name = normal
        problem = link_on_the_way(self.root, name)
        if problem:
            raise Refused(problem)
        return read_file(self.root / name, self.limits.max_file_bytes)

    def origin(self, name: str) -> str:
        return str(self.root / name)


def _escapes(name: str) -> bool:
    """A zip member name that is absolute or holds any ``..`` (archivers never write one)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


class ZipContainer(Container):
    def __init__(self, path: Path, limits: IngestSettings) -> None:
        refuse_linked_input(path)
        self.path = Path(path)
        self.limits = limits
        self.label = str(self.path)
        try:
            # Opened without following a link, so a link swapped in after the check above is not read either.
            fh = os.fdopen(os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")
        except FileNotFoundError:
            raise ArchiveRefused(f"archive not found: {self.path.name}") from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ArchiveRefused(f"input {self.path.name} {LINK_REFUSED}") from None
            raise ArchiveRefused(f"archive unreadable: {err.strerror or err}") from None
        try:
            archive_size = os.fstat(fh.fileno()).st_size
            self._file = fh  # ZipFile does not close a file object it was given
            self.zip = zipfile.ZipFile(fh)
        except Exception as err:  # BadZipFile, undecodable member names, I/O errors: the archive is unusable
            fh.close()
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
                f"zip bomb: compression ratio {max(ratio, worst):,.0f}:1, over the limit of "
                f"{limits.zip_max_ratio:,.0f}:1"
            )

    def _links(self) -> set[str]:
        if not hasattr(self, "_link_names"):
            self._link_names = {i.filename.rstrip("/") for i in self.zip.infolist() if _is_link(i)}
        return self._link_names

    def _problem(self, info: zipfile.ZipInfo) -> str | None:
        name = info.filename
        if _escapes(name):
            return f"zip member path escapes the archive ({name}); not extracted"
        if _is_link(info):
            return f"zip member {name} {LINK_REFUSED}"
        parents = PurePosixPath(name).parents
        if any(str(parent) in self._links() for parent in parents):
            return f"zip member {name} lies under a member that {LINK_REFUSED}"
        if info.flag_bits & 0x1:
            return "zip member is encrypted"
        return None

    def members(self) -> Iterator[Member]:
        for info in sorted(self.zip.infolist(), key=lambda i: i.filename):
            if info.is_dir() and not _is_link(info):
                continue
            problem = self._problem(info)
            if problem is None and any(
                part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(info.filename).parts
            ):
                continue  # resource forks and hidden files that archivers add
            yield Member(info.filename, problem, size=info.file_size)

    def read(self, name: str) -> bytes:
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise Missing(f"{name} is not in the archive") from None
        problem = self._problem(info)
        if problem:
            raise Refused(problem)
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
        self._file.close()


def _is_link(info: zipfile.ZipInfo) -> bool:
    """The Unix mode in a member's external attributes says symbolic link (what ``zip --symlinks`` stores)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def open_container(path: Path, limits: IngestSettings) -> Container:
    path = Path(path)
    refuse_linked_input(path)
    if path.is_dir():
        return FolderContainer(path, limits)
    if zipfile.is_zipfile(path):
        return ZipContainer(path, limits)
    if not path.exists():
        raise ArchiveRefused(f"input not found: {path}")
    raise ArchiveRefused(f"{path.name} is neither a folder nor a zip archive")
