"""The catalog on SQLite and PostgreSQL: migrations match the models, writes never duplicate, queries filter."""

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from aoi.catalog import db
from aoi.catalog.models import BatchStatus, Image, QuarantineEntry
from aoi.catalog.queries import GalleryFilter, images, label_counts, quarantine
from aoi.image_metrics import measure
from aoi.store import sha256_of
from ingest import records
from ingest.candidate import Candidate
from ingest.pipeline import Measured, Rejected
from tests.helpers import image_bytes


def _measured(seed: int, label: str | None = "SPUR", size=(32, 32), machine: str | None = None) -> Measured:
    data = image_bytes(size=size, seed=seed)
    candidate = Candidate(file=f"x/{seed}.png", origin=f"in/x/{seed}.png", label=label, machine_id=machine)
    return Measured(candidate, data, sha256_of(data), measure(data))


def test_migrations_build_exactly_the_models_schema(catalog_url):
    assert db.upgrade(catalog_url) == db.head_revision()
    engine = db.make_engine(catalog_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_records_never_duplicate_images_or_quarantine_entries(catalog_url):
    batch = records.open_batch(catalog_url, "folder", "/in", {"source": "color"})
    items = [_measured(1), _measured(2, label=None)]
    bad = Rejected(Candidate(file="x/bad.jpg", origin="in/x/bad.jpg"), "empty file (0 bytes)")
    first = records.record_chunk(catalog_url, batch, items, [bad], None)
    again = records.record_chunk(catalog_url, batch, items, [bad], None)
    assert first == {"added": 2, "by_label": {"SPUR": 1, "(unlabeled)": 1}}
    assert again["added"] == 0
    with db.session(catalog_url) as s:
        assert len(s.exec(select(Image)).all()) == 2
        assert len(s.exec(select(QuarantineEntry)).all()) == 1
        statuses = {row.label: row.status for row in s.exec(select(Image)).all()}
    assert statuses == {"SPUR": "labeled", None: "unlabeled"}
    closed = records.close_batch(catalog_url, batch, {"discovered": 3})
    assert (closed.added, closed.quarantined, closed.status) == (2, 1, BatchStatus.succeeded)


def test_an_unfinished_batch_is_resumed_and_a_finished_one_is_not(catalog_url):
    first = records.open_batch(catalog_url, "folder", "/in", {"source": None})
    assert records.open_batch(catalog_url, "folder", "/in", {"source": None}) == first
    assert records.open_batch(catalog_url, "folder", "/in", {"source": "gray"}) != first
    records.close_batch(catalog_url, first, {})
    assert records.open_batch(catalog_url, "folder", "/in", {"source": None}) != first


def test_gallery_filters_and_times_in_utc(catalog_url):
    batch = records.open_batch(catalog_url, "folder", "/in", {})
    records.record_chunk(
        catalog_url,
        batch,
        [_measured(1, "SPUR", (32, 32), "M1"), _measured(2, "SPUR", (64, 48), "M2"), _measured(3, "OPEN", (64, 64))],
        [],
        None,
    )
    assert {r["label"] for r in images(catalog_url, GalleryFilter(label="SPUR"))} == {"SPUR"}
    assert len(images(catalog_url, GalleryFilter(min_width=64))) == 2
    assert len(images(catalog_url, GalleryFilter(min_width=64, min_height=64))) == 1
    assert [r["machine_id"] for r in images(catalog_url, GalleryFilter(machine_id="M2"))] == ["M2"]
    now = datetime.now(UTC)
    assert len(images(catalog_url, GalleryFilter(since=now - timedelta(minutes=5)))) == 3
    assert images(catalog_url, GalleryFilter(until=now - timedelta(minutes=5))) == []
    assert len(images(catalog_url, GalleryFilter(limit=2))) == 2
    row = images(catalog_url, GalleryFilter(label="OPEN"))[0]
    assert datetime.fromisoformat(row["ingested_at"]).utcoffset() == timedelta(0)
    assert row["source"] == "color" and row["format"] == "PNG"
    counts = {(r["label"], r["status"]): r["images"] for r in label_counts(catalog_url)}
    assert counts == {("OPEN", "labeled"): 1, ("SPUR", "labeled"): 2}
    assert quarantine(catalog_url) == []


def test_name_filter_ignores_case_and_treats_wildcards_literally(catalog_url):
    batch = records.open_batch(catalog_url, "folder", "/in", {})
    spur, odd = _measured(1), _measured(2)
    spur.candidate.file, odd.candidate.file = "x/Board_SPUR_1.png", "x/100%_b.png"
    records.record_chunk(catalog_url, batch, [spur, odd], [], None)
    assert [r["file_name"] for r in images(catalog_url, GalleryFilter(name_contains="spur"))] == ["Board_SPUR_1.png"]
    assert [r["file_name"] for r in images(catalog_url, GalleryFilter(name_contains="0%_"))] == ["100%_b.png"]
    assert images(catalog_url, GalleryFilter(name_contains="%")) == [
        images(catalog_url, GalleryFilter(name_contains="100"))[0]
    ]


def test_store_check_fixes_old_orphans_only(settings):
    import os
    import time

    from aoi.catalog.queries import store_check
    from aoi.store import ImageStore

    store = ImageStore(settings.store_dir)
    young, old = store.put(b"young"), store.put(b"old")
    past = time.time() - 3600
    os.utime(store.path_for(old), (past, past))
    report = store_check(settings, fix=True)
    assert sorted(report["orphans"]) == sorted([young, old]) and report["fixed"] == 1
    assert store.has(young) and not store.has(old)


def test_store_check_keeps_the_images_of_kept_answers_until_they_are_dropped(settings):
    import os
    import time

    from aoi.catalog import db
    from aoi.catalog.models import KeptAnswer, KeptAnswerStatus
    from aoi.catalog.queries import store_check
    from aoi.store import ImageStore
    from tests.workbench.kept_helpers import keep

    store = ImageStore(settings.store_dir)
    answer = keep(settings, b"a kept answer's bytes", request_id="r-1")
    past = time.time() - 3600
    os.utime(store.path_for(answer.sha256), (past, past))
    report = store_check(settings, fix=True)
    assert report["ok"] and report["kept_answer_images"] == 1 and report["fixed"] == 0 and store.has(answer.sha256)
    with db.session(settings.catalog_url) as s:
        row = s.get(KeptAnswer, answer.id)
        assert row is not None
        row.status = KeptAnswerStatus.dropped
        s.add(row)
        s.commit()
    report = store_check(settings, fix=True)
    assert report["orphans"] == [answer.sha256] and report["fixed"] == 1 and not store.has(answer.sha256)


def _one_row_per_table(connection) -> dict[str, int]:
    """Fill every table with one row (ids 1, so foreign keys point at each other's rows); returns the tables."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    metadata.reflect(connection)
    samples = {sa.Integer: 1, sa.Float: 1.0, sa.Boolean: False, sa.JSON: {}, sa.DateTime: datetime(2026, 1, 1)}
    for table in metadata.sorted_tables:  # referenced tables first
        if table.name == "alembic_version":
            continue
        row = {}
        for column in table.columns:
            if column.nullable and not column.primary_key:
                continue
            kind = next((value for base, value in samples.items() if isinstance(column.type, base)), "x")
            row[column.name] = kind
        connection.execute(table.insert().values(**row))
    return {t.name: 1 for t in metadata.sorted_tables if t.name != "alembic_version"}


@pytest.mark.parametrize("start", ["0001", "0003", "0005", "0006"])
def test_a_populated_sqlite_catalog_upgrades_to_head_keeping_its_rows(aoi_home, start):
    """SQLite alters tables by copy and drop; with rows that reference them, that used to fail mid-upgrade."""
    import sqlalchemy as sa

    url = f"sqlite:///{aoi_home / 'old.db'}"
    assert db.upgrade(url, start) == start
    engine = db.make_engine(url)
    with engine.begin() as connection:
        filled = _one_row_per_table(connection)
    assert db.upgrade(url) == db.head_revision()
    with engine.connect() as connection:
        counts = {name: connection.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar() for name in filled}
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # enforcement is back on
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    engine.dispose()
    assert counts == filled
