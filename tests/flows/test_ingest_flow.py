"""The ingest flow on a real Prefect test server, driven through the CLI as a user or script would."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aoi.catalog.queries import GalleryFilter, batches, images, quarantine, store_check
from tests.flows.helpers import aoi, ingest
from tests.helpers import bad_corpus, class_folder, image_bytes, labelme_zip, write, zip_bomb

pytestmark = pytest.mark.usefixtures("prefect_api")


def tree(root: Path, skip: Path) -> dict[str, int]:
    """Every file under ``root`` outside ``skip``, with its size (lstat: links are not followed)."""
    return {str(p): p.lstat().st_size for p in root.rglob("*") if skip not in (p, *p.parents)}


def test_ingesting_the_same_folder_twice_adds_nothing_the_second_time(settings, tmp_path):
    class_folder(tmp_path / "in", {"Spur": 4, "Short": 3, "Mouse_bite": 2})
    first = ingest(tmp_path / "in")
    assert (first["added"], first["duplicates"], first["quarantined"]) == (9, 0, 0)
    assert first["by_label"] == {"NICK": 2, "SHORT": 3, "SPUR": 4}
    second = ingest(tmp_path / "in")
    assert (second["added"], second["duplicates"]) == (0, 9)
    assert second["batch_id"] != first["batch_id"]
    rows = aoi("images", "--label", "SPUR")
    assert len(rows) == 4 and {r["source"] for r in rows} == {"color"}
    assert len(aoi("images")) == 9
    assert aoi("store", "check")["ok"] is True


def test_bad_files_are_quarantined_with_reasons_and_good_files_still_land(configure, tmp_path):
    settings = configure(INGEST__MAX_PIXELS=1_000_000)
    expected = bad_corpus(tmp_path / "in", max_pixels=1_000_000)
    before = tree(tmp_path, skip=settings.home)
    result = ingest(tmp_path / "in")
    assert (result["added"], result["duplicates"], result["quarantined"]) == (2, 1, len(expected))
    entries = {e["file"]: e for e in aoi("quarantine", "--batch", str(result["batch_id"]))}
    assert set(entries) == set(expected)
    for file, word in expected.items():
        assert word in entries[file]["reason"], (file, entries[file]["reason"])
    # Readable bad files keep their bytes in the quarantine store; nothing is lost.
    assert entries["Spur/notes.jpg"]["kept"] and not entries["Spur/dangling.png"]["kept"]
    assert {r["file_name"] for r in aoi("images")} == {"good_1.png", "good_2.jpg"}
    assert tree(tmp_path, skip=settings.home) == before, "ingest wrote outside AOI_HOME"
    assert store_check(settings)["ok"]


def test_a_zip_bomb_is_refused_whole_with_a_reason(settings, tmp_path):
    result = ingest(zip_bomb(tmp_path / "bomb.zip"), "--format", "labelme", code=1)
    assert result["status"] == "failed" and "zip bomb" in result["refused"]
    assert [e["file"] for e in quarantine(settings.catalog_url)] == ["bomb.zip"]
    assert images(settings.catalog_url) == []


def test_an_archive_member_that_escapes_is_quarantined_and_nothing_lands_outside(settings, tmp_path):
    # Where a naive extraction would write: beside the archive's folder, and an absolute path into tmp_path.
    escapes = {"../escape.png": image_bytes(seed=1), f"{tmp_path}/abs_escape.png": image_bytes(seed=2)}
    archive = labelme_zip(tmp_path / "in" / "lm.zip", extra=escapes)
    before = tree(tmp_path, skip=settings.home)
    result = ingest(archive, "--format", "labelme", "--machine", "VRS-01", "--part", "P-7")
    assert (result["added"], result["quarantined"]) == (2, 2)
    assert all("escapes the archive" in e["reason"] for e in quarantine(settings.catalog_url))
    rows = images(settings.catalog_url)
    assert {(r["machine_id"], r["part_no"], r["format"]) for r in rows} == {("VRS-01", "P-7", "PNG")}
    assert tree(tmp_path, skip=settings.home) == before


def test_ingest_writes_the_catalog_on_postgresql(monkeypatch, aoi_home, pg_database, tmp_path):
    monkeypatch.setenv("AOI_DB_URL", pg_database)
    from tests.helpers import fresh_settings

    settings = fresh_settings()
    class_folder(tmp_path / "in", {"Spur": 3, "Open_circuit": 2})
    assert ingest(tmp_path / "in")["added"] == 5
    assert ingest(tmp_path / "in")["added"] == 0
    assert len(images(settings.catalog_url, GalleryFilter(label="OPEN"))) == 2
    assert [b["status"] for b in batches(settings.catalog_url)] == ["succeeded", "succeeded"]


@pytest.mark.slow
def test_a_run_killed_half_way_finishes_on_rerun_without_duplicates_or_orphans(configure, tmp_path, prefect_api):
    settings = configure(INGEST__CHUNK_SIZE=20, STORE_FSYNC="false")
    total = 1500
    for i in range(total):
        write(tmp_path / "in" / "Spur" / f"img_{i:04d}.png", image_bytes(size=(32, 32), seed=i))
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    command = [str(Path(sys.executable).with_name("aoi")), "ingest", str(tmp_path / "in"), "--no-progress", "--json"]
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db_file = settings.home / "catalog.db"
    landed, deadline = 0, time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if db_file.exists():
            try:
                with sqlite3.connect(db_file, timeout=5) as conn:
                    landed = conn.execute("select count(*) from image").fetchone()[0]
            except sqlite3.OperationalError:
                landed = 0  # tables not created yet
            if landed >= 200:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < landed < total, f"the kill did not land half-way ({landed} of {total}): {proc.stderr.read()[-2000:]}"

    rerun = ingest(tmp_path / "in")
    assert rerun["status"] == "succeeded"
    assert rerun["added"] + rerun["duplicates"] == total
    assert rerun["batch_totals"]["added"] == total
    rows = images(settings.catalog_url)
    assert len(rows) == total == len({r["sha256"] for r in rows})
    assert len(batches(settings.catalog_url)) == 1, "the re-run must resume the killed batch, not add another"
    check = store_check(settings)
    assert check["ok"] and check["temp_files"] == 0, check


def test_odd_names_land_and_a_bad_file_is_reported_again_by_a_later_batch(settings, tmp_path):
    import os

    write(tmp_path / "in" / "Spur" / os.fsdecode(b"\xff\xfe.png"), image_bytes(seed=1))
    write(tmp_path / "in" / "Spur" / "empty.png", b"")
    first = ingest(tmp_path / "in")
    assert (first["added"], first["quarantined"]) == (1, 1)
    assert aoi("images")[0]["file_name"] == "\\xff\\xfe.png"
    write(tmp_path / "in" / "Spur" / "new.png", image_bytes(seed=2))
    second = ingest(tmp_path / "in")
    assert (second["added"], second["duplicates"], second["quarantined"]) == (1, 1, 1)
    assert second["batch_totals"]["quarantined"] == 1
    assert [e["file"] for e in aoi("quarantine", "--batch", str(second["batch_id"]))] == ["Spur/empty.png"]


def test_re_ingesting_restores_a_stored_file_that_was_lost(settings, tmp_path):
    from aoi.store import ImageStore

    class_folder(tmp_path / "in", {"Spur": 3})
    ingest(tmp_path / "in")
    lost = images(settings.catalog_url)[0]["sha256"]
    ImageStore(settings.store_dir).delete(lost)
    assert store_check(settings)["missing"] == [lost]
    ingest(tmp_path / "in")
    assert store_check(settings)["ok"]
