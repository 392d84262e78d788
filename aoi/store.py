"""Content-addressed image store: bytes kept once, under their SHA-256, exactly as received.

Layout: ``<root>/ab/cd/abcd...`` (two fan-out levels keep folders small at millions of images). A write goes
to ``<root>/tmp/`` first and is renamed into place, so a reader never sees half a file and a crash leaves at
most a temporary file, which ``sweep_temp`` removes. Images are never re-encoded: compression is a property
the system measures, so changing it here would hide the thing under test.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ImageStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._made: set[Path] = set()  # folders known to exist: one mkdir each, not one per image

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` (idempotent) and return its SHA-256. A given digest is checked, never trusted."""
        digest = sha256_of(data)
        if sha256 is not None and sha256 != digest:
            raise ValueError(f"content hash mismatch: expected {sha256}, got {digest}")
        final = self.path_for(digest)
        if final.is_file() and final.stat().st_size == len(data):
            return digest
        tmp_dir = self.root / "tmp"
        self._mkdir(final.parent)
        self._mkdir(tmp_dir)
        tmp = tmp_dir / f"{digest[:16]}.{os.getpid()}.{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

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
        for first in self.root.iterdir():
            if len(first.name) != 2 or not first.is_dir():
                continue  # skips tmp/
            for second in first.iterdir():
                for item in second.iterdir():
                    if item.is_file():
                        yield item.name

    def sweep_temp(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files left by a crashed writer: its process is gone, or the file is old
        (a writer on another host sharing the store). Returns how many were removed."""
        tmp_dir = self.root / "tmp"
        if not tmp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for item in tmp_dir.iterdir():
            if item.is_file() and (not _writer_alive(item.name) or item.stat().st_mtime < cutoff):
                item.unlink(missing_ok=True)
                removed += 1
        return removed


def _writer_alive(name: str) -> bool:
    """Whether the process that wrote temporary file ``name`` (``<digest>.<pid>.<uuid>.part``) still runs."""
    try:
        pid = int(name.split(".")[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
