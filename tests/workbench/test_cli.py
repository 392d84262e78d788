"""``aoi users`` and ``aoi web``: accounts from the command line, the bind rules, the background workbench."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from aoi.catalog import db
from aoi.catalog.models import AppUser
from cli import app
from tests.helpers import free_port
from workbench import auth, server


def aoi(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


def test_users_add_reads_the_password_from_stdin_and_keeps_only_its_hash(settings):
    result = aoi("users", "add", "alice", "--role", "engineer", "--json", stdin="s3cret-pass-word\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "alice", "role": "engineer", "created": True}
    assert "s3cret-pass-word" not in result.output
    with db.session(settings.catalog_url) as s:
        user = s.exec(select(AppUser).where(AppUser.name == "alice")).one()
    assert user.role == "engineer" and user.password_hash.startswith("$argon2id$")
    assert "s3cret-pass-word" not in user.password_hash
    assert auth.verify_password(user.password_hash, "s3cret-pass-word")  # the newline is not part of it
    with db.session(settings.catalog_url) as s:
        assert auth.authenticate(s, "alice", "s3cret-pass-word") is not None


@pytest.mark.parametrize(
    "args,stdin,word",
    [
        (["users", "add", "bob", "--role", "engineer"], "short\n", "at least 8"),
        (["users", "add", "bob", "--role", "admin"], "long enough pass\n", "--role"),
        (["users", "add", "bad name", "--role", "viewer"], "long enough pass\n", "user name"),
        (["users", "add", "bob", "--role", "viewer"], "", "at least 8"),
        (["users", "disable", "nobody"], None, "no user"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(settings, args, stdin, word):
    result = aoi(*args, stdin=stdin)
    assert result.exit_code == 2, result.output
    assert word in result.output and len(result.output.strip().splitlines()) == 1
    with db.session(settings.catalog_url) as s:
        assert s.exec(select(AppUser)).all() == []


def test_a_duplicate_user_is_refused(settings):
    assert aoi("users", "add", "carol", "--role", "viewer", stdin="long enough pass\n").exit_code == 0
    again = aoi("users", "add", "carol", "--role", "reviewer", "--json", stdin="other long pass\n")
    assert again.exit_code == 2 and "exists" in json.loads(again.stdout)["error"]


def test_users_list_and_disable(settings):
    for name, role in (("dora", "reviewer"), ("eve", "viewer")):
        assert aoi("users", "add", name, "--role", role, stdin="long enough pass\n").exit_code == 0
    listed = json.loads(aoi("users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("dora", "reviewer", False),
        ("eve", "viewer", False),
    ]
    assert all("hash" not in key and "password" not in key for u in listed for key in u)
    disabled = json.loads(aoi("users", "disable", "eve", "--json").stdout)
    assert disabled == {"name": "eve", "disabled": True, "changed": True}
    assert [u["disabled"] for u in json.loads(aoi("users", "list", "--json").stdout)] == [False, True]
    with db.session(settings.catalog_url) as s:
        assert auth.authenticate(s, "eve", "long enough pass") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "no-such-host.invalid"])
def test_a_non_loopback_bind_without_tls_is_refused(settings, host):
    result = aoi("web", "--host", host)
    assert result.exit_code == 2
    assert "refusing" in result.output and "TLS" in result.output
    assert len(result.output.strip().splitlines()) == 1
    as_json = aoi("web", "--host", host, "--background", "--json")
    assert as_json.exit_code == 2 and "refusing" in json.loads(as_json.stdout)["error"]


def test_loopback_tls_or_an_explicit_flag_allow_the_bind(configure, tmp_path):
    settings = configure()
    for host in ("127.0.0.1", "localhost", "::1"):
        server.check_bind(settings, host)
    with pytest.raises(server.WebError):
        server.check_bind(settings, "0.0.0.0")
    server.check_bind(configure(WORKBENCH__ALLOW_INSECURE_BIND="true"), "0.0.0.0")
    tls = configure(
        WORKBENCH__ALLOW_INSECURE_BIND="false", WORKBENCH__TLS_CERT=tmp_path / "c", WORKBENCH__TLS_KEY=tmp_path / "k"
    )
    server.check_bind(tls, "0.0.0.0")
    assert tls.workbench.url("0.0.0.0", 9000) == "https://0.0.0.0:9000"


def test_a_tls_setting_needs_both_files(configure, tmp_path):
    with pytest.raises(ValueError, match="TLS_KEY"):
        configure(WORKBENCH__TLS_CERT=tmp_path / "c")


def test_stop_without_a_background_workbench_says_so(settings):
    result = aoi("web", "--stop", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"stopped": False}


@pytest.mark.slow
def test_background_workbench_answers_login_and_stops(settings):
    port = free_port()
    started = aoi("web", "--background", "--port", str(port), "--json")
    try:
        assert started.exit_code == 0, started.output
        data = json.loads(started.stdout)
        assert data["started"] and data["url"] == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{data['url']}/login", timeout=5).status_code == 200
        assert httpx.get(f"{data['url']}/gallery", timeout=5, follow_redirects=False).status_code == 303
        again = json.loads(aoi("web", "--background", "--port", str(port), "--json").stdout)
        assert again["pid"] == data["pid"] and not again["started"]
    finally:
        stopped = json.loads(aoi("web", "--stop", "--json").stdout)
    assert stopped == {"stopped": True, "pid": data["pid"]}
    assert server.running_pid(settings) is None
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)


def test_the_demo_account_is_a_reviewer_with_a_random_password_shown_once(settings, monkeypatch):
    monkeypatch.delenv(server.DEMO_PASSWORD_ENV, raising=False)
    password, origin = server.ensure_demo_account(settings)
    assert password and len(password) >= 12 and origin == "generated"
    with db.session(settings.catalog_url) as s:
        user = auth.authenticate(s, "demo", password)
        assert user is not None and user.role == "reviewer"
    assert server.ensure_demo_account(settings) == (None, "the account existed already")  # never shown again


def test_the_demo_password_can_come_from_the_environment(settings, monkeypatch):
    monkeypatch.setenv(server.DEMO_PASSWORD_ENV, "from the environment")
    assert server.ensure_demo_account(settings) == (None, server.DEMO_PASSWORD_ENV)  # not printed: it is known
    with db.session(settings.catalog_url) as s:
        assert auth.authenticate(s, "demo", "from the environment") is not None


@pytest.mark.slow
def test_the_demo_starts_the_workbench_with_its_account(configure, monkeypatch):
    from cli.system_cmds import _start_workbench

    settings = configure(WORKBENCH__PORT=free_port())
    monkeypatch.delenv(server.DEMO_PASSWORD_ENV, raising=False)
    started = _start_workbench(settings)
    try:
        assert started["url"] == f"http://127.0.0.1:{settings.workbench.port}"
        password = started["login"].split("password ")[1].split(" ")[0]
        with httpx.Client(base_url=started["url"]) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            form = {"username": "demo", "password": password, "csrf_token": token.group(1)}
            assert client.post("/login", data=form).status_code == 303
            assert client.get("/gallery").status_code == 200
    finally:
        assert server.stop(settings)["stopped"]
