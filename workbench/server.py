"""Starting and stopping the workbench as a process (``aoi web``): uvicorn serving ``create_app``, in the
foreground or in the background with a pid file and log under ``AOI_HOME/workbench``.

As ``aoi serve`` does (``serving/process.py``, whose generic process-group helpers are used here), the pid file
records the process's start time beside its pid: ``--stop`` signals only a process that is still that one.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from aoi.network import is_loopback
from aoi.settings import Settings

APP = "workbench.app:create_app"


class WebError(RuntimeError):
    pass


@dataclass
class Served:
    url: str
    pid: int
    log: Path
    started: bool


def check_bind(settings: Settings, host: str | None = None) -> None:
    """A bind beyond loopback needs TLS (passwords cross the network) or an explicit allow_insecure_bind."""
    host = host or settings.workbench.host
    if is_loopback(host) or settings.workbench.tls or settings.workbench.allow_insecure_bind:
        return
    raise WebError(
        f"refusing to serve the workbench on {host} without TLS: set AOI_WORKBENCH__TLS_CERT and "
        "AOI_WORKBENCH__TLS_KEY (or AOI_WORKBENCH__ALLOW_INSECURE_BIND=true), or serve on 127.0.0.1"
    )


def _folder(settings: Settings) -> Path:
    return settings.home / "workbench"


def _pid_file(settings: Settings) -> Path:
    return _folder(settings) / "web.pid"


def command(settings: Settings, port: int | None = None, host: str | None = None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        APP,
        "--factory",
        "--host",
        host or settings.workbench.host,
        "--port",
        str(port or settings.workbench.port),
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    if settings.workbench.tls_cert is not None and settings.workbench.tls_key is not None:
        argv += ["--ssl-certfile", str(settings.workbench.tls_cert), "--ssl-keyfile", str(settings.workbench.tls_key)]
    return argv


def run_foreground(settings: Settings, port: int | None = None, host: str | None = None) -> None:
    from workbench.app import create_app

    check_bind(settings, host)
    uvicorn.run(
        create_app(settings),
        host=host or settings.workbench.host,
        port=port or settings.workbench.port,
        log_level="info",
        server_header=False,
        ssl_certfile=str(settings.workbench.tls_cert) if settings.workbench.tls_cert else None,
        ssl_keyfile=str(settings.workbench.tls_key) if settings.workbench.tls_key else None,
    )


def _probe_url(settings: Settings, port: int | None, host: str | None) -> str:
    # A wildcard bind answers on loopback: probe there.
    host = host or settings.workbench.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return settings.workbench.url(host, port)


def wait_alive(url: str, process: subprocess.Popen | None = None, timeout_s: float = 60) -> None:
    """Until ``url``/login answers 200; the certificate is not checked: this is our own child, maybe self-signed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise WebError(f"the workbench exited with {process.returncode} before answering")
        try:
            if httpx.get(f"{url}/login", timeout=2, verify=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise WebError(f"the workbench did not answer {url}/login within {timeout_s:.0f} s")


@dataclass
class PidRecord:
    pid: int | None
    started_at: float | None
    ours: bool
    reason: str | None = None


def _is_ours(pid: int, started_at: float | None) -> tuple[bool, str | None]:
    import psutil

    try:
        process = psutil.Process(pid)
        cmdline, created = process.cmdline(), process.create_time()
    except psutil.NoSuchProcess:
        return False, f"no process {pid} runs any more"
    except psutil.Error as err:
        return False, f"process {pid} cannot be inspected ({type(err).__name__})"
    if not ("uvicorn" in cmdline and APP in cmdline):
        return False, f"process {pid} is not the workbench (it runs {' '.join(cmdline)[:80]!r})"
    if started_at is not None and abs(created - started_at) > 1.0:
        return False, f"process {pid} started at another time than the recorded workbench: the pid was reused"
    return True, None


def read_pid_file(settings: Settings) -> PidRecord | None:
    path = _pid_file(settings)
    try:
        fields = path.read_text().split()
        pid = int(fields[0])
        started_at = float(fields[2]) if len(fields) > 2 else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        return PidRecord(None, None, False, f"{path} is unreadable")
    if pid <= 1:
        return PidRecord(pid, started_at, False, f"{path} holds pid {pid}")
    ours, reason = _is_ours(pid, started_at)
    return PidRecord(pid, started_at, ours, reason)


def running_pid(settings: Settings) -> int | None:
    """The pid of this AOI_HOME's background workbench when it runs; a stale pid file is removed."""
    record = read_pid_file(settings)
    if record is None:
        return None
    if not record.ours:
        _pid_file(settings).unlink(missing_ok=True)
        return None
    return record.pid


def start_background(settings: Settings, port: int | None = None, host: str | None = None) -> Served:
    """Start (or find running) the workbench of this AOI_HOME; returns once /login answers."""
    import psutil

    from serving.process import _stop_group

    check_bind(settings, host)
    url = settings.workbench.url(host, port)
    log = _folder(settings) / "web.log"
    running = running_pid(settings)
    if running is not None:
        recorded = _pid_file(settings).read_text().split()
        return Served(recorded[1] if len(recorded) > 1 else url, running, log, started=False)
    _folder(settings).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AOI_HOME": str(settings.home)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command(settings, port, host), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        created = psutil.Process(process.pid).create_time()
    except psutil.Error:
        created = time.time()
    _pid_file(settings).write_text(f"{process.pid} {url} {created:.2f}\n")
    try:
        wait_alive(_probe_url(settings, port, host), process)
    except WebError as err:
        _stop_group(process.pid)
        _pid_file(settings).unlink(missing_ok=True)
        raise WebError(f"the workbench did not start ({err}); see {log}") from None
    return Served(url, process.pid, log, started=True)


def stop(settings: Settings, timeout_s: float = 15) -> dict:
    """Stop the background workbench, having checked that the pid file's pid is still it (a stale or reused pid
    is reported and never signalled)."""
    from serving.process import _stop_group

    record = read_pid_file(settings)
    if record is None:
        return {"stopped": False}
    _pid_file(settings).unlink(missing_ok=True)
    if not record.ours or record.pid is None:
        return {"stopped": False, "stale_pid": record.pid, "reason": f"{record.reason}; not signalled"}
    try:
        group = os.getpgid(record.pid)
    except ProcessLookupError:
        return {"stopped": False, "stale_pid": record.pid, "reason": "the process ended meanwhile"}
    if group != record.pid:
        return {
            "stopped": False,
            "stale_pid": record.pid,
            "reason": f"process {record.pid} does not lead its own process group; not signalled",
        }
    _stop_group(record.pid, timeout_s)
    return {"stopped": True, "pid": record.pid}


DEMO_USER = "demo"
DEMO_PASSWORD_ENV = "AOI_DEMO_PASSWORD"


def ensure_demo_account(settings: Settings) -> tuple[str | None, str]:
    """The demo's reviewer account ``demo``, made when missing with the password in AOI_DEMO_PASSWORD, else a
    random one. Returns (the password to show once, or None when there is nothing to show: the account existed,
    or its password came from the environment; where it came from)."""
    from aoi.catalog import db
    from workbench.auth import add_user, find_user

    given = os.environ.get(DEMO_PASSWORD_ENV)
    with db.session(settings.catalog_url) as s:
        if find_user(s, DEMO_USER) is not None:
            return None, "the account existed already"
        password = given or secrets.token_urlsafe(12)
        add_user(s, DEMO_USER, "reviewer", password)
    return (None, DEMO_PASSWORD_ENV) if given else (password, "generated")


def start_for_demo(settings: Settings) -> dict:
    """Start the workbench in the background beside the service, with the demo account; what to print."""
    password, origin = ensure_demo_account(settings)
    served = start_background(settings)
    login = (
        f"log in as {DEMO_USER} with password {password} (shown only this once)"
        if password
        else f"log in as {DEMO_USER} (password: {origin})"
    )
    return {"url": served.url, "pid": served.pid, "log": str(served.log), "user": DEMO_USER, "login": login}
