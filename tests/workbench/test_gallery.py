"""The gallery: each filter narrows to the right generated rows, counts per label, keyset paging, thumbnails."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import event
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import IngestBatch, QuarantineEntry, UserRole
from tests.workbench.helpers import LABELS, MACHINES, PARTS, START, fill_catalog, logged_in, png
from workbench import thumbs
from workbench.app import create_app

N = 120
_ID = re.compile(r'<div class="tile" data-id="(\d+)"')


def shown(html: str) -> list[int]:
    return [int(i) for i in _ID.findall(html)]


@pytest.fixture
def gallery(configure):
    """(client logged in as a viewer, ids of N generated rows), every match on one page."""
    settings = configure(WORKBENCH__PAGE_SIZE=1000)
    ids = fill_catalog(settings, N)
    with TestClient(create_app(settings)) as client:
        yield logged_in(client, UserRole.viewer), ids


def expected(ids: list[int], keep) -> list[int]:
    """The ids of rows k with keep(k), newest first as the gallery lists them."""
    return sorted((ids[k] for k in range(N) if keep(k)), reverse=True)


def test_without_filters_every_image_is_shown_newest_first(gallery):
    client, ids = gallery
    assert shown(client.get("/gallery").text) == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    "query,keep",
    [
        ("source=gray", lambda k: k % 2 == 0),
        ("source=color", lambda k: k % 2 == 1),
        ("label=Spur", lambda k: LABELS[k % 6] == "Spur"),
        ("status=excluded", lambda k: k % 10 == 7),
        ("status=deleted", lambda k: k % 10 == 9),
        ("status=labeled", lambda k: k % 10 not in (7, 9)),
        ("status=labelled", lambda k: k % 10 not in (7, 9)),
        ("status=unlabeled", lambda k: False),
        ("machine=AOI-2", lambda k: MACHINES[k % 3] == "AOI-2"),
        ("part=P-200", lambda k: PARTS[k % 2] == "P-200"),
        ("since=2026-01-01T10:00:00Z&until=2026-01-01T20:00:00Z", lambda k: 10 <= k < 20),
        ("since=2026-01-05", lambda k: k >= 96),
        ("min_size=35", lambda k: 30 + k % 50 >= 35),
        ("max_size=40", lambda k: 30 + k % 50 <= 40),
        ("min_size=45&max_size=60", lambda k: 45 <= 30 + k % 50 <= 60 and 40 >= 45),
        ("name=IMG_0_1", lambda k: "img_0_1" in f"img_0_{k}.png"),
        ("name=_1", lambda k: "_1" in f"img_0_{k}.png"),  # _ is a character, not a LIKE wildcard
        ("source=gray&label=Short&machine=AOI-1", lambda k: k % 2 == 0 and k % 6 == 0 and k % 3 == 0),
    ],
)
def test_each_filter_narrows_to_exactly_its_rows(gallery, query, keep):
    client, ids = gallery
    response = client.get(f"/gallery?{query}")
    assert response.status_code == 200, response.text
    assert shown(response.text) == expected(ids, keep)


def test_the_batch_filter(gallery, settings):
    client, ids = gallery
    with db.session(settings.catalog_url) as s:
        second = s.exec(select(IngestBatch.id).where(IngestBatch.key == "gen-0-1")).one()
    assert shown(client.get(f"/gallery?batch={second}").text) == expected(ids, lambda k: k >= N // 2)


def test_excluded_images_show_their_reason(gallery):
    client, _ = gallery
    page = client.get("/gallery?status=excluded").text
    assert page.count("tone out of spec") >= len(shown(page)) > 0


def test_counts_per_label_follow_the_other_filters(gallery):
    client, _ = gallery
    assert 'data-src="/gallery/counts?source=gray&amp;label=Spur"' in client.get("/gallery?source=gray&label=Spur").text
    page = client.get("/gallery/counts?source=gray&label=Spur").text
    counts = dict(re.findall(r'data-label="([^"]*)"[^>]*>[^<]*<span class="count">(\d+)</span>', page))
    want = {label: sum(1 for k in range(N) if k % 2 == 0 and LABELS[k % 6] == label) for label in LABELS}
    assert {k: int(v) for k, v in counts.items()} == {k: v for k, v in want.items() if v}
    assert re.search(r'id="matching">0<', page)  # gray rows are never Spur (k even, Spur is k % 6 == 1)


@pytest.mark.parametrize(
    "query,word",
    [
        ("status=bogus", "status"),
        ("source=purple", "source"),
        ("batch=abc", "batch"),
        ("batch=0", "batch"),
        ("since=yesterday", "since"),
        ("since=2026-02-01&until=2026-01-01", "before until"),
        ("min_size=-3", "min_size"),
        ("min_size=50&max_size=10", "max_size"),
        ("after=x", "after"),
        ("after=5&before=9", "not both"),
        ("name=" + "x" * 200, "name"),
    ],
)
def test_invalid_filter_values_are_a_400_with_a_message(gallery, query, word):
    client, _ = gallery
    response = client.get(f"/gallery?{query}")
    assert response.status_code == 400
    assert word in response.text
    if "after" not in query and "before" not in query:
        counts = client.get(f"/gallery/counts?{query}")
        assert counts.status_code == 400 and word in counts.text


def test_quarantined_files_are_listed_with_their_reason(gallery, settings):
    client, _ = gallery
    with db.session(settings.catalog_url) as s:
        batch = s.exec(select(IngestBatch).where(IngestBatch.key == "gen-0-0")).one()
        for i, reason in enumerate(["truncated JPEG", "decompression bomb: 90000000 pixels"]):
            s.add(
                QuarantineEntry(
                    batch_id=batch.id or 0,
                    file=f"bad_{i}.jpg",
                    origin=f"in/bad_{i}.jpg",
                    origin_key=f"{i:064d}",
                    fingerprint="",
                    reason=reason,
                )
            )
        s.commit()
    page = client.get("/gallery?status=quarantined").text
    assert page.count('data-status="quarantined"') == 2
    assert "truncated JPEG" in page and "decompression bomb" in page
    assert shown(page) == []  # no catalog image among them
    named = client.get("/gallery?status=quarantined&name=bad_1").text
    assert named.count('data-status="quarantined"') == 1 and "decompression bomb" in named
    assert client.get("/gallery?status=quarantined&label=Spur").text.count('data-status="quarantined"') == 0
    assert re.search(
        r'status=quarantined" class="status-quarantined">quarantined <span class="count">2<',
        client.get("/gallery/counts").text,
    )


def _walk(client: TestClient, query: str) -> list[list[int]]:
    """Every page of a listing, following its "older" links."""
    pages, url = [], f"/gallery?{query}"
    while url:
        html = client.get(url).text
        pages.append(shown(html))
        link = re.search(r'href="([^"]+)" rel="next"', html)
        url = link.group(1).replace("&amp;", "&") if link else ""
        assert len(pages) < 100
    return pages


@pytest.mark.parametrize("query,keep", [("", lambda k: True), ("source=color", lambda k: k % 2 == 1)])
def test_pages_are_disjoint_and_complete(configure, query, keep):
    settings = configure(WORKBENCH__PAGE_SIZE=7)
    ids = fill_catalog(settings, 50)
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        pages = _walk(client, query)
        flat = [i for page in pages for i in page]
        want = sorted((ids[k] for k in range(50) if keep(k)), reverse=True)
        assert flat == want  # in order, none twice, none missing
        assert all(len(p) == 7 for p in pages[:-1]) and 0 < len(pages[-1]) <= 7
        # "newer" from the third page leads back to the second
        third = client.get(f"/gallery?{query}&after={pages[1][-1]}").text
        back = re.search(r'href="([^"]+)" rel="prev"', third)
        assert back is not None
        assert shown(client.get(back.group(1).replace("&amp;", "&")).text) == pages[1]


def test_paging_never_uses_offset(configure):
    settings = configure(WORKBENCH__PAGE_SIZE=5)
    fill_catalog(settings, 30)
    statements: list[tuple[str, tuple]] = []
    engine = db.get_engine(settings.catalog_url)

    def record(conn, cursor, statement, parameters, *args):
        statements.append((statement.upper(), tuple(parameters)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with TestClient(create_app(settings)) as client:
            logged_in(client, UserRole.viewer)
            _walk(client, "source=gray")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    pages = [(q, p) for q, p in statements if "FROM IMAGE" in q and "LIMIT" in q]
    assert len(pages) == 3  # 15 gray rows, 5 a page
    # SQLAlchemy's SQLite dialect writes "LIMIT ? OFFSET ?" for every LIMIT: the offset given must be 0
    assert all(p[-1] == 0 for q, p in pages if q.rstrip().endswith("OFFSET ?")), pages


def test_a_thumbnail_is_made_once_then_served_from_the_store(configure):
    settings = configure()
    ids = fill_catalog(settings, 3, with_bytes=2)
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        before = thumbs.made()
        first = client.get(f"/images/{ids[0]}/thumb")
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        assert thumbs.made() == before + 1
        with db.session(settings.catalog_url) as s:
            from aoi.catalog.models import Image

            image = s.get(Image, ids[0])
            assert image is not None
            path = thumbs.thumb_path(settings, image.sha256)
        assert path.is_file() and path.is_relative_to(settings.store_dir / "thumbs")
        stamp = path.stat().st_mtime_ns
        second = client.get(f"/images/{ids[0]}/thumb")
        assert second.content == first.content
        assert thumbs.made() == before + 1 and path.stat().st_mtime_ns == stamp
        # a row whose bytes are not in the store gets a placeholder, and nothing is written
        missing = client.get(f"/images/{ids[2]}/thumb")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("image/svg")
        assert thumbs.made() == before + 1


def test_thumbnails_fit_128_pixels_and_keep_gray_gray():
    for mode, size in (("RGB", (300, 200)), ("L", (90, 400))):
        data = thumbs.make_thumbnail(png(1, size, mode))
        with PILImage.open(io.BytesIO(data)) as picture:
            assert picture.format == "JPEG" and max(picture.size) == 128
            assert picture.mode == mode
    small = thumbs.make_thumbnail(png(2, (40, 30)))
    with PILImage.open(io.BytesIO(small)) as picture:
        assert picture.size == (40, 30)  # never enlarged


def test_the_store_listing_does_not_count_thumbnails(configure):
    from aoi.store import ImageStore

    settings = configure()
    ids = fill_catalog(settings, 2, with_bytes=2)
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        assert client.get(f"/images/{ids[0]}/thumb").status_code == 200
    assert len(set(ImageStore(settings.store_dir).digests())) == 2


def test_the_date_filter_reads_capture_time(gallery):
    client, ids = gallery
    at = START + timedelta(hours=5)
    page = client.get(f"/gallery?since={at.isoformat().replace('+00:00', 'Z')}&until=2026-01-01T06:00:00Z").text
    assert shown(page) == [ids[5]]
