"""Kept answers: the image bytes of every doubtful answer (routed REVIEW or VRS, or Unknown) and of a sampled share
of the others go to the image store, each with a ``kept_answer`` row the review queue reads.

Off the request path, like the prediction log: ``offer`` only decides and enqueues (no disk, no catalog); one
writer thread stores a batch of images (``ImageStore.put_many``: one flush for the batch), then inserts its rows in
one transaction, then keeps the kept bytes within ``AOI_SERVING__KEEP_MAX_BYTES`` by dropping the oldest waiting
answers first (then the oldest skipped; never one a person decided). The queue is bounded by the bytes it holds
(``AOI_SERVING__KEEP_QUEUE_BYTES``): past it a keep is skipped and counted, and the answer still goes out.

The sample is decided by a hash of the request id, not by a random draw: the same answer is always kept or not,
and a test can tell in advance which ones are.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from aoi.catalog import db
from aoi.catalog.models import Image, KeptAnswer, KeptAnswerReason, KeptAnswerStatus, table_of
from aoi.settings import Settings
from aoi.store import ImageStore
from serving.answer import Answer

log = logging.getLogger("aoi.serving")

BATCH_ITEMS = 64  # kept answers per store flush and catalog transaction
# A batch waits this long for more keeps after its first: one store flush and one transaction per half second,
# not one per few answers (each costs the service's process CPU and a syncfs, whatever the batch's size).
LINGER_S = 0.5
QUOTA_CHECK_S = 30.0  # the kept bytes are summed in the catalog at least this often, else estimated
ROUTE_REASONS = {"REVIEW": KeptAnswerReason.review, "VRS": KeptAnswerReason.vrs}
# Dropped in this order when over the quota; a labelled, not-a-defect or bad-image answer is never dropped.
DROPPABLE = (KeptAnswerStatus.waiting, KeptAnswerStatus.skipped)
_ID_CHUNK = db.IN_CHUNK


def sampled(request_id: str, share: float) -> bool:
    """Whether the answer ``request_id`` falls in the kept ``share`` (a hash of the id: deterministic)."""
    if share <= 0:
        return False
    draw = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64
    return draw < share


def reason_for(answer: Answer, share: float) -> KeptAnswerReason | None:
    """Why ``answer`` is kept, or None: Unknown first, then its route, then the sample."""
    if answer.unknown:
        return KeptAnswerReason.unknown
    if answer.route in ROUTE_REASONS:
        return ROUTE_REASONS[answer.route]
    return KeptAnswerReason.sample if sampled(answer.request_id, share) else None


def kept_row(answer: Answer, reason: KeptAnswerReason, sha256: str, size: int) -> dict:
    """The ``kept_answer`` row of one answer (status waiting)."""
    return {
        "request_id": answer.request_id,
        "kind": answer.kind,
        "reason": str(reason),
        "sha256": sha256,
        "bytes": size,
        "model_version": answer.model_version,
        "label": answer.label,
        "confidence": answer.confidence,
        "top": [[c.label, c.confidence] for c in answer.top3],
        "machine_id": answer.machine_id,
        "part_no": answer.part_no,
        "upstream_code": answer.upstream_code,
        "status": str(KeptAnswerStatus.waiting),
        "kept_at": datetime.now(UTC),  # when answered, not when the writer got to it
    }


@dataclass
class _Item:
    row: dict
    data: bytes


class AnswerKeeper:
    """The kept-answer writer of one service process: ``start``, ``offer`` per answer, ``close`` (drains)."""

    def __init__(self, settings: Settings) -> None:
        serving = settings.serving
        self.share = serving.keep_share
        self.max_bytes = serving.keep_max_bytes
        self.queue_bytes = serving.keep_queue_bytes
        self._url = settings.catalog_url
        self.store = ImageStore(settings.store_dir)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()  # queued bytes and the counters the request side changes
        self._queued_bytes = 0
        self._queued = 0  # offered and not yet written or given up (the writer's batch included)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aoi-kept-answers", daemon=True)
        self.by_reason: dict[str, int] = {str(r): 0 for r in KeptAnswerReason}
        self.kept = 0  # rows written to the catalog
        self.skipped_queue_full = 0
        self.dropped = 0
        self.dropped_bytes = 0
        self.failed_writes = 0
        self.unsaved = 0  # given up at close: the catalog or the store did not take them in time
        self.last_error: str | None = None
        self._held: int | None = None  # kept bytes in the catalog, as last summed plus what was written since
        self._summed_at = 0.0
        self.write_s = 0.0  # time the writer spent storing and inserting (not waiting)

    def start(self) -> AnswerKeeper:
        self._thread.start()
        return self

    # --- the request side: no disk, no catalog --------------------------------------------------------------

    def offer(self, answer: Answer, data: bytes, sha256: str) -> KeptAnswerReason | None:
        """Queue ``answer``'s image when it is to be kept; returns the reason, or None when it is not kept (not
        doubtful and not sampled, or the queue is full: then counted in ``skipped_queue_full``)."""
        reason = reason_for(answer, self.share)
        if reason is None:
            return None
        with self._lock:
            if self._stop.is_set() or self._queued_bytes + len(data) > self.queue_bytes:
                self.skipped_queue_full += 1
                return None
            self._queued_bytes += len(data)
            self._queued += 1
            # Under the lock: once close() has set the stop, nothing more is queued that the writer could miss.
            self._queue.put(_Item(kept_row(answer, reason, sha256, len(data)), data))
        return reason

    @property
    def queued(self) -> int:
        return self._queued

    def idle(self, timeout_s: float = 10.0) -> bool:
        """Whether every queued keep was written (or given up) within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self._queued and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._queued

    def describe(self) -> dict:
        with self._lock:
            return self._describe()

    def _describe(self) -> dict:
        return {
            "share": self.share,
            "max_bytes": self.max_bytes,
            "kept": self.kept,
            "by_reason": dict(self.by_reason),
            "queued": self.queued,
            "queued_bytes": self._queued_bytes,
            "skipped_queue_full": self.skipped_queue_full,
            "dropped": self.dropped,
            "dropped_bytes": self.dropped_bytes,
            "failed_writes": self.failed_writes,
            "write_s": round(self.write_s, 3),
            "unsaved": self.unsaved,
            "last_error": self.last_error,
        }

    def close(self, timeout_s: float = 30.0) -> int:
        """Write what is queued within ``timeout_s``; returns the kept answers given up (logged)."""
        with self._lock:
            self._stop.set()  # no new keeps from here on
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        if self.unsaved:
            log.error("kept answers: %d images could not be kept before the service stopped", self.unsaved)
        return self.unsaved

    # --- the writer thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        batch: list[_Item] = []
        backoff = 0.5
        while True:
            stopping = self._stop.is_set()
            if not batch:
                batch = self._take(0.2)
                if not batch:
                    if stopping:
                        return
                    continue
            try:
                started = time.perf_counter()
                new = self._write(batch)
                self.write_s += time.perf_counter() - started
            except Exception as err:  # the catalog or the store does not take it: retried, the queue fills meanwhile
                self.failed_writes += 1
                self.last_error = f"{type(err).__name__}: {err}"[:500]
                log.warning("kept answers: %d not written yet: %s", len(batch), self.last_error)
                if stopping:
                    self._give_up(batch)
                    self._give_up(self._take(0, everything=True))
                    return
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._release(batch, new)
            batch, backoff = [], 0.5

    def _take(self, wait_s: float, everything: bool = False) -> list[_Item]:
        """The next batch: waits up to ``wait_s`` for a first keep, then up to ``LINGER_S`` for more (none once
        stopping: the queue is drained as fast as it goes)."""
        items: list[_Item] = []
        try:
            items.append(self._queue.get(timeout=wait_s) if wait_s else self._queue.get_nowait())
            until = time.monotonic() + LINGER_S
            while everything or len(items) < BATCH_ITEMS:
                left = until - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    items.append(self._queue.get_nowait())
                else:
                    items.append(self._queue.get(timeout=left))
        except queue.Empty:
            pass
        return items

    def _release(self, items: list[_Item], written: list[dict] | None = None) -> None:
        with self._lock:  # with the counters: describe() never sees an answer both queued and kept, or neither
            for row in written or []:
                self.kept += 1
                self.by_reason[row["reason"]] += 1
            self._queued_bytes -= sum(len(item.data) for item in items)
            self._queued -= len(items)

    def _give_up(self, items: list[_Item]) -> None:
        self.unsaved += len(items)
        self._release(items)

    def _write(self, batch: list[_Item]) -> list[dict]:
        # Bytes first, durable, then the rows: a row never points at an image the store lacks.
        self.store.put_many([(item.data, item.row["sha256"]) for item in batch])
        rows = [item.row for item in batch]
        table = table_of(KeptAnswer)
        with db.get_engine(self._url).begin() as connection:
            ids = [row["request_id"] for row in rows]
            have = set(connection.execute(select(table.c.request_id).where(table.c.request_id.in_(ids))).scalars())
            new = [row for row in rows if row["request_id"] not in have]  # a retry after a commit writes nothing twice
            if new:
                connection.execute(table.insert(), new)
                if self._held is not None:
                    self._held += sum(row["bytes"] for row in new)
            orphans = self._enforce_quota(connection)
        for sha256 in orphans:  # after the commit: a crash leaves unreferenced bytes, never a row without bytes
            self.store.delete(sha256)
        return new

    def _enforce_quota(self, connection) -> list[str]:
        """Mark the oldest droppable kept answers ``dropped`` until the kept bytes fit the quota; returns the
        digests whose bytes nothing references any more (to delete after the commit)."""
        table = table_of(KeptAnswer)
        if (
            self._held is not None
            and self._held <= self.max_bytes
            and time.monotonic() - self._summed_at < QUOTA_CHECK_S
        ):
            return []  # well within: no sum over the table per batch (other replicas add theirs: summed every 30 s)
        # Bytes a catalog image now owns (a labelled answer that became a training image) are the catalog's, not
        # the queue's: left out, or reviewed answers would fill the quota for good and stop the queue filling.
        held = (table.c.status != str(KeptAnswerStatus.dropped)) & table.c.image_id.is_(None)
        total = connection.execute(select(func.coalesce(func.sum(table.c.bytes), 0)).where(held)).scalar_one()
        self._held, self._summed_at = int(total), time.monotonic()
        over = int(total) - self.max_bytes
        if over <= 0:
            return []
        victims: list[tuple[int, str, int]] = []
        for status in DROPPABLE:
            query = (
                select(table.c.id, table.c.sha256, table.c.bytes)
                .where(table.c.status == str(status))
                .order_by(table.c.kept_at, table.c.id)
            )
            for row_id, sha256, size in connection.execute(query.execution_options(yield_per=256)):
                victims.append((row_id, sha256, size))
                over -= size
                if over <= 0:
                    break
            if over <= 0:
                break
        if not victims:
            return []
        ids = [v[0] for v in victims]
        droppable = [str(status) for status in DROPPABLE]
        dropped: set[int] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            # Still droppable: a person may have labelled one since it was selected (PostgreSQL's READ COMMITTED
            # lets that commit in between); that answer stays, with its bytes.
            dropped.update(
                connection.execute(
                    table.update()
                    .where(table.c.id.in_(ids[start : start + _ID_CHUNK]), table.c.status.in_(droppable))
                    .values(status=str(KeptAnswerStatus.dropped))
                    .returning(table.c.id)
                ).scalars()
            )
        victims = [v for v in victims if v[0] in dropped]
        self.dropped += len(victims)
        self._held = int(total) - sum(v[2] for v in victims)
        self.dropped_bytes += sum(v[2] for v in victims)
        if over > 0:
            log.warning("kept answers: over AOI_SERVING__KEEP_MAX_BYTES by %d bytes of reviewed answers", over)
        return self._unreferenced(connection, sorted({v[1] for v in victims}))

    @staticmethod
    def _unreferenced(connection, digests: list[str]) -> list[str]:
        """The digests no kept answer still holding bytes and no catalog image references."""
        kept, images = table_of(KeptAnswer), table_of(Image)
        used: set[str] = set()
        for start in range(0, len(digests), _ID_CHUNK):
            chunk = digests[start : start + _ID_CHUNK]
            used.update(
                connection.execute(
                    select(kept.c.sha256).where(
                        kept.c.sha256.in_(chunk), kept.c.status != str(KeptAnswerStatus.dropped)
                    )
                ).scalars()
            )
            used.update(connection.execute(select(images.c.sha256).where(images.c.sha256.in_(chunk))).scalars())
        return [d for d in digests if d not in used]
