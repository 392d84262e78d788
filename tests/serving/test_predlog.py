"""The prediction log journals every answer before it is given, writes it off the request path, survives a catalog
outage and a kill -9, writes nothing twice, and never lets a row the catalog refuses block the rows behind it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import func, select

from aoi.catalog import db
from aoi.catalog.models import Prediction
from aoi.settings import Settings
from serving.predlog import NotLogged, PredictionLog
from tests.serving.helpers import row

REPO_ROOT = Path(__file__).resolve().parents[2]  # not from tests.conftest: the child imports this module, and
# importing the conftest clears the AOI_* environment it is given


def logged_ids(url: str) -> list[str]:
    with db.session(url) as s:
        return list(s.exec(select(Prediction.request_id)).all())


def count(url: str) -> int:
    with db.session(url) as s:
        return s.exec(select(func.count()).select_from(Prediction)).one()


def settled(log: PredictionLog, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.pending == 0, log.describe()


def unwritable(settings: Settings, tmp_path) -> Settings:
    """The same AOI_HOME with a catalog every connection to fails, as one that is down."""
    (tmp_path / "no-such-dir").write_text("a file where the catalog's folder should be")
    return Settings(home=settings.home, db_url=f"sqlite:///{tmp_path / 'no-such-dir' / 'x' / 'c.db'}")


def segments(settings: Settings) -> list:
    return sorted((settings.home / "serving" / "journal").glob("*/*.jsonl"))


def test_rows_are_written_in_batches_while_running_and_all_of_them_by_close(configure):
    settings = configure(SERVING__LOG_BATCH_ROWS=100, SERVING__LOG_FLUSH_S=0.05)
    log = PredictionLog(settings).start()
    for i in range(250):
        log.put(row(i))
    settled(log)
    assert log.written == 250 and count(settings.catalog_url) == 250  # written while running, before close
    for i in range(250, 1000):
        log.put(row(i))
    assert log.close() == 0
    assert count(settings.catalog_url) == 1000 and log.pending == 0 and log.duplicates == 0
    journal = settings.home / "serving" / "journal"
    assert not journal.exists() or not any(journal.iterdir())  # settled segments and the folder are gone


def test_close_does_not_wait_out_the_flush_interval(configure):
    settings = configure(SERVING__LOG_FLUSH_S=30)
    log = PredictionLog(settings).start()
    for i in range(5):
        log.put(row(i))
    started = time.monotonic()
    assert log.close() == 0 and time.monotonic() - started < 10 and count(settings.catalog_url) == 5


def test_an_unreachable_catalog_keeps_the_answers_in_the_journal_and_the_next_start_writes_them(settings, tmp_path):
    down = PredictionLog(unwritable(settings, tmp_path)).start()
    for i in range(30):
        down.put(row(i))
    time.sleep(1.0)
    assert down.written == 0 and down.failed_writes >= 1 and down.last_error and down.pending == 30
    assert down.close(timeout_s=5) == 30
    kept = [json.loads(line)["request_id"] for path in segments(settings) for line in path.read_text().splitlines()]
    assert sorted(kept) == [f"req{i:06d}" for i in range(30)]
    up = PredictionLog(settings).start()
    assert up.replayed == 30
    up.put(row(30))
    settled(up)
    assert up.close() == 0
    assert sorted(logged_ids(settings.catalog_url)) == [f"req{i:06d}" for i in range(31)] and segments(settings) == []


def test_a_row_the_catalog_refuses_is_dead_lettered_and_the_rows_behind_it_are_written(catalog_url, configure):
    settings = configure(SERVING__LOG_FLUSH_S=0.05)
    postgres = catalog_url.startswith("postgresql")
    log = PredictionLog(settings).start()
    for i in range(40):
        changes = {
            3: {"kind": None},  # NOT NULL: refused by every catalog
            17: {"machine_id": "vrs\x0001"},
        }.get(i, {})  # NUL: PostgreSQL refuses it, SQLite stores it
        log.put(row(i, **changes))
    settled(log)
    for i in range(40, 60):  # the log still runs
        log.put(row(i))
    settled(log)
    assert log.close() == 0
    refused = [json.loads(line) for line in log.dead_letter_path.read_text().splitlines()]
    expected = {"req000003", "req000017"} if postgres else {"req000003"}
    assert {r["row"]["request_id"] for r in refused} == expected and all(r["error"] for r in refused)
    assert sorted(logged_ids(catalog_url)) == [f"req{i:06d}" for i in range(60) if f"req{i:06d}" not in expected]
    assert (log.dead_lettered, log.dead_letter_total, log.written) == (len(expected), len(expected), 60 - len(expected))
    again = PredictionLog(settings).start()
    assert again.describe()["dead_letter_total"] == len(expected) and again.close() == 0  # counted from the file


def test_a_replay_writes_nothing_twice(settings):
    # A crash between the catalog's commit and the segment's deletion: the journal holds rows the catalog has.
    first = PredictionLog(settings).start()
    for i in range(5):
        first.put(row(i))
    settled(first)
    orphan = settings.home / "serving" / "journal" / "999999-dead"
    orphan.mkdir()
    (orphan / "lock").touch()
    (orphan / f"{1:020d}-000001.jsonl").write_text("".join(json.dumps(row(i), default=str) + "\n" for i in range(10)))
    first.close()
    second = PredictionLog(settings).start()
    settled(second)
    assert (second.replayed, second.written, second.duplicates) == (10, 5, 5)
    assert second.close() == 0 and sorted(logged_ids(settings.catalog_url)) == [f"req{i:06d}" for i in range(10)]
    assert not orphan.exists()


def test_rows_put_back_as_an_unlogged_file_are_written_at_start(settings):
    """The form rows were kept in before the journal, and the way back for dead-lettered rows once fixed."""
    kept = settings.home / "serving" / "unlogged-fixed.jsonl"
    kept.parent.mkdir(parents=True)
    kept.write_text("".join(json.dumps(row(i), default=str) + "\n" for i in range(3)))
    log = PredictionLog(settings).start()
    settled(log)
    assert log.close() == 0 and log.replayed == 3 and count(settings.catalog_url) == 3 and not kept.exists()


def test_a_live_services_journal_is_not_taken_by_another(settings, tmp_path):
    live = PredictionLog(unwritable(settings, tmp_path)).start()
    for i in range(5):
        live.put(row(i))
    other = PredictionLog(settings).start()
    assert other.replayed == 0  # the live one still holds its folder's lock
    assert other.close() == 0 and live.close(timeout_s=5) == 5
    after = PredictionLog(settings).start()
    assert after.replayed == 5
    settled(after)
    assert after.close() == 0 and count(settings.catalog_url) == 5


def test_torn_and_unreadable_journal_lines_are_dead_lettered_and_the_rest_is_written(settings):
    orphan = settings.home / "serving" / "journal" / "999999-dead"
    orphan.mkdir(parents=True)
    good = "".join(json.dumps(row(i), default=str) + "\n" for i in range(4))
    (orphan / f"{1:020d}-000001.jsonl").write_text(good + "not json\n" + json.dumps(row(4), default=str)[:50])
    log = PredictionLog(settings).start()
    settled(log)
    assert log.close() == 0 and sorted(logged_ids(settings.catalog_url)) == [f"req{i:06d}" for i in range(4)]
    errors = [json.loads(line)["error"] for line in log.dead_letter_path.read_text().splitlines()]
    assert len(errors) == 2 and "unreadable" in errors[0] and "torn" in errors[1]


def test_the_journal_is_bounded_and_refuses_rather_than_drops(configure, tmp_path):
    settings = configure(SERVING__LOG_MAX_PENDING=5)
    log = PredictionLog(unwritable(settings, tmp_path)).start()
    for i in range(5):
        log.put(row(i))
    with pytest.raises(NotLogged, match="LOG_MAX_PENDING"):
        log.put(row(5))
    assert log.close(timeout_s=5) == 5


@pytest.mark.parametrize("fsync", ["always", "never"])
def test_every_fsync_policy_writes_everything(configure, fsync):
    settings = configure(SERVING__LOG_FSYNC=fsync, SERVING__LOG_FLUSH_S=0.05)
    log = PredictionLog(settings).start()
    for i in range(20):
        log.put(row(i))
    assert log.close() == 0 and count(settings.catalog_url) == 20


CHILD = """
import sys
from aoi.settings import Settings
from serving.predlog import PredictionLog
from tests.serving.helpers import row

