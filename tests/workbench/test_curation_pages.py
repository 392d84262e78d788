"""Curation through the workbench's routes (ASGI test client): engineers curate, viewers get 403, a POST without
its CSRF token gets 403, refusals change nothing, and every action redirects back with a flash message."""

from __future__ import annotations

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Image, ImageChange, ImageStatus, UserRole
from tests.workbench.curation_helpers import crops
from tests.workbench.helpers import logged_in, token


def row(settings, image_id: int) -> Image:
    with db.session(settings.catalog_url) as s:
        return db.get_row(s, Image, image_id)


def history(settings) -> list[ImageChange]:
    with db.session(settings.catalog_url) as s:
        return list(s.exec(select(ImageChange).order_by(col(ImageChange.id))).all())


def test_an_engineer_relabels_from_the_image_page_and_sees_it_in_the_history(settings, client):
    ids = crops(settings.catalog_url, 2)
    target = ids["PASS"][0]
    logged_in(client, UserRole.engineer, "eng")
    page = client.get(f"/images/{target}").text
    assert 'id="relabel-form"' in page and f'action="/images/{target}/relabel"' in page
    assert '<option value="PINHOLE"' in page and '<option value="MISSING_HOLE"' not in page  # gray labels only
    response = client.post(
        f"/images/{target}/relabel",
        data={"label": "OPEN", "reason": "the trace is cut", "csrf_token": token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == f"/images/{target}"
    assert row(settings, target).label == "OPEN"
    (change,) = history(settings)
    assert (change.by, change.via, change.reason, change.old_label) == ("eng", "web", "the trace is cut", "PASS")
    shown = client.get(f"/images/{target}").text
    assert f"Relabelled image {target} as OPEN." in shown and 'id="flash"' in shown
    assert "the trace is cut" in shown.split('id="history"')[1]
    assert 'id="flash"' not in client.get(f"/images/{target}").text, "a flash message shows once"


def test_a_selection_is_excluded_relabelled_and_deleted_from_the_gallery(settings, client):
    ids = crops(settings.catalog_url, 3)
    chosen = ids["OPEN"]
    logged_in(client, UserRole.reviewer, "rev")  # reviewers may do what engineers may
    gallery = client.get("/gallery?source=gray").text
    assert 'formaction="/images/selection/exclude"' in gallery
    response = client.post(
        "/images/selection/exclude",
        data={
            "image_id": [str(i) for i in chosen],
            "reason": "smeared",
            "next": "/gallery?source=gray",
            "csrf_token": token(client),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/gallery?source=gray"
    assert [row(settings, i).status for i in chosen] == [ImageStatus.excluded] * 3
    assert f"Excluded {len(chosen)} images." in client.get("/gallery?source=gray").text
    client.post(
        "/images/selection/relabel",
        data={
            "image_id": [str(i) for i in ids["SHORT"][:2]],
            "label": "SPUR",
            "reason": "copper sticks out",
            "csrf_token": token(client),
        },
    )
    assert [row(settings, i).label for i in ids["SHORT"][:2]] == ["SPUR", "SPUR"]
    answer = client.post(
        "/images/selection/delete",
        data={"image_id": [str(ids["PASS"][0])], "reason": "duplicate", "csrf_token": token(client)},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200 and answer.json()["images"][0]["new_status"] == "deleted"
    assert {c.by for c in history(settings)} == {"rev"} and len(history(settings)) == 6


def test_refusals_flash_the_reason_and_change_nothing(settings, client):
    ids = crops(settings.catalog_url, 1)
    target = ids["PASS"][0]
    logged_in(client, UserRole.engineer)
    response = client.post(
        f"/images/{target}/exclude", data={"reason": " ", "csrf_token": token(client)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "a reason is required" in client.get(f"/images/{target}").text
    answer = client.post(
        f"/images/{target}/relabel",
        data={"label": "PASS", "reason": "same", "csrf_token": token(client)},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 400 and "already PASS" in answer.json()["error"]
    answer = client.post(
        "/images/selection/delete",
        data={"image_id": [str(target), "424242"], "reason": "x", "csrf_token": token(client)},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 400 and "no image 424242" in answer.json()["error"]
    assert row(settings, target).status == ImageStatus.labeled and history(settings) == []


def test_a_viewer_cannot_curate_and_a_form_without_its_csrf_token_is_refused(settings, client):
    ids = crops(settings.catalog_url, 1)
    target = ids["PASS"][0]
    logged_in(client, UserRole.viewer, "viv")
    page = client.get(f"/images/{target}").text
    assert 'id="relabel-form"' not in page and 'id="curate-selection"' not in client.get("/gallery").text
    for path, data in [
        (f"/images/{target}/delete", {"reason": "x"}),
        ("/images/selection/exclude", {"image_id": str(target), "reason": "x"}),
    ]:
        response = client.post(path, data={**data, "csrf_token": token(client)}, follow_redirects=False)
        assert response.status_code == 403 and "engineers curate" in response.text
    client.post("/logout", data={"csrf_token": token(client)})
    logged_in(client, UserRole.engineer, "eng")
    for data in [{"reason": "x"}, {"reason": "x", "csrf_token": "forged"}]:
        response = client.post(f"/images/{target}/delete", data=data, follow_redirects=False)
        assert response.status_code == 403 and "CSRF" in response.text
    assert row(settings, target).status == ImageStatus.labeled and history(settings) == []


def test_without_a_session_a_post_gets_401(settings, client):
    ids = crops(settings.catalog_url, 1)
    response = client.post(f"/images/{ids['PASS'][0]}/delete", data={"reason": "x"}, follow_redirects=False)
    assert response.status_code in (401, 403) and history(settings) == []


def test_relabelling_a_blind_image_says_it_stays_behind_the_wall(settings, client):
    from datasets.versions import register_blind

    ids = crops(settings.catalog_url, 2)
    target = ids["OPEN"][0]
    register_blind(settings.catalog_url, "blind-0717", shas={row(settings, target).sha256})
    logged_in(client, UserRole.engineer)
    page = client.post(
        f"/images/{target}/relabel", data={"label": "NICK", "reason": "a bite", "csrf_token": token(client)}
    ).text  # the redirect followed: the image page with its flash
    assert "1 of them belong to blind sets and stay behind the blind wall" in page
    with db.session(settings.catalog_url) as s:
        from aoi.catalog.models import HashClaim

        assert db.get_row(s, HashClaim, row(settings, target).sha256).role == "blind"
