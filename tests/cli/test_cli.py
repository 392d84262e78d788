"""CLI commands that need no Prefect server, plus the local Prefect server's life cycle (slow)."""

from __future__ import annotations

import http.server
import json
import os
import threading
from functools import partial

import httpx
import pytest
from typer.testing import CliRunner

from aoi.settings import get_settings
from cli import app
from tests.helpers import free_port, mini_deeppcb, zip_of


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_db_upgrade_reports_the_head_revision(aoi_home):
    data = run("db", "upgrade")
    assert data["revision"] == data["head"] is not None
    assert (aoi_home / "catalog.db").exists()


def test_empty_catalog_answers_with_empty_lists(aoi_home):
    assert run("images") == [] and run("quarantine") == [] and run("batches") == []
    assert run("store", "check")["ok"] is True


def test_bad_time_filter_is_a_usage_error_with_a_message(aoi_home):
    assert "not an ISO 8601 time" in run("images", "--since", "last week", code=2)["error"]


def test_unknown_format_is_refused_before_anything_runs(aoi_home, tmp_path):
    assert "'tiff' is not one of 'folder'" in run("ingest", str(tmp_path), "--format", "tiff", code=2)["error"]
    assert not aoi_home.exists()


def test_datasets_status_says_how_to_get_a_missing_set(configure, tmp_path):
    configure(DATASETS_DIR=tmp_path / "none")
    rows = {r["name"]: r for r in run("public", "status")}
    assert rows["deeppcb"]["present"] is False and "aoi public fetch deeppcb" in rows["deeppcb"]["how_to_get"]


def test_fetch_deeppcb_offline_fails_with_a_clear_message(configure, tmp_path):
    configure(DATASETS_DIR=tmp_path / "ds", DEEPPCB_ARCHIVE_URL=f"http://127.0.0.1:{free_port()}/deeppcb.zip")
    error = run("public", "fetch", "deeppcb", code=3)["error"]
    assert "could not download DeepPCB" in error and "Offline?" in error


def test_fetch_deeppcb_downloads_and_unpacks_an_archive(configure, tmp_path):
    source = tmp_path / "src" / "DeepPCB-master"
    mini_deeppcb(source)
    members = {
        f"DeepPCB-master/{p.relative_to(source).as_posix()}": p.read_bytes() for p in source.rglob("*") if p.is_file()
    }
    # Unpacked under DATASETS_DIR/.fetch-*/unpacked: three levels up is tmp_path itself.
    members["../../../outside.txt"] = b"must not be written"
    zip_of(tmp_path / "web" / "deeppcb.zip", members)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "web"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configure(
            DATASETS_DIR=tmp_path / "ds", DEEPPCB_ARCHIVE_URL=f"http://127.0.0.1:{server.server_address[1]}/deeppcb.zip"
        )
        data = run("public", "fetch", "deeppcb")
    finally:
        server.shutdown()
    target = tmp_path / "ds" / "DeepPCB"
    assert data["path"] == str(target)
    assert len(list(target.glob("PCBData/group10000/10000/*.jpg"))) == 6
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "ds" / "outside.txt").exists()
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["DeepPCB"]


