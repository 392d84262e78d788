"""The prediction log: every answer becomes a ``prediction`` row, durably, and is written to the catalog off the
request path.

1. ``put`` appends the row to a local journal (``AOI_HOME/serving/journal/``) with one ``write`` before the answer
   is returned: from then on a crash or ``kill -9`` of the service loses nothing. Whether it has also reached the
   disk (power loss, kernel crash) is ``AOI_SERVING__LOG_FSYNC``: ``always`` (an fsync per answer), ``interval``
   (the writer fsyncs every ``log_flush_s``), ``never`` (the operating system decides).
2. One writer thread reads the journal and inserts up to ``log_batch_rows`` rows per transaction, skipping the
   request_ids the catalog already has, so a replay writes nothing twice. A catalog that does not answer keeps the
   rows in the journal, retried with backoff. A row the catalog refuses while it answers (a NUL byte on PostgreSQL,
   a constraint) is found by halving the batch and goes to ``AOI_HOME/serving/dead-letter.jsonl`` with the error:
   it never blocks the rows behind it.
3. A journal segment whose rows are all settled is deleted. Each process journals into a folder of its own, held by
   a file lock; on start, the folders of processes that are gone (their lock is free) are adopted and written first.

Bounded: the writer holds one batch in memory; the journal holds at most ``log_max_pending`` unwritten answers,
beyond which ``put`` raises ``NotLogged`` and the service answers 503 (nothing acknowledged is ever dropped).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import text

from aoi.catalog import db
from aoi.catalog.models import Prediction, table_of
from aoi.settings import Settings

log = logging.getLogger("aoi.serving")

SEGMENT_BYTES = 8 * 2**20  # the append side starts a new segment past this; the writer deletes settled ones
_ID_CHUNK = 500  # request_ids per existence query (SQLite's bound-parameter limit is far above)


class NotLogged(RuntimeError):
    """The answer could not be journaled, so it must not be given (the service answers 503)."""


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar: its number, not its text
        return value.item()
    return str(value)


@dataclass
class _Batch:
    rows: list[dict]
    lines: int  # journal lines it consumed (rows, plus torn or unreadable lines already dead-lettered)
    held: list[dict] = field(default_factory=list)


class PredictionLog:
    def __init__(self, settings: Settings) -> None:
        serving = settings.serving
        self._url = settings.catalog_url
        self._batch_rows = serving.log_batch_rows
        self._flush_s = serving.log_flush_s
        self.fsync = serving.log_fsync
        self.max_pending = serving.log_max_pending
        self.journal_dir = settings.home / "serving" / "journal"
        self.dead_letter_path = settings.home / "serving" / "dead-letter.jsonl"
        self._own: Path | None = None
        self._lock_fd: int | None = None
        self._lock = threading.Lock()  # the append side: one line per write, segment rotation
        self._fd: int | None = None  # the segment being appended to
        self._current: Path | None = None
        self._size = 0
        self._seq = 0
        self._unsynced = False
        self._dir_unsynced = False
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aoi-prediction-log", daemon=True)
        self._reading: tuple[Path, BinaryIO] | None = None  # (segment, binary file) the writer reads
        self._appended = 0
        self._consumed = 0
        self.replayed = 0  # journal lines found from earlier processes at start
        self.written = 0
        self.duplicates = 0  # rows the catalog already had (a replay after a crash between commit and delete)
        self.dead_lettered = 0
        self.dead_letter_total = 0
        self.failed_writes = 0
        self.last_error: str | None = None

    # --- the request side ---------------------------------------------------------------------------------------

    def start(self) -> PredictionLog:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._own = self._claim_folder()
        self.replayed = self._adopt_orphans()
        if self.dead_letter_path.exists():
            with self.dead_letter_path.open("rb") as fh:
                self.dead_letter_total = sum(1 for _ in fh)
        if self.replayed:
            log.warning(
                "prediction log: %d answers from an earlier run are in the journal; writing them first", self.replayed
            )
        self._thread.start()
        return self

    @property
    def blocking(self) -> bool:
        """``put`` waits for the disk (fsync per answer): call it off the event loop."""
        return self.fsync == "always"

    def put(self, row: dict) -> None:
        """Journal one answer; when this returns, the answer survives a crash of the process."""
        line = (json.dumps(row, default=_json_default) + "\n").encode()
        with self._lock:
            if self._closed or self._own is None:
                raise NotLogged("the prediction log is not running")
            if self.pending >= self.max_pending:
                raise NotLogged(
                    f"the prediction log holds {self.pending:,} answers the catalog has not taken "
                    f"(AOI_SERVING__LOG_MAX_PENDING); is the catalog reachable?"
                )
            try:
                if self._fd is None or self._size >= SEGMENT_BYTES:
                    self._new_segment()
                self._append(line)
            except OSError as err:
                raise NotLogged(f"the prediction log's journal cannot be written: {err}") from err
            self._appended += 1
        self._wake.set()

    @property
    def pending(self) -> int:
        """Answers journaled and not yet settled in the catalog (written, already there or dead-lettered)."""
        return self.replayed + self._appended - self._consumed

    def describe(self) -> dict:
        return {
            "written": self.written,
            "pending": self.pending,
            "replayed": self.replayed,
            "duplicates_skipped": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "dead_letter_total": self.dead_letter_total,
            "failed_writes": self.failed_writes,
            "last_error": self.last_error,
            "fsync": self.fsync,
            "max_pending": self.max_pending,
        }

    def close(self, timeout_s: float = 30.0) -> int:
        """Write what the catalog takes within ``timeout_s``; returns the answers left in the journal (written by
        the next start)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        with self._lock:
            self._closed = True
            if self._fd is not None:
                if self.fsync != "never":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
        left = self.pending
        if self._own is not None and not self._thread.is_alive():
            if not any(self._own.glob("*.jsonl")):
                (self._own / "lock").unlink(missing_ok=True)
                self._own.rmdir()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # frees the folder for the next start to adopt
                self._lock_fd = None
        if left:
            log.error(
                "prediction log: %d answers could not reach the catalog; they stay in %s and are written "
                "by the next start",
                left,
                self.journal_dir,
            )
        return left

    def _new_segment(self) -> None:
        if self._fd is not None:
            if self.fsync != "never":
                os.fsync(self._fd)  # the segment is complete: on disk before the writer may need it after a crash
            os.close(self._fd)
        self._seq += 1
        self._current = self._own / f"{time.time_ns():020d}-{self._seq:06d}.jsonl"
        self._fd = os.open(self._current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = 0
        if self.fsync == "always":
            _fsync_dir(self._own)
        else:
            self._dir_unsynced = True

    def _append(self, line: bytes) -> None:
        done = 0
        try:
            while done < len(line):
                done += os.write(self._fd, line[done:])
            if self.fsync == "always":
                os.fsync(self._fd)
        except OSError:
            if done:  # a disk full half-way: no torn line may stay for the next answer to be glued to
                os.ftruncate(self._fd, self._size)
            raise
        self._size += done
        self._unsynced = True

    # --- the journal folders -----------------------------------------------------------------------------------

    def _claim_folder(self) -> Path:
        """A folder only this process appends to, locked for as long as the process lives."""
        temp = self.journal_dir / f".new-{uuid.uuid4().hex}"
        temp.mkdir()
        fd = os.open(temp / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        own = self.journal_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        temp.rename(own)  # locked before it is visible: no other process can take it for an orphan
        self._lock_fd = fd
        return own

    def _adopt_orphans(self) -> int:
        """Move the segments of processes that are gone into this process's folder; returns their line count."""
        lines = 0
        for folder in sorted(p for p in self.journal_dir.iterdir() if p.is_dir() and p != self._own):
            lock = folder / "lock"
            if folder.name.startswith(".new-"):  # a start in progress, or one that died before its first answer
                if time.time() - folder.stat().st_mtime > 60:
                    _remove_folder(folder)
                continue
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)  # no lock file: no live owner either
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live service's folder
                for segment in sorted(folder.glob("*.jsonl")):
                    lines += _count_lines(segment)
                    segment.rename(self._own / segment.name)
                _remove_folder(folder)
            finally:
                os.close(fd)
        # Rows a version before the journal kept when its catalog was unreachable at shutdown.
        for spilled in sorted((self.journal_dir.parent).glob("unlogged-*.jsonl")):
            lines += _count_lines(spilled)
            spilled.rename(self._own / f"{0:020d}-{spilled.name}")
        _fsync_dir(self._own)
        return lines

    # --- the writer thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                self._loop()
                return
            except Exception as err:  # never let the writer die: the journal keeps everything, start over from it
                self.last_error = f"{type(err).__name__}: {err}"[:500]
                log.exception("prediction log writer failed; restarting it from the journal")
                if self._reading is not None:
                    self._reading[1].close()
                    self._reading = None
                with self._lock:  # the journal is read again from its start: count what it holds
                    held = sum(_count_lines(segment) for segment in self._own.glob("*.jsonl"))
                    self._consumed = self.replayed + self._appended - held
                if self._stop.wait(self._flush_s):
                    return

    def _loop(self) -> None:
        batch: _Batch | None = None
        backoff = self._flush_s
        next_sync = time.monotonic() + self._flush_s
        while True:
            stopping = self._stop.is_set()
            if self.fsync == "interval" and time.monotonic() >= next_sync:
                self._sync_current()
                next_sync = time.monotonic() + self._flush_s
            if batch is None:
                self._wake.clear()  # before reading: an answer journaled from here on wakes the wait below
                batch = self._next_batch()
                if batch is None:
                    if stopping:
                        return
                    if not self._stop.is_set():  # set since: one more pass drains what came meanwhile
                        self._wake.wait(self._flush_s)
                    continue
                batch.held = list(batch.rows)
            batch.held = self._settle(batch.held)
            if not batch.held:
                self._consumed += batch.lines
                batch, backoff = None, self._flush_s
            elif stopping:
                return  # the rest stays in the journal for the next start
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _sync_current(self) -> None:
        with self._lock:
            if self._fd is None or not self._unsynced:
                return
            fd, self._unsynced = os.dup(self._fd), False
            new_segment, self._dir_unsynced = self._dir_unsynced, False
        try:
            os.fsync(fd)  # outside the lock: answers keep being journaled meanwhile
            if new_segment:
                _fsync_dir(self._own)
        finally:
            os.close(fd)

    def _next_batch(self) -> _Batch | None:
        """The next rows of the journal, oldest segment first; deletes the segments that are done."""
        while True:
            if self._reading is None:
                segments = sorted(self._own.glob("*.jsonl"))
                if not segments:
                    return None
                self._reading = (segments[0], segments[0].open("rb"))
            path, fh = self._reading
            rows, lines = [], 0
            while len(rows) < self._batch_rows:
                start = fh.tell()
                line = fh.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    with self._lock:
                        appending = path == self._current and self._fd is not None
                    if appending:  # being written right now: read it next time
                        fh.seek(start)
                        break
                    # Torn by a power loss: its write never completed, so its answer was never given (and the
                    # line has no newline, so it was not counted as pending either).
                    self._dead_letter({"line": line.decode(errors="replace")}, "torn line at the journal's end")
                    continue
                lines += 1
                try:
                    rows.append(_parse(line))
                except ValueError as err:
                    self._dead_letter({"line": line.decode(errors="replace")}, f"unreadable journal line: {err}")
            if rows or lines:
                return _Batch(rows, lines)
            if self._retire(path):
                fh.close()
                self._reading = None
                continue
            return None

    def _retire(self, path: Path) -> bool:
        """Delete a segment read to its end, unless answers may still be appended to it."""
        reader = self._reading[1]
        with self._lock:  # no answer is appended meanwhile: the size read here is final for this decision
            if reader.tell() != os.fstat(reader.fileno()).st_size:
                return False  # appended to since it was read (possibly just before the append side moved on)
            if path == self._current:
                if self._fd is not None:
                    os.close(self._fd)  # drained: the next answer starts a new segment
                self._fd, self._current, self._unsynced = None, None, False
            path.unlink(missing_ok=True)
        return True

    def _settle(self, rows: list[dict]) -> list[dict]:
        """Write ``rows``; returns those still to write (the catalog does not answer). A refused row is
        dead-lettered: the batch is halved until the row that fails alone is found."""
        if not rows:
            return []
        try:
            self._insert(rows)
            return []
        except Exception as err:
            error = err
        self.failed_writes += 1
        self.last_error = f"{type(error).__name__}: {error}"[:500]
        if not self._catalog_answers():
            log.warning(
                "prediction log: the catalog does not answer; %d rows wait in the journal: %s",
                len(rows),
                self.last_error,
            )
            return rows
        if len(rows) == 1:
            self._dead_letter({"row": rows[0]}, self.last_error)
            return []
        half = len(rows) // 2
        rest = self._settle(rows[:half])
        return rest + rows[half:] if rest else self._settle(rows[half:])

    def _insert(self, rows: list[dict]) -> None:
        table = table_of(Prediction)
        ids = [row.get("request_id") for row in rows]
        with db.get_engine(self._url).begin() as connection:
            have = set()
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                have.update(
                    connection.execute(
                        table.select().with_only_columns(table.c.request_id).where(table.c.request_id.in_(chunk))
                    ).scalars()
                )
            new, seen = [], set(have)
            for row, request_id in zip(rows, ids):
                if request_id not in seen:
                    seen.add(request_id)
                    new.append(row)
            for start in range(0, len(new), self._batch_rows):
                connection.execute(table.insert(), new[start : start + self._batch_rows])
        self.written += len(new)
        self.duplicates += len(rows) - len(new)

    def _catalog_answers(self) -> bool:
        """Whether the catalog takes a write transaction at all (SQLite: its write lock; PostgreSQL: a connection)."""

        try:
            with db.get_engine(self._url).begin() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def _dead_letter(self, entry: dict, error: str) -> None:
        record = {"dead_lettered_at": datetime.now(UTC).isoformat(), "error": error, **entry}
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letter_path.open("a") as fh:
            fh.write(json.dumps(record, default=_json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.dead_lettered += 1
        self.dead_letter_total += 1
        log.error("prediction log: a row the catalog refuses was moved to %s: %s", self.dead_letter_path, error)


def _parse(line: bytes) -> dict:
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if isinstance(row.get("at"), str):
        row["at"] = datetime.fromisoformat(row["at"])
    return row


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_folder(folder: Path) -> None:
    for leftover in folder.iterdir():
        leftover.unlink(missing_ok=True)
    folder.rmdir()