log = PredictionLog(Settings(home=sys.argv[1], db_url=sys.argv[2])).start()
for phase in sys.stdin:
    start, stop = map(int, phase.split())
    for i in range(start, stop):
        log.put(row(i))
        print(f"req{i:06d}", flush=True)  # acknowledged: the service would now return the answer
"""


def lock_catalog(url: str, settings: Settings):
    """A second connection that holds the catalog's write lock (SQLite) or the prediction table's (PostgreSQL)."""
    if url.startswith("sqlite"):
        locker = sqlite3.connect(settings.home / "catalog.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        return locker
    from sqlalchemy import text

    locker = db.make_engine(url).connect()
    locker.begin()
    locker.execute(text("LOCK TABLE prediction IN ACCESS EXCLUSIVE MODE"))
    return locker


def test_answers_acknowledged_before_a_kill_9_with_the_catalog_locked_are_all_logged_after_a_restart(
    catalog_url, configure
):
    """The issue's kill test: a real child process journals answers, the catalog is locked, SIGKILL, restart."""
    settings = configure()
    url = settings.catalog_url
    count(url)  # migrated before the lock is taken
    settings.home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AOI_SERVING__LOG_FLUSH_S": "0.05"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings.home), url],
        env=env,
        cwd=settings.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    acknowledged = []
    try:
        child.stdin.write("0 50\n")
        child.stdin.flush()
        acknowledged += [child.stdout.readline().strip() for _ in range(50)]
        deadline = time.monotonic() + 30
        while count(url) < 50 and time.monotonic() < deadline:  # the first answers reach the catalog
            time.sleep(0.1)
        locker = lock_catalog(url, settings)  # the catalog is busy: no write gets through
        child.stdin.write("50 250\n")
        child.stdin.flush()
        acknowledged += [child.stdout.readline().strip() for _ in range(200)]
        time.sleep(0.3)  # the writer is waiting on the lock with rows in hand
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        locker.rollback()
        locker.close()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert acknowledged == [f"req{i:06d}" for i in range(250)] and count(url) == 50
    restarted = PredictionLog(settings).start()
    assert restarted.replayed >= 200
    settled(restarted)
    assert restarted.close() == 0
    ids = logged_ids(url)
    assert len(ids) == len(set(ids)) == 250 and set(ids) == set(acknowledged)  # each once, none lost


