"""Training records: a run whose driver process died (killed, crashed) does not stay 'running' for ever."""

from __future__ import annotations

import os
import socket

from aoi.catalog import db
from aoi.catalog.models import TrainingRun
from training import runs, steps
from training.params import TrainParams

INFO = {"kind": "gray", "labelled_images": 10, "total_images": 12, "label_kinds": 2}


def _set_driver(settings, run_id: int, **driver) -> None:
    with db.session(settings.catalog_url) as s:
        run = db.get_row(s, TrainingRun, run_id)
        run.config = {**run.config, "driver": {**run.config["driver"], **driver}}
        s.add(run)
        s.commit()


def test_a_run_whose_driver_is_gone_is_closed_as_failed(settings):
    request = TrainParams(dataset="g-v1")
    alive, killed, recycled, elsewhere = (steps.start_run(settings, request, INFO) for _ in range(4))
    assert [r["status"] for r in runs.runs(settings)] == ["running"] * 4  # this process drives all four
    _set_driver(settings, killed, pid=2**22 + 12345)  # no such process
    _set_driver(settings, recycled, pid=os.getpid(), started=1.0)  # the pid lives on, in another process
    _set_driver(settings, elsewhere, pid=2**22 + 12345, host=f"not-{socket.gethostname()}")

    by_id = {r["run_id"]: r for r in runs.runs(settings)}
    assert by_id[alive]["status"] == "running" and by_id[elsewhere]["status"] == "running"
    for run_id in (killed, recycled):
        assert by_id[run_id]["status"] == "failed" and "ended without recording a result" in by_id[run_id]["error"]
        assert by_id[run_id]["finished_at"] is not None and by_id[run_id]["duration_s"] >= 0
    assert runs.close_abandoned(settings) == []  # closed once
