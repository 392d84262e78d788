"""The feature repo on a real Feast in the test's AOI_HOME: camera parameters imported from CSV, applied,
materialised, read online (SQLite; Redis when AOI_TEST_REDIS_URL names a server) and point in time."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from features import camera_params, store

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
HEADER = "machine_id,part_no,light,exposure,gain_r,gain_g,gain_b,effective_from\n"


def csv(tmp_path, name: str, *rows: str):
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_an_import_is_checked_whole_and_idempotent(settings, tmp_path):
    first = csv(tmp_path, "a.csv", "vrs-01,P-1,48,13,9,6,13,2026-01-05", "vrs-02,P-1,50,12,8.5,6,12,2026-01-05")
    assert camera_params.import_csv(settings, first)["added"] == 2
    again = camera_params.import_csv(settings, first)
    assert (again["added"], again["already_there"], again["table_rows"]) == (0, 2, 2)
    bad = csv(tmp_path, "bad.csv", "vrs-03,P-2,48,13,9,6,13,", ",P-2,bright,13,9,6,-1,2026-01-05", "vrs-04,P-2,1,1,1,1,1,not-a-date")
    with pytest.raises(camera_params.CameraParamsError) as refused:
        camera_params.import_csv(settings, bad)
    message = str(refused.value)
    assert "2 bad rows, nothing imported" in message and "line 3: machine_id empty" in message
    assert "light='bright' is not an integer" in message and "gain_b is negative" in message and "line 4" in message
    assert len(camera_params.read_table(settings)) == 2  # the good row of the bad file was not imported either
    changed = csv(tmp_path, "changed.csv", "vrs-01,P-1,60,13,9,6,13,2026-01-05")
    with pytest.raises(camera_params.CameraParamsError, match="later effective_from"):
        camera_params.import_csv(settings, changed)
    missing = tmp_path / "missing.csv"
    missing.write_text("machine_id,part_no,light\nvrs-01,P-1,3\n")
    with pytest.raises(camera_params.CameraParamsError, match="missing columns exposure"):
        camera_params.import_csv(settings, missing)


def _applied(settings, tmp_path):
    camera_params.import_csv(settings, csv(tmp_path, "a.csv", "vrs-01,P-1,48,13,9,6,13,2026-01-05",
                                           "vrs-02,P-1,50,12,8.5,6,12,2026-01-05"))  # fmt: skip
    fs = store.open_store(settings)
    assert store.apply(settings, fs) == ["machine", "part", "camera_params", "serving_v1"]
    assert store.materialize(settings, ["camera_params"], fs) == {"camera_params": 2}
    return fs


def _online_round_trip(settings, tmp_path):
    fs = _applied(settings, tmp_path)
    assert store.camera_params_online(fs, "vrs-01", "P-1") == {"machine_id": "vrs-01", "part_no": "P-1", "light": 48,
                                                               "exposure": 13, "gain_r": 9.0, "gain_g": 6.0, "gain_b": 13.0}  # fmt: skip
    assert store.camera_params_online(fs, "vrs-01", "P-404") is None
    # New settings for vrs-01 take over online once imported and materialised.
    camera_params.import_csv(settings, csv(tmp_path, "b.csv", "vrs-01,P-1,52,14,9,6,12,2026-02-01"))
    store.materialize(settings, ["camera_params"], fs)
    assert store.camera_params_online(fs, "vrs-01", "P-1")["light"] == 52
    return fs


def test_apply_materialize_and_read_online_and_point_in_time(settings, tmp_path):
    fs = _online_round_trip(settings, tmp_path)
    assert (settings.home / "feast" / "feature_store.yaml").exists() and (settings.home / "feast" / "online.db").exists()
    at = store.camera_params_at(fs, [
        {"machine_id": "vrs-01", "part_no": "P-1", "at": T0 + timedelta(days=3)},   # the January row
        {"machine_id": "vrs-01", "part_no": "P-1", "at": T0 + timedelta(days=40)},  # the February row
        {"machine_id": "vrs-02", "part_no": "P-1", "at": T0 - timedelta(days=1)},   # before any row
        {"machine_id": "vrs-09", "part_no": "P-1", "at": T0 + timedelta(days=3)},   # an unknown machine
    ])  # fmt: skip
    assert at["light"].tolist()[:2] == [48, 52] and at["light"].isna().tolist()[2:] == [True, True]
    assert [p["machine_id"] for p in camera_params.pairs(settings)] == ["vrs-01", "vrs-02"]
    assert camera_params.pairs(settings)[0]["light"] == 52  # the row in force now


def test_a_bad_online_store_url_is_refused(configure):
    settings = configure(FEAST_ONLINE="http://localhost:6379")
    with pytest.raises(store.FeatureStoreError, match="redis://host:port"):
        store.online_store_config(settings)


@pytest.mark.integration
def test_the_redis_online_store_answers_the_same(configure, tmp_path):
    url = os.environ.get("AOI_TEST_REDIS_URL")
    if not url:
        pytest.skip("no Redis: set AOI_TEST_REDIS_URL (.ci/run starts a redis-server and sets it)")
    import redis

    db = 11  # a database of its own, emptied first: reruns see nothing of earlier runs
    redis.Redis.from_url(f"{url}/{db}").flushdb()
    settings = configure(FEAST_ONLINE=f"{url}/{db}")
    assert store.online_store_config(settings)["type"] == "redis"
    _online_round_trip(settings, tmp_path)
    assert not (settings.home / "feast" / "online.db").exists()
    assert redis.Redis.from_url(f"{url}/{db}").dbsize() > 0