@pytest.mark.slow
def test_ui_starts_a_local_prefect_server_under_aoi_home_and_stops_it(configure, monkeypatch, tmp_path):
    """One local server: it requires this AOI_HOME's auth string (never printed), and a second AOI_HOME pointed at
    the same port is refused with a one-line user error instead of recording its runs there."""
    from aoi.settings import get_settings as settings_now

    for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):
        monkeypatch.setenv(name, "")  # recorded, so what the CLI sets in this process is undone after the test
        monkeypatch.delenv(name)
    port = free_port()
    settings = configure(PREFECT__PORT=port)
    first_home = settings.home
    try:
        result = CliRunner().invoke(app, ["ui", "--json"])
        assert result.exit_code == 0, result.stdout
        data = json.loads(result.stdout)
        assert data["started"] is True and data["local"] is True
        assert httpx.get(f"{data['api_url']}/health", timeout=5).status_code == 200
        assert (settings.prefect_home / "prefect.db").exists()
        auth_file = settings.prefect_home / "auth_string"
        assert auth_file.stat().st_mode & 0o777 == 0o600
        auth = auth_file.read_text().strip()
        assert auth.startswith("aoi:") and len(auth) > 30 and auth not in result.stdout
        assert str(auth_file) in data["login"]
        # Anyone else on the host: no credentials, or wrong ones, are refused; this AOI_HOME's are taken.
        count = f"{data['api_url']}/flow_runs/count"
        assert httpx.post(count, timeout=10).status_code == 401
        assert httpx.post(count, timeout=10, auth=("aoi", "guess")).status_code == 401
        user, password = auth.split(":", 1)
        assert httpx.post(count, timeout=10, auth=(user, password)).json() == 0
        for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):  # what the CLI set here, as a new process
            os.environ.pop(name, None)
        again = run("ui")
        assert again["started"] is False and again["local"] is True  # already running: reused, not started twice

        # A second installation on the same port: refused (exit 2, one line naming the port and the other home).
        monkeypatch.setenv("AOI_HOME", str(tmp_path / "other-home"))
        settings_now.cache_clear()
        for command in (["ui"], ["deploy"]):
            for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):
                os.environ.pop(name, None)
            refused = CliRunner().invoke(app, [*command, "--json"])
            assert refused.exit_code == 2, refused.stdout
            error = json.loads(refused.stdout)["error"]
            assert f"port {port}" in error and str(first_home) in error and "AOI_PREFECT__PORT" in error
            assert "\n" not in error and "Traceback" not in refused.stdout
        assert not (tmp_path / "other-home" / "prefect" / "server.pid").exists()
        assert httpx.post(count, timeout=10, auth=(user, password)).json() == 0  # nothing of it landed there
    finally:
        monkeypatch.setenv("AOI_HOME", str(first_home))
        settings_now.cache_clear()
        assert run("ui", "--stop")["stopped"] is True
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{data['api_url']}/health", timeout=2)
    assert get_settings().prefect_home == settings.prefect_home


def test_the_local_server_login_is_per_aoi_home_owner_only_and_the_setting_wins(configure, monkeypatch, tmp_path):
    from flows.prefect_server import auth_string, server_env

    settings = configure()
    first = auth_string(settings)
    assert auth_string(settings) == first and first.startswith("aoi:")
    assert (settings.prefect_home / "auth_string").stat().st_mode & 0o777 == 0o600
    assert server_env(settings)["PREFECT_SERVER_API_AUTH_STRING"] == first
    monkeypatch.setenv("AOI_HOME", str(tmp_path / "other"))
    assert auth_string(configure()) != first  # another installation, another login
    chosen = configure(PREFECT__AUTH_STRING="ops:chosen-password")
    assert auth_string(chosen) == "ops:chosen-password"
    assert "chosen-password" not in json.dumps(run("config"))


def test_a_server_on_the_local_port_that_this_aoi_home_did_not_start_is_refused(configure, monkeypatch, tmp_path):
    """Something answering /api/health on AOI_PREFECT__PORT that no aoi of this AOI_HOME started (another user's
    server, a hand-started `prefect server start`): refused, nothing started, no credentials sent to it."""
    seen: list[dict] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.delenv("PREFECT_API_URL")
    try:
        settings = configure(PREFECT__PORT=server.server_address[1])
        error = run("ui", code=2)["error"]
    finally:
        server.shutdown()
    assert f"port {settings.prefect.port}" in error and "did not start" in error and "AOI_PREFECT__PORT" in error
    assert not (settings.prefect_home / "server.pid").exists()
    assert all("Authorization" not in headers for headers in seen)


def test_an_unreachable_prefect_server_is_reported_not_a_traceback(aoi_home, monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    error = run("ingest", str(tmp_path), code=4)["error"]
    assert "no Prefect server answers at PREFECT_API_URL" in error
