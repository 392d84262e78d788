"""Accounts, login and logout, roles, CSRF and the session cookie, through the ASGI test client."""

from __future__ import annotations

import stat

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import AppUser, UserRole
from tests.workbench.helpers import PASSWORD, csrf_of, logged_in, token, user_of
from workbench import auth
from workbench.app import LOGIN_FAILED, create_app


def _login(client: TestClient, name: str, password: str, next_url: str = "/gallery"):
    form = {"username": name, "password": password, "csrf_token": csrf_of(client.get("/login").text), "next": next_url}
    return client.post("/login", data=form, follow_redirects=False)


def test_a_page_without_login_redirects_to_login_and_back_after_it(client, settings):
    response = client.get("/gallery?label=Spur", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fgallery%3Flabel%3DSpur"
    name = user_of(settings, UserRole.viewer)
    response = _login(client, name, PASSWORD, next_url="/gallery?label=Spur")
    assert response.status_code == 303 and response.headers["location"] == "/gallery?label=Spur"
    page = client.get("/gallery?label=Spur")
    assert page.status_code == 200 and name in page.text and "viewer" in page.text


def test_an_api_call_or_post_without_login_gets_401_not_a_redirect(client):
    assert client.get("/gallery", headers={"Accept": "application/json"}, follow_redirects=False).status_code == 401
    assert client.get("/images/1/thumb", headers={"Accept": "application/json"}).status_code == 401


def test_logout_ends_the_session(client):
    logged_in(client, UserRole.engineer)
    assert client.get("/gallery", follow_redirects=False).status_code == 200
    response = client.post("/logout", data={"csrf_token": token(client)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/gallery", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_user_get_the_same_answer(client, settings):
    name = user_of(settings, UserRole.viewer)
    wrong = _login(client, name, "not the password")
    unknown = _login(client, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert LOGIN_FAILED in wrong.text and LOGIN_FAILED in unknown.text
    assert "nobody" in unknown.text  # the name typed stays in the form; nothing says which part was wrong
    assert client.get("/gallery", follow_redirects=False).status_code == 303


def test_a_disabled_account_cannot_log_in_and_its_session_ends(client, settings):
    logged_in(client, UserRole.engineer, name="carol")
    assert client.get("/gallery", follow_redirects=False).status_code == 200
    with db.session(settings.catalog_url) as s:
        user = auth.find_user(s, "carol")
        assert user is not None
        user.disabled = True
        s.add(user)
        s.commit()
    assert client.get("/gallery", follow_redirects=False).status_code == 303
    assert _login(client, "carol", PASSWORD).status_code == 401


def test_login_never_redirects_to_another_site(client, settings):
    name = user_of(settings, UserRole.viewer)
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        response = _login(client, name, PASSWORD, next_url=target)
        assert response.headers["location"] == "/gallery", target
        client.cookies.clear()


def test_only_the_argon2_hash_is_stored(settings):
    with db.session(settings.catalog_url) as s:
        auth.add_user(s, "dave", UserRole.reviewer, "a long secret password")
        stored = s.exec(select(AppUser).where(AppUser.name == "dave")).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "a long secret password" not in stored.password_hash
    assert auth.verify_password(stored.password_hash, "a long secret password")
    assert not auth.verify_password(stored.password_hash, "a long secret passwore")


@pytest.mark.parametrize(
    "name,role,password,problem",
    [
        ("erin", "reviewer", "short", "at least"),
        ("erin", "admin", "long enough password", "role"),
        ("has space", "viewer", "long enough password", "user name"),
    ],
)
def test_add_user_refuses_bad_input(settings, name, role, password, problem):
    with db.session(settings.catalog_url) as s, pytest.raises(ValueError, match=problem):
        auth.add_user(s, name, role, password)


def test_add_user_refuses_a_duplicate(settings):
    with db.session(settings.catalog_url) as s:
        auth.add_user(s, "frank", "viewer", "long enough password")
        with pytest.raises(ValueError, match="exists"):
            auth.add_user(s, "frank", "engineer", "another long password")


def _app_with_guarded_routes(settings):
    """The workbench plus a tiny router whose routes need engineer and reviewer (a curation-like and an
    approval-like action)."""
    app = create_app(settings)
    router = APIRouter()

    @router.post("/test-only/curate")
    def curate(user: AppUser = Depends(auth.require(UserRole.engineer))) -> dict:
        return {"by": user.name}

    @router.post("/test-only/approve")
    def approve(user: AppUser = Depends(auth.require(UserRole.reviewer))) -> dict:
        return {"by": user.name}

    app.include_router(router)
    return app


@pytest.mark.parametrize(
    "role,curate,approve",
    [("viewer", 403, 403), ("engineer", 200, 403), ("reviewer", 200, 200)],
)
def test_roles_are_ordered_viewer_engineer_reviewer(settings, role, curate, approve):
    with TestClient(_app_with_guarded_routes(settings)) as client:
        logged_in(client, role)
        csrf = {"csrf_token": token(client)}
        first = client.post("/test-only/curate", data=csrf, headers={"Accept": "text/html"})
        second = client.post("/test-only/approve", data=csrf, headers={"Accept": "text/html"})
    assert (first.status_code, second.status_code) == (curate, approve)
    if curate == 200:
        assert first.json() == {"by": f"{role}1"}  # the identity is the logged-in user
    else:
        assert "engineers curate" in first.text
    if approve == 403:
        assert "reviewers approve" in second.text


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(settings):
    with TestClient(_app_with_guarded_routes(settings)) as client:
        logged_in(client, UserRole.reviewer)
        good = token(client)
        assert client.post("/test-only/curate").status_code == 403
        refused = client.post("/test-only/curate", data={"csrf_token": "x" + good[1:]})
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert client.post("/test-only/curate", data={"other": "1"}).status_code == 403
        assert client.post("/test-only/curate", data={"csrf_token": good}).status_code == 200
        assert client.post("/test-only/curate", headers={auth.CSRF_HEADER: good}).status_code == 200  # fetch()
        assert client.post("/test-only/curate", headers={auth.CSRF_HEADER: "nope"}).status_code == 403


def test_the_login_form_needs_its_csrf_token_too(client, settings):
    name = user_of(settings, UserRole.viewer)
    client.get("/login")
    response = client.post("/login", data={"username": name, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/gallery", follow_redirects=False).status_code == 303


def test_a_token_from_before_login_is_replaced_at_login(client, settings):
    before = csrf_of(client.get("/login").text)
    logged_in(client, UserRole.engineer)
    assert token(client) != before


def test_the_session_cookie_is_httponly_and_samesite_lax(client, settings):
    name = user_of(settings, UserRole.viewer)
    response = _login(client, name, PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_with_tls_the_session_cookie_is_secure(configure, tmp_path):
    settings = configure(WORKBENCH__TLS_CERT=tmp_path / "c.pem", WORKBENCH__TLS_KEY=tmp_path / "k.pem")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        name = user_of(settings, UserRole.viewer)
        response = _login(client, name, PASSWORD)
    assert "secure" in response.headers["set-cookie"].lower()


def test_the_generated_session_key_is_kept_owner_only_and_reused(settings):
    first = auth.session_secret(settings)
    path = settings.home / "workbench" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.session_secret(settings) == first and len(first) >= 32


def test_a_configured_session_key_wins_and_a_short_one_is_refused(configure):
    settings = configure(WORKBENCH__SECRET_KEY="k" * 40)
    assert auth.session_secret(settings) == "k" * 40
    assert not (settings.home / "workbench" / "secret_key").exists()
    with pytest.raises(ValueError, match="shorter than 32"):
        configure(WORKBENCH__SECRET_KEY="short")


def test_sessions_signed_with_another_key_are_not_accepted(configure, settings):
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        cookies = dict(client.cookies)
    other = configure(WORKBENCH__SECRET_KEY="z" * 40)
    with TestClient(create_app(other), cookies=cookies) as client:
        assert client.get("/gallery", follow_redirects=False).status_code == 303


def test_repeated_failures_slow_further_attempts():
    throttle = auth.LoginThrottle(free=2, delay_s=1.0, max_delay_s=3.0)
    assert throttle.delay("name:a") == 0
    for _ in range(2):
        throttle.failed("name:a", "addr:x")
    assert throttle.delay("name:a") == 1.0
    throttle.failed("name:a", "addr:x")
    throttle.failed("name:a", "addr:x")
    assert throttle.delay("name:a") == 3.0  # capped
    assert throttle.delay("name:b", "addr:x") == 3.0  # the same address guessing other names
    throttle.succeeded("name:a", "addr:x")
    assert throttle.delay("name:a", "addr:x") == 0