def untrained_gray_production(settings: Settings) -> str:
    """An untrained gray model made production directly in the catalog (what is tested here is the log, not the
    model or the gate; bench/serving.py does the same), in seconds rather than a training run's minutes."""
    from aoi.catalog.models import ModelVersion, TrainingRun
    from aoi.preprocess import Preprocessing
    from training.model import build_model
    from training.registry import save_model
    from training.taxonomy import Taxonomy

    taxonomy, prep = Taxonomy.load("gray"), Preprocessing(input_size=32, channels=1)
    model = build_model("mobilenet_v3_small", len(taxonomy.fine), prep.channels)
    tag = save_model(
        settings,
        kind="gray",
        version="gray-untrained",
        state_dict=model.state_dict(),
        taxonomy=taxonomy.as_dict(),
        prep=prep.as_dict(),
        arch="mobilenet_v3_small",
        metrics={},
    )
    with db.session(settings.catalog_url) as s:
        run = TrainingRun(kind="gray", dataset="none", status="succeeded", arch="mobilenet_v3_small")
        s.add(run)
        s.flush()
        s.add(
            ModelVersion(
                version="gray-untrained",
                kind="gray",
                stage="production",
                run_id=run.id,
                dataset="none",
                arch="mobilenet_v3_small",
                bento_tag=tag,
                stage_changed_by="test",
            )
        )
        s.commit()
    return "gray-untrained"


def committed(settings: Settings) -> int:
    """The prediction rows, read past a lock held on the catalog (WAL: readers are not blocked)."""
    reader = sqlite3.connect(settings.home / "catalog.db")
    try:
        return reader.execute("SELECT count(*) FROM prediction").fetchone()[0]
    finally:
        reader.close()


