"""Content-addressed image store: bytes kept once, under their SHA-256, exactly as received.

Layout: ``<root>/ab/abcd...`` (one fan-out level, as git's object store: 256 folders keep each small at
millions of images). A write goes to ``<root>/tmp/`` first and is renamed into place, so a reader never sees
half a file and a crash leaves at most a temporary file, which ``sweep_temp`` removes. Images are never
re-encoded: compression is a property the system measures, so changing it here would hide the thing under test.

Durability: ``put_many`` writes a whole chunk, flushes it to disk once (``syncfs`` on Linux, one call for the
chunk instead of an fsync per file), renames everything into place, and flushes again, so the catalog rows
committed after it always point at durable files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=1)
def _syncfs():
    """libc's syncfs(fd), or None where there is none (not Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


class ImageStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._made: set[Path] = set()  # folders known to exist: one mkdir each, not one per image

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` (idempotent) and return its SHA-256. A given digest is checked, never trusted."""
        return self.put_many([(data, sha256)])[0]

    def put_many(self, items: Iterable[tuple[bytes, str | None]]) -> list[str]:
        """Store every ``(data, expected digest or None)``; returns the digests, in order."""
        digests, pending = [], []
        try:
            for data, expected in items:
                digest = sha256_of(data)
                if expected is not None and expected != digest:
                    raise ValueError(f"content hash mismatch: expected {expected}, got {digest}")
                digests.append(digest)
                final = self.path_for(digest)
                if final.is_file() and final.stat().st_size == len(data):
                    continue
                pending.append((self._write_temp(digest, data), final))
            self._flush([tmp for tmp, _ in pending])
            for tmp, final in pending:
                self._mkdir(final.parent)
                os.replace(tmp, final)
            self._flush([final for _, final in pending])
        finally:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
        return digests

    def _write_temp(self, digest: str, data: bytes) -> Path:
        tmp_dir = self.root / "tmp"
        self._mkdir(tmp_dir)
        # Host and pid in the name let sweep_temp tell a crashed writer's leftovers from live ones.
        tmp = tmp_dir / f"{digest[:16]}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex}.part"
        with open(tmp, "wb") as fh:
            fh.write(data)
        return tmp

    def _flush(self, paths: list[Path]) -> None:
        if not self.fsync or not paths:
            return
        syncfs = _syncfs()
        if syncfs is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        for path in paths:  # no syncfs: one fsync per file
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _mkdir(self, folder: Path) -> None:
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        """Every digest held, in no particular order."""
        if not self.root.is_dir():
            return
        for fan in self.root.iterdir():
            if len(fan.name) != 2 or not fan.is_dir():
                continue  # skips tmp/
            for item in fan.iterdir():
                if item.is_file():
                    yield item.name

    def sweep_temp(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files left by a crashed writer: written on this host by a process that is
        gone, or older than ``older_than_s`` (a writer on another host sharing the store). Returns the count."""
        cutoff = time.time() - older_than_s
        removed = 0
        for item in self._temp_files():
            if _writer_gone(item.name) or item.stat().st_mtime < cutoff:
                item.unlink(missing_ok=True)
                removed += 1
        return removed

    def temp_count(self) -> int:
        return sum(1 for _ in self._temp_files())

    def _temp_files(self) -> Iterator[Path]:
        tmp_dir = self.root / "tmp"
        if tmp_dir.is_dir():
            yield from (item for item in tmp_dir.iterdir() if item.is_file())


_HOST = socket.gethostname().replace(".", "-")


def _writer_gone(name: str) -> bool:
    """True when temporary file ``name`` (``<digest>.<host>.<pid>.<uuid>.part``) was written on this host by a
    process that no longer runs. A file from another host is never judged here: only its age can tell."""
    parts = name.split(".")
    if len(parts) != 5 or parts[1] != _HOST:
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False
