"""Engines, sessions and migrations for the catalog, on SQLite (default) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
IN_CHUNK = 500  # values per IN (...) list: bind parameters per statement are limited (PostgreSQL: 65,535)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling lets DDL escape a rollback; take control so that a migration
    # killed half-way leaves nothing behind (SQLAlchemy's documented recipe, with the "begin" hook below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the CLI, the UI) work while an ingest writes; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """A new engine for ``url``; a SQLite file's folder is created here, on first use, not at import."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE: a transaction takes the write lock up front and waits for it (busy_timeout), rather than
        # failing with SQLITE_BUSY when it turns from reading to writing after another writer committed.
        # Transactions here are short (one ingest chunk), so readers wait milliseconds at most.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str):

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["sqlalchemy_url"] = url
    return cfg


def _raw(connection: Connection):
    """The driver's own connection under a checked-out pool connection (always there while it is checked out)."""
    raw = connection.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the catalog connection is closed")
    return raw


def upgrade(url: str, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; returns the revision the database is at afterwards."""

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite alters a table by copying it and dropping the old one, which a table that others
                # reference refuses while foreign keys are enforced (a populated catalog could not upgrade).
                # SQLite's own recipe: enforcement off outside the transaction, a foreign_key_check inside it.
                _raw(connection).execute("PRAGMA foreign_keys=OFF")
            # One transaction, serialised between processes: two commands on a fresh AOI_HOME must not both
            # create the tables. SQLite: BEGIN IMMEDIATE takes the write lock; PostgreSQL: an advisory lock.
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242000001)")
                cfg = alembic_config(url)
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:  # raising rolls the whole upgrade back
                        raise RuntimeError(f"the upgraded catalog breaks foreign keys: {broken[:5]}")
            if sqlite:
                _raw(connection).execute("PRAGMA foreign_keys=ON")
        return current_revision(engine)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str) -> Engine:
    """The process's engine for ``url``, migrated to head on first use."""
    engine = _ENGINES.get(url)
    if engine is None:
        engine = make_engine(url)
        if current_revision(engine) != head_revision():
            upgrade(url)
        _ENGINES[url] = engine
    return engine


def session(url: str) -> Session:
    return Session(get_engine(url), expire_on_commit=False)


def reset_engines() -> None:
    """Dispose the cached engines (tests that switch databases call this)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


Row = TypeVar("Row", bound=SQLModel)


def get_row(s: Session, model: type[Row], key: Any, **options: Any) -> Row:
    """The row with this primary key, which must exist: an id this code wrote, or a foreign key."""
    row = s.get(model, key, **options)
    if row is None:
        raise LookupError(f"no {model.__name__} with id {key}")
    return row


def saved_id(row: Any) -> int:
    """A committed row's primary key (the models declare it optional: it is None until the row is saved)."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} has no id: it was never saved")
    return int(row.id)
