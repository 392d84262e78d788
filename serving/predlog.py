"""The prediction log: every answer becomes a ``prediction`` row, written off the request path.

A request only appends to an in-memory queue. One writer thread takes up to ``log_batch_rows`` rows at a time
and inserts them in one transaction, at least every ``log_flush_s``. A failed write keeps its rows and is
retried (the catalog may restart); ``close`` drains the queue, and rows that still cannot be written are kept
in ``AOI_HOME/serving/unlogged-*.jsonl`` rather than lost. ``request_id`` is unique, so replaying such a file
cannot log an answer twice.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path

from aoi.catalog import db
from aoi.catalog.models import Prediction
from aoi.settings import Settings

log = logging.getLogger("aoi.serving")


class PredictionLog:
    def __init__(self, settings: Settings) -> None:
        self._url = settings.catalog_url
        self._batch_rows = settings.serving.log_batch_rows
        self._flush_s = settings.serving.log_flush_s
        self._spill_dir = settings.home / "serving"
        self._queue: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aoi-prediction-log", daemon=True)
        self.written = 0
        self.failed_writes = 0
        self.last_error: str | None = None

    def start(self) -> "PredictionLog":
        self._thread.start()
        return self

    def put(self, row: dict) -> None:
        """Queue one answer (never blocks, never touches the database)."""
        self._queue.put(row)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout_s: float = 30.0) -> Path | None:
        """Write everything queued; returns the spill file if some rows could not be written."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        rest = self._drain(10**9)
        if rest and not self._write(rest):
            return self._spill(rest)
        return None

    def _run(self) -> None:
        held: list[dict] = []  # rows of a failed write, retried first
        backoff = self._flush_s
        while not self._stop.is_set():
            if not held:
                try:
                    held.append(self._queue.get(timeout=self._flush_s))
                except queue.Empty:
                    continue
            held += self._drain(self._batch_rows - len(held))
            if self._write(held):
                held, backoff = [], self._flush_s
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        for row in reversed(held):  # close() writes or spills them with the rest
            self._queue.put(row)

    def _drain(self, limit: int) -> list[dict]:
        rows = []
        while len(rows) < limit:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return rows

    def _write(self, rows: list[dict]) -> bool:
        try:
            with db.get_engine(self._url).begin() as connection:
                for start in range(0, len(rows), self._batch_rows):
                    connection.execute(Prediction.__table__.insert(), rows[start:start + self._batch_rows])
        except Exception as err:  # the catalog is down or refuses: keep the rows, try again later
            self.failed_writes += 1
            self.last_error = f"{type(err).__name__}: {err}"[:500]
            log.warning("prediction log write of %d rows failed: %s", len(rows), self.last_error)
            return False
        self.written += len(rows)
        return True

    def _spill(self, rows: list[dict]) -> Path:
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        path = self._spill_dir / f"unlogged-{time.strftime('%Y%m%dT%H%M%S')}-{len(rows)}.jsonl"
        with path.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=str) + "\n")
        log.error("%d predictions could not reach the catalog; kept in %s", len(rows), path)
        return path
