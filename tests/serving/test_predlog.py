"""The prediction log writes off the request path, survives a catalog outage and loses nothing on close."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from sqlmodel import func, select

from aoi.catalog import db
from aoi.catalog.models import Prediction
from aoi.settings import Settings
from serving.predlog import PredictionLog


def row(i: int) -> dict:
    tone = dict.fromkeys(("brightness", "mean_r", "mean_g", "mean_b", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff"), 1.0)
    return {"request_id": f"req{i:06d}", "at": datetime.now(timezone.utc), "latency_ms": 1.0, "kind": "gray",
            "model_version": "gray-r1", "machine_id": "m1", "part_no": None, "upstream_code": None, "sha256": "0" * 64,
            "label": "PASS", "coarse_label": "PASS", "model_label": "PASS", "confidence": 0.99, "unknown": False,
            "route": "FINAL", "rule": None, **tone, "format": "PNG", "jpeg_quality": None, "bytes_per_pixel": 1.0,
            "width": 32, "height": 32, "in_spec": None}  # fmt: skip


def count(url: str) -> int:
    with db.session(url) as s:
        return s.exec(select(func.count()).select_from(Prediction)).one()


def test_rows_are_written_in_batches_while_running_and_all_of_them_by_close(configure):
    settings = configure(SERVING__LOG_BATCH_ROWS=100, SERVING__LOG_FLUSH_S=0.05)
    log = PredictionLog(settings).start()
    for i in range(250):
        log.put(row(i))
    deadline = time.monotonic() + 10
    while log.written < 250 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.written == 250 and count(settings.catalog_url) == 250  # written while running, before close
    for i in range(250, 1000):
        log.put(row(i))
    assert log.close() is None
    assert count(settings.catalog_url) == 1000 and log.pending == 0


def test_a_catalog_that_cannot_be_written_keeps_the_rows_and_close_spills_them_to_a_file(settings, tmp_path):
    unwritable = Settings(home=settings.home, db_url=f"sqlite:///{tmp_path / 'no-such-dir' / 'x' / 'c.db'}")
    # A file where the folder should be: every connection fails, as with a catalog that is down.
    (tmp_path / "no-such-dir").write_text("not a folder")
    log = PredictionLog(unwritable).start()
    for i in range(30):
        log.put(row(i))
    time.sleep(1.5)
    assert log.written == 0 and log.failed_writes >= 1 and log.last_error
    spilled = log.close(timeout_s=5)
    assert spilled is not None and spilled.parent == settings.home / "serving"
    kept = [json.loads(line)["request_id"] for line in spilled.read_text().splitlines()]
    assert sorted(kept) == [f"req{i:06d}" for i in range(30)]
