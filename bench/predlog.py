"""The prediction log's cost per answer on the request path, and the writer's rate into the catalog.

1. ``put`` of one answer's row (wall and CPU microseconds), per fsync policy (``AOI_SERVING__LOG_FSYNC``):
   JSON-encode, one ``write`` to the journal, and (``always``) an fsync; against the memory-only queue the log
   used before the journal.
2. The writer: rows per second from the journal into a SQLite catalog (``log_batch_rows`` per transaction).

    .venv/bin/python bench/predlog.py [--answers 5000]

Ends with one line of JSON. The journal is written under a temporary folder: put it on the disk the service's
AOI_HOME lives on (``--dir``) for the fsync figures to mean anything.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.settings import ServingSettings, Settings
from serving.predlog import PredictionLog

TONE = ("brightness", "mean_r", "mean_g", "mean_b", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff")


def row(i: int) -> dict:
    """A row shaped like serving.answer.log_row's."""
    return {
        "request_id": f"{i:032x}",
        "at": datetime.now(UTC),
        "latency_ms": 12.5,
        "kind": "gray",
        "model_version": "gray-r1",
        "machine_id": "aoi-03",
        "part_no": "P-1001",
        "upstream_code": "SHORT",
        "sha256": "ab" * 32,
        "label": "short",
        "coarse_label": "REPAIRABLE",
        "model_label": "short",
        "confidence": 0.9731,
        "unknown": False,
        "route": "FINAL",
        "rule": None,
        **{name: 101.25 for name in TONE},
        "format": "PNG",
        "jpeg_quality": None,
        "bytes_per_pixel": 0.71,
        "width": 64,
        "height": 64,
        "in_spec": True,
    }


def per_answer_us(put, rows: list[dict]) -> dict:
    """Wall and CPU (this thread's: robust to a loaded machine) microseconds per answer."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for r in rows:
        put(r)
    return {
        "wall": round((time.perf_counter() - wall) / len(rows) * 1e6, 2),
        "cpu": round((time.thread_time() - cpu) / len(rows) * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None, help="Folder for the AOI_HOMEs (default: a temporary one)")
    args = parser.parse_args()
    result: dict = {"answers": args.answers, "put_us": {}}
    rows = [row(i) for i in range(args.answers)]
    memory: queue.SimpleQueue = queue.SimpleQueue()
    result["put_us"]["memory_only"] = per_answer_us(memory.put, rows)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for policy in ("never", "interval", "always"):
            home = Path(tmp) / policy
            # The catalog is never reached (a file where its folder should be): put alone is measured.
            (Path(tmp) / f"{policy}-blocked").write_text("")
            settings = Settings(
                home=home,
                db_url=f"sqlite:///{tmp}/{policy}-blocked/x/c.db",
                serving=ServingSettings(log_fsync=policy, log_flush_s=60),
            )
            log = PredictionLog(settings).start()
            n = args.answers if policy != "always" else min(args.answers, 1000)
            result["put_us"][policy] = per_answer_us(log.put, rows[:n])
            log.close(timeout_s=1)
        # The writer: the same answers, journaled first, then into a SQLite catalog.
        home = Path(tmp) / "writer"
        settings = Settings(home=home, serving=ServingSettings(log_flush_s=0.05))
        from aoi.catalog import db

        db.get_engine(settings.catalog_url)  # migrated outside the measurement
        log = PredictionLog(settings)
        log.journal_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        log.start()
        for r in rows:
            log.put(r)
        while log.pending:
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        log.close()
        result["writer_rows_per_s"] = round(args.answers / seconds)
    for policy, us in result["put_us"].items():
        print(f"put ({policy}): {us['wall']:8.1f} us per answer ({us['cpu']:.1f} us CPU)")
    print(f"writer into SQLite: {result['writer_rows_per_s']:,} rows/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
