"""The feature repo on a real Feast in the test's AOI_HOME: camera parameters imported from CSV, applied,
materialised, read online (SQLite; Redis when AOI_TEST_REDIS_URL names a server) and point in time."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from features import camera_params, store

T0 = datetime(2026, 1, 5, tzinfo=UTC)
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
    bad = csv(
        tmp_path,
        "bad.csv",
        "vrs-03,P-2,48,13,9,6,13,",
        ",P-2,bright,13,9,6,-1,2026-01-05",
        "vrs-04,P-2,1,1,1,1,1,not-a-date",
    )
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
    camera_params.import_csv(
        settings, csv(tmp_path, "a.csv", "vrs-01,P-1,48,13,9,6,13,2026-01-05", "vrs-02,P-1,50,12,8.5,6,12,2026-01-05")
    )
    fs = store.open_store(settings)
    assert store.apply(settings, fs) == [
        "machine",
        "part",
        "camera_params",
        "machine_tone_stats",
        "machine_calibration",
        "serving_v1",
        "serving_v2",
        "training_v1",
    ]
    assert store.materialize(settings, ["camera_params"], fs) == {"camera_params": 2}
    return fs


def _online_round_trip(settings, tmp_path):
    fs = _applied(settings, tmp_path)
    assert store.camera_params_online(fs, "vrs-01", "P-1") == {
        "machine_id": "vrs-01",
        "part_no": "P-1",
        "light": 48,
        "exposure": 13,
        "gain_r": 9.0,
        "gain_g": 6.0,
        "gain_b": 13.0,
    }
    assert store.camera_params_online(fs, "vrs-01", "P-404") is None
    # New settings for vrs-01 take over online once imported and materialised.
    camera_params.import_csv(settings, csv(tmp_path, "b.csv", "vrs-01,P-1,52,14,9,6,12,2026-02-01"))
    store.materialize(settings, ["camera_params"], fs)
    assert store.camera_params_online(fs, "vrs-01", "P-1")["light"] == 52
    return fs


def test_apply_materialize_and_read_online_and_point_in_time(settings, tmp_path):
    fs = _online_round_trip(settings, tmp_path)
    assert (settings.home / "feast" / "feature_store.yaml").exists() and (
        settings.home / "feast" / "online.db"
    ).exists()
    at = store.camera_params_at(
        fs,
        [
            {"machine_id": "vrs-01", "part_no": "P-1", "at": T0 + timedelta(days=3)},  # the January row
            {"machine_id": "vrs-01", "part_no": "P-1", "at": T0 + timedelta(days=40)},  # the February row
            {"machine_id": "vrs-02", "part_no": "P-1", "at": T0 - timedelta(days=1)},  # before any row
            {"machine_id": "vrs-09", "part_no": "P-1", "at": T0 + timedelta(days=3)},  # an unknown machine
        ],
    )
    assert at["light"].tolist()[:2] == [48, 52] and at["light"].isna().tolist()[2:] == [True, True]
    assert [p["machine_id"] for p in camera_params.pairs(settings)] == ["vrs-01", "vrs-02"]
    assert camera_params.pairs(settings)[0]["light"] == 52  # the row in force now


def test_a_bad_online_store_url_is_refused(configure):
    settings = configure(FEAST_ONLINE="http://localhost:6379")
    with pytest.raises(store.FeatureStoreError, match="expected redis://"):
        store.online_store_config(settings)
    settings = configure(FEAST_ONLINE="redis://:s3cret@localhost:6379/x")
    with pytest.raises(store.FeatureStoreError, match="must be a number") as refused:
        store.online_store_config(settings)
    assert "s3cret" not in str(refused.value)
    with pytest.raises(store.FeatureStoreError, match="comma"):
        store.online_store_config(configure(FEAST_ONLINE="redis://:a,b@localhost:6379"))


def test_redis_credentials_and_tls_reach_feast_and_the_password_no_file(configure):
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

    settings = configure(FEAST_ONLINE="rediss://feast:p%40ss%3Atrue@cache.internal:6380/2")
    online = store.online_store_config(settings)
    nodes, params = RedisOnlineStore._parse_connection_string(online["connection_string"])
    assert nodes == [{"host": "cache.internal", "port": "6380"}]
    assert params == {"db": 2, "ssl": True, "username": "feast", "password": "p@ss:true"}
    # The client Feast builds from it: TLS, user and password (no connection is made here).
    client = RedisOnlineStore()._get_client(RedisOnlineStoreConfig(connection_string=online["connection_string"]))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("feast", "p@ss:true", 2)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    # A password made of digits stays a string (Feast JSON-decodes connection string values).
    plain = store.online_store_config(configure(FEAST_ONLINE="redis://:12345@localhost"))["connection_string"]
    assert RedisOnlineStore._parse_connection_string(plain)[1] == {"password": "12345"}
    # What is written to disk and printed holds no password.
    written = store.repo_config(settings, secrets=False)["online_store"]["connection_string"]
    assert "p@ss" not in written and "p%40ss" not in written and store.PASSWORD_PLACEHOLDER in written
    assert "p%40ss" not in str(settings.describe()) and "***" in settings.describe()["feast_online"]


@pytest.mark.integration
def test_a_password_protected_redis_is_used_with_its_password(configure, tmp_path):
    """A private redis-server with requirepass (skipped where the binary is missing; CI installs it)."""
    import shutil
    import subprocess
    import time

    import redis

    from tests.helpers import free_port

    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("no redis-server binary (.ci/run installs one)")
    port, password = free_port(), "s3cret-p@ss"
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, password=password)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        settings = configure(FEAST_ONLINE=f"redis://:{password.replace('@', '%40')}@127.0.0.1:{port}/3")
        _online_round_trip(settings, tmp_path)
        assert redis.Redis(port=port, password=password, db=3).dbsize() > 0
        assert password not in (settings.home / "feast" / "feature_store.yaml").read_text()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
    finally:
        server.terminate()
        server.wait(10)


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


def test_rolling_tone_statistics_per_machine_and_day():
    from features.tone_stats import rolling_stats

    day = datetime(2026, 3, 1, 8, tzinfo=UTC)
    images = pd.DataFrame(
        [
            {"machine_id": "vrs-01", "at": day, "brightness": 100.0},
            {"machine_id": "vrs-01", "at": day + timedelta(hours=1), "brightness": 110.0},
            {"machine_id": "vrs-01", "at": day + timedelta(hours=2), "brightness": 120.0},
            {"machine_id": "vrs-01", "at": day + timedelta(days=9), "brightness": 200.0},  # the window forgot day 1
            {"machine_id": "vrs-02", "at": day, "brightness": 150.0},
        ]
    ).assign(r_minus_g=5.0, r_minus_b=30.0, g_minus_b=25.0, b_diff=27.5)
    stats = rolling_stats(images, window_days=7)
    assert len(stats) == 3  # vrs-01 on two days, vrs-02 on one
    first, later, other = (stats.iloc[i] for i in range(3))
    assert (first.images, later.images, other.images) == (3, 1, 1)
    assert first.brightness_mean == pytest.approx(110) and first.brightness_std == pytest.approx(8.165, abs=1e-3)
    assert (
        later.brightness_mean == 200 and later.brightness_std == 0 and first.event_timestamp == day + timedelta(hours=2)
    )
    assert first.r_minus_b_mean == 30 and first.r_minus_b_std == 0


def test_tone_statistics_from_the_catalog_reach_the_online_store(settings, tmp_path, prefect_api):
    from features.tone_stats import write_source
    from tests.flows.helpers import ingest
    from tests.helpers import class_folder

    folder = class_folder(tmp_path / "caps", {"Spur": 6}, fmt="JPEG")
    files = sorted(p for p in folder.rglob("*.jpg"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,machine_id,captured_at\n"
        + "".join(
            f"{p.relative_to(tmp_path).as_posix()},Spur,{'vrs-01' if i < 4 else 'vrs-02'},"
            f"2026-03-0{1 + i % 2}T10:00:00\n"
            for i, p in enumerate(files)
        )
    )
    assert ingest(manifest, "--format", "csv", "--source", "color")["added"] == 6
    assert write_source(settings, window_days=7) == {
        "rows": 4,
        "machines": 2,
        "table": str(settings.home / "feast/data/machine_tone_stats.parquet"),
    }
    fs = store.open_store(settings)
    store.apply(settings, fs)
    assert store.materialize(settings, ["machine_tone_stats"], fs) == {"machine_tone_stats": 4}
    online = store.online_row(fs, "machine_tone_stats", {"machine_id": "vrs-01"})
    assert online["images"] == 4  # the latest row: both days inside the window
    from features.tone_stats import machine_images

    catalog = machine_images(settings)
    expected = catalog[catalog.machine_id == "vrs-01"]["brightness"]
    assert online["brightness_mean"] == pytest.approx(expected.mean(), abs=1e-3)
    assert online["brightness_std"] == pytest.approx(expected.std(ddof=0), abs=1e-3)
    assert store.online_row(fs, "machine_tone_stats", {"machine_id": "vrs-99"}) is None


def test_the_features_flow_refreshes_tone_statistics_and_keeps_camera_params(settings, tmp_path, prefect_api):
    from tests.flows.helpers import aoi, ingest
    from tests.helpers import class_folder

    files = sorted(class_folder(tmp_path / "caps", {"Spur": 3}, fmt="JPEG").rglob("*.jpg"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,machine_id\n" + "".join(f"{p.relative_to(tmp_path).as_posix()},Spur,vrs-07\n" for p in files)
    )
    ingest(manifest, "--format", "csv", "--source", "color")
    empty = aoi("machines", "refresh")  # no camera parameters yet: only what the catalog determines
    assert empty["online"] == {"machine_tone_stats": 1} and empty["tone_stats"]["machines"] == 1
    aoi("machines", "import", str(csv(tmp_path, "a.csv", "vrs-07,P-1,48,13,9,6,13,2026-01-05")))
    again = aoi("machines", "refresh")
    assert again["online"] == {"camera_params": 1, "machine_tone_stats": 1}
    fs = store.open_store(settings)
    assert store.online_row(fs, "machine_tone_stats", {"machine_id": "vrs-07"})["images"] == 3
    assert store.camera_params_online(fs, "vrs-07", "P-1")["light"] == 48


def test_the_pipeline_reads_through_its_versioned_feature_services(settings, tmp_path):
    """Online and point-in-time reads ask Feast for a feature service, not a list of feature references: with
    the service gone from the registry, the same reads fail while the view is still there."""
    from feast.errors import FeatureServiceNotFoundException

    from features import calibration
    from features.definitions import CALIBRATION_SERVICE, CAMERA_PARAMS_SERVICE

    fs = _applied(settings, tmp_path)
    assert store.camera_params_online(fs, "vrs-02", "P-1")["gain_r"] == 8.5
    assert calibration.online(fs, "vrs-02") is None  # through serving_v2, which also holds camera params
    rows = [{"machine_id": "vrs-02", "part_no": "P-1", "at": T0 + timedelta(days=1)}]
    assert store.camera_params_at(fs, rows)["exposure"].tolist() == [12]
    for service in (CAMERA_PARAMS_SERVICE, CALIBRATION_SERVICE):
        fs.delete_feature_service(service)
    fs.refresh_registry()
    assert fs.get_feature_view("camera_params").name == "camera_params"
    with pytest.raises(FeatureServiceNotFoundException):
        store.camera_params_online(fs, "vrs-02", "P-1")
    with pytest.raises(FeatureServiceNotFoundException):
        store.camera_params_at(fs, rows)
    with pytest.raises(FeatureServiceNotFoundException):
        calibration.online(fs, "vrs-02")


def _feast(repo, *args: str):
    """The real feast CLI in the repo folder, with this checkout importable (as an installed aoi is)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    feast = str(Path(sys.executable).with_name("feast"))
    return subprocess.run([feast, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_feast_plan_in_the_repo_finds_nothing_to_change_after_a_refresh(settings, tmp_path, prefect_api):
    """The repo under AOI_HOME is a real feature repository: `feast plan` there imports the definitions and finds
    the registry as `aoi machines import` and `aoi machines refresh` left it (a user's `feast apply` there
    would change nothing), materialised views included."""
    from tests.flows.helpers import aoi, ingest
    from tests.helpers import class_folder

    files = sorted(class_folder(tmp_path / "caps", {"Spur": 3}, fmt="JPEG").rglob("*.jpg"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,machine_id\n" + "".join(f"{p.relative_to(tmp_path).as_posix()},Spur,vrs-07\n" for p in files)
    )
    ingest(manifest, "--format", "csv", "--source", "color")
    aoi("machines", "import", str(csv(tmp_path, "a.csv", "vrs-07,P-1,48,13,9,6,13,2026-01-05")))
    assert aoi("machines", "refresh")["online"] == {"camera_params": 1, "machine_tone_stats": 1}
    plan = _feast(settings.home / "feast", "plan")
    assert plan.returncode == 0, (plan.stdout + plan.stderr)[-3000:]
    assert "No changes to registry" in plan.stdout and "No changes to infrastructure" in plan.stdout, plan.stdout