@pytest.mark.slow
def _running(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie has closed its files
    except psutil.NoSuchProcess:
        return False


def test_a_served_worker_killed_with_the_catalog_locked_loses_no_acknowledged_answer(configure):
    """The same over HTTP: `aoi serve`, answers given while the catalog is locked, kill -9 of the worker process."""
    import httpx
    import psutil

    from tests.flows.helpers import aoi
    from tests.helpers import free_port
    from tests.serving.helpers import png

    settings = configure(SERVING__PORT=free_port(), SERVING__LOG_FLUSH_S=0.1)
    url = settings.catalog_url
    untrained_gray_production(settings)
    served = aoi("serve", "--background", "--json")
    acknowledged, locker = [], None
    try:
        with httpx.Client(base_url=served["url"], timeout=60) as client:

            def classify(i: int) -> str:
                answer = client.post(
                    "/classify", files={"image": ("x.png", png(seed=i), "image/png")}, data={"kind": "gray"}
                )
                assert answer.status_code == 200, answer.text
                return answer.json()["request_id"]

            acknowledged += [classify(i) for i in range(10)]
            deadline = time.monotonic() + 30
            while count(url) < 10 and time.monotonic() < deadline:
                time.sleep(0.2)
            locker = lock_catalog(url, settings)
            acknowledged += [classify(i) for i in range(10, 50)]
            [folder] = [p for p in (settings.home / "serving" / "journal").iterdir() if not p.name.startswith(".")]
            worker = int(folder.name.split("-")[0])  # the process that answered journals into <pid>-...
            assert worker != served["pid"]
            os.kill(worker, signal.SIGKILL)
            # And the rest of the service, so that nothing starts the worker again (BentoML would, and its new
            # worker would write the journal: measured once, 46 s on this machine): the test's own start below does.
            os.killpg(served["pid"], signal.SIGKILL)
            psutil.Process(served["pid"]).wait(timeout=30)
            gone_by = time.monotonic() + 30  # a killed process holds its journal lock until it has fully exited
            while _running(worker) and time.monotonic() < gone_by:
                time.sleep(0.1)
            assert committed(settings) == 10  # nothing of the 40 got through the lock
    finally:
        if locker is not None:
            locker.rollback()
            locker.close()
        aoi("serve", "--stop", "--json")  # nothing left to stop after the kill; it stops one that failed earlier
    restarted = PredictionLog(settings).start()
    assert restarted.replayed >= 40
    settled(restarted)
    assert restarted.close() == 0
    ids = logged_ids(url)
    assert len(ids) == len(set(ids)) == 50 and set(ids) == set(acknowledged)


def test_the_service_refuses_an_answer_it_cannot_journal_and_shows_the_log_in_describe(configure, tmp_path):
    """503 (the line retries) rather than an answer that is not logged; /model's prediction_log shows why."""
    import asyncio

    from serving.service import Classifier
    from tests.serving.helpers import png

    settings = configure(SERVING__LOG_MAX_PENDING=3, SERVING__LOG_FLUSH_S=0.05)
    untrained_gray_production(settings)
    image = tmp_path / "x.png"
    image.write_bytes(png())
    service = Classifier()
    try:
        locker = lock_catalog(settings.catalog_url, settings)
        try:
            answers = [asyncio.run(service.classify(image=image, kind="gray")) for _ in range(4)]
            log = service.describe()["prediction_log"]
        finally:
            locker.rollback()
            locker.close()
        settled(service.log, timeout_s=60)  # the writer was waiting on the lock (busy_timeout): it gets through
        after = asyncio.run(service.classify(image=image, kind="gray"))
    finally:
        service.close()
    assert [getattr(a, "status_code", 200) for a in answers] == [200, 200, 200, 503]
    assert "LOG_MAX_PENDING" in json.loads(answers[3].body)["error"]
    assert (log["pending"], log["written"], log["max_pending"], log["fsync"]) == (3, 0, 3, "interval")
    assert getattr(after, "status_code", 200) == 200
    assert sorted(logged_ids(settings.catalog_url)) == sorted([a.request_id for a in answers[:3]] + [after.request_id])
