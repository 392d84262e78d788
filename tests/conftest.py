"""Fixtures that point every service at a temporary folder: AOI_HOME, the catalog, Prefect.

Real parts throughout: a Prefect test server (one per session), SQLite files, and PostgreSQL when
``AOI_TEST_PG_URL`` names a reachable server (``.ci/run`` starts one).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Prefect reads PREFECT_HOME when it is first imported: keep its files out of the user's home folder.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="aoi-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_DIR / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)
for _name in [
    n
    for n in os.environ
    if n.startswith("AOI_") and n not in ("AOI_DATASETS_DIR", "AOI_TEST_PG_URL", "AOI_TEST_REDIS_URL")
]:
    os.environ.pop(_name)

from aoi.catalog import db
from aoi.settings import Settings, get_settings
from tests.helpers import forget_settings, fresh_settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--studies", action="store_true", help="also run the studies (minutes each; marker `study`)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A study measures (its figures go to docs/measurements.md) and takes many minutes: on demand only, so the
    suite stays within its CI time."""
    if config.getoption("--studies"):
        return
    skip = pytest.mark.skip(reason="a study: many minutes; run with --studies")
    for item in items:
        if item.get_closest_marker("study"):
            item.add_marker(skip)


@pytest.fixture
def aoi_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """A fresh AOI_HOME (and SQLite catalog in it) for one test."""
    home = tmp_path / "aoi_home"
    monkeypatch.setenv("AOI_HOME", str(home))
    monkeypatch.delenv("AOI_DB_URL", raising=False)
    fresh_settings()
    yield home
    from flows.prefect_server import stop_server

    try:
        leaked = stop_server(fresh_settings())  # a CLI call without the prefect_api fixture starts one here
    except ValueError:  # the test left deliberately invalid AOI_* settings: it started nothing
        leaked = False
    forget_settings()
    assert not leaked, "this test started a local Prefect server in its AOI_HOME: give it the prefect_api fixture"


@pytest.fixture
def settings(aoi_home) -> Settings:
    return get_settings()


@pytest.fixture
def configure(monkeypatch, aoi_home):
    """Set AOI_* variables for one test and get the resulting settings: configure(INGEST__CHUNK_SIZE=10)."""

    def apply(**env) -> Settings:
        for key, value in env.items():
            monkeypatch.setenv(f"AOI_{key}", str(value))
        return fresh_settings()

    return apply


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect test server for the whole session; its URL is exported so CLI runs and subprocesses use it."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        yield url
        os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def asgi_app():
    """The service's ASGI app, built once: BentoML registers its Prometheus metrics per app, and a second app in
    one process collides. Each ``TestClient(asgi_app)`` block still starts a fresh service instance with the
    settings of its test (the instance is made at app start-up)."""
    from serving.service import Classifier

    # @bentoml.service turns the class into a Service at run time; its annotations keep the class type.
    return Classifier.to_asgi()  # type: ignore[attr-defined]


def _pg_admin_url() -> str | None:
    return os.environ.get("AOI_TEST_PG_URL")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of the test PostgreSQL server; the test is skipped when there is none."""
    url = _pg_admin_url()
    if not url:
        pytest.skip("no PostgreSQL: set AOI_TEST_PG_URL (.ci/run starts a server and sets it)")
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as err:
        pytest.skip(f"PostgreSQL at AOI_TEST_PG_URL not reachable: {err}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_database(pg_server) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"aoi_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    yield url
    db.reset_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request, aoi_home, monkeypatch) -> str:
    """The catalog on SQLite and on PostgreSQL (skipped without a server); AOI_DB_URL points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{aoi_home / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    monkeypatch.setenv("AOI_DB_URL", url)
    fresh_settings()
    return url


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real public data sets (AOI_DATASETS_DIR; the Makefile points it at ../shared/datasets)."""
    path = Settings().datasets_dir
    if not (path / "pku-pcb-roi").is_dir() or not (path / "DeepPCB" / "PCBData").is_dir():
        message = f"real data sets not found under AOI_DATASETS_DIR={path}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has ../shared/datasets: a silent skip would hide a broken setting
        pytest.skip(message)
    return path
