"""The Prefect server every flow run reports to.

When ``PREFECT_API_URL`` is set, flows use that server. Otherwise ``aoi`` starts a local server in the
background with all its state under ``AOI_HOME/prefect`` (never the user's home folder) and leaves it
running, so every run stays visible in the Prefect UI after the command ends. ``aoi ui --stop`` stops it.

The local server requires basic auth (Prefect's ``PREFECT_SERVER_API_AUTH_STRING``): the string is
AOI_PREFECT__AUTH_STRING, else one generated for this AOI_HOME and kept in ``AOI_HOME/prefect/auth_string``
(owner-only). Every client this process starts (flows, the worker, its flow runs) gets it as
``PREFECT_API_AUTH_STRING``. A server on the local port that belongs to another AOI_HOME is refused, never used:
its runs, deployments and approvals are another installation's.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from aoi.settings import Settings


class PrefectUnavailable(RuntimeError):
    """The Prefect server could not be reached or started; the message says where to look. ``exit_code``: what
    the CLI exits with (2 for what the user's own settings must fix)."""

    exit_code = 4

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ForeignServer(PrefectUnavailable):
    """The local port is held by a Prefect server this AOI_HOME did not start: a user error, the message says
    which port, whose server if known, and what to set."""

    exit_code = 2


AUTH_FILE = "auth_string"


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    ui_url: str
    started: bool  # started by this call
    local: bool  # on the local address (as opposed to PREFECT_API_URL)
    log: Path | None = None


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def local_urls(settings: Settings) -> tuple[str, str]:
    base = f"http://{settings.prefect.host}:{settings.prefect.port}"
    return f"{base}/api", base


def auth_string(settings: Settings) -> str:
    """``user:password`` of the local server: AOI_PREFECT__AUTH_STRING, else this AOI_HOME's own, generated once
    into an owner-only file (never printed)."""
    if settings.prefect.auth_string is not None:
        return settings.prefect.auth_string.get_secret_value()
    path = settings.prefect_home / AUTH_FILE
    for _ in range(2):
        try:
            value = path.read_text().strip()
            if value:
                if path.stat().st_mode & 0o077:  # copied or restored with wider rights: owner-only again
                    path.chmod(0o600)
                return value
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # O_EXCL: two commands starting at once both end up with the first one's string
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.1)
            continue
        with os.fdopen(fd, "w") as out:
            out.write(f"aoi:{secrets.token_urlsafe(32)}\n")
    return path.read_text().strip()


def server_env(settings: Settings) -> dict[str, str]:
    """Environment of the local server process: state, database and UI address under AOI_HOME, basic auth on."""
    home = settings.prefect_home
    api_url, _ = local_urls(settings)
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_AUTH_STRING": auth_string(settings),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_API_HOST": settings.prefect.host,
        "PREFECT_SERVER_API_PORT": str(settings.prefect.port),
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": "",
    }


def client_env(settings: Settings, api_url: str, auth: str | None = None) -> None:
    """Point this process's Prefect client at ``api_url`` (with ``auth``, the local server's basic auth); call
    before Prefect is imported. Child processes (the worker and its flow runs) inherit both."""
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ["PREFECT_API_URL"] = api_url
    if auth is not None:
        os.environ["PREFECT_API_AUTH_STRING"] = auth
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Task-run chatter stays in the UI (API log handler); the terminal shows progress bars and warnings.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _prefect_executable() -> str:
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def ensure_server(settings: Settings) -> PrefectServer:
    """The server flows should report to, starting the local one if needed; sets this process's env."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not _healthy(configured, timeout=10):
            raise PrefectUnavailable(
                f"no Prefect server answers at PREFECT_API_URL={configured}; unset it to let aoi start a local one"
            )
        client_env(settings, configured)
        return PrefectServer(configured, configured.removesuffix("/api"), started=False, local=False)
    api_url, ui_url = local_urls(settings)
    log = settings.prefect_home / "server.log"
    auth = auth_string(settings)
    started = False
    if _healthy(api_url):
        check_owner(settings, api_url, auth)
    else:
        start_server(settings)
        started = True
        wait_healthy(api_url, settings.prefect.start_timeout_s, log)
    client_env(settings, api_url, auth)
    return PrefectServer(api_url, ui_url, started=started, local=True, log=log)


def listener_home(port: int) -> Path | None:
    """PREFECT_HOME of the process listening on ``port`` on this host, when it can be seen (a process of this
    user); None otherwise."""
    import psutil

    try:
        pids = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        }
    except psutil.Error:
        return None
    for pid in pids:
        try:
            home = psutil.Process(pid).environ().get("PREFECT_HOME")
        except psutil.Error:
            continue
        if home:
            return Path(home)
    return None


def check_owner(settings: Settings, api_url: str, auth: str) -> None:
    """Refuse a server on the local port that is not this AOI_HOME's: one of another installation would take
    this one's runs, deployments and approvals. Ours: started from our PREFECT_HOME, or the pid we recorded,
    and it takes our credentials."""
    port = settings.prefect.port
    ours = settings.prefect_home
    home = listener_home(port)
    fix = (
        f"set AOI_PREFECT__PORT to a free port for this AOI_HOME ({settings.home}), or PREFECT_API_URL to use that "
        "server on purpose"
    )
    if home is not None and home.resolve() != ours.resolve():
        other = home.parent if home.name == "prefect" else home
        raise ForeignServer(
            f"port {port} is held by the Prefect server of another AOI_HOME ({other}), not this one's; " + fix
        )
    if home is None and owned_pid(settings) is None:
        raise ForeignServer(f"port {port} is held by a Prefect server this AOI_HOME did not start; " + fix)
    try:
        answer = httpx.get(f"{api_url}/admin/version", timeout=10, headers={"Authorization": _basic(auth)})
    except httpx.HTTPError as err:
        raise PrefectUnavailable(f"the Prefect server at {api_url} does not answer: {err}") from None
    if answer.status_code == 401:
        raise PrefectUnavailable(
            f"the local Prefect server on port {port} refuses this AOI_HOME's auth string "
            "(AOI_PREFECT__AUTH_STRING changed since it started?); restart it: aoi ui --stop",
            exit_code=2,
        )


def _basic(auth: str) -> str:
    """Prefect's basic auth header: the whole auth string, base64 (what its client sends)."""

    return "Basic " + base64.b64encode(auth.encode()).decode()


def start_server(settings: Settings) -> int:
    """Start the local server detached from this process; returns its pid (also in server.pid).

    Started the way Prefect documents it: ``prefect server start --host H --port P`` with Prefect's own settings in
    its environment (server_env: PREFECT_HOME, the SQLite database, API host and port, UI API URL, basic auth).
    Not ``--background``: measured on Prefect 3.8.8, that mode starts uvicorn with its stdout and stderr piped to
    the starting command, which exits at once, so the server's log goes nowhere (nothing to read when it does
    not come up), and the server stays in the caller's session and process group. Here the foreground command
    runs in its own session and writes AOI_HOME/prefect/server.log."""
    home = settings.prefect_home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)  # the server's database and login: owner-only
    env = {**os.environ, **server_env(settings)}
    env.pop("PREFECT_API_URL")
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [
                _prefect_executable(),
                "server",
                "start",
                "--host",
                settings.prefect.host,
                "--port",
                str(settings.prefect.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=home,
            start_new_session=True,
        )
    (home / "server.pid").write_text(str(proc.pid))
    return proc.pid


def wait_healthy(api_url: str, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _healthy(api_url):
            return
        time.sleep(0.5)
    hint = f"; see {log}" if log else ""
    raise PrefectUnavailable(f"Prefect server at {api_url} did not answer within {timeout_s:.0f} s{hint}")


def _ours(pid: int, role: str = "server") -> bool:
    """Whether ``pid`` is alive and is a Prefect ``role`` process (not a recycled pid of something else)."""
    if pid <= 1:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"prefect" in cmdline and role.encode() in cmdline


def owned_pid(settings: Settings, role: str = "server") -> int | None:
    """The pid of the local server (or worker) this AOI_HOME started, when it still runs."""
    pid_file = settings.prefect_home / f"{role}.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _ours(pid, role) else None


def stop_server(settings: Settings, role: str = "server") -> bool:
    """Stop the local server (or worker) started by ``aoi`` for this AOI_HOME; False when none was running."""
    pid = owned_pid(settings, role)
    (settings.prefect_home / f"{role}.pid").unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    for _ in range(50):
        if not _ours(pid, role):
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def worker_command(settings: Settings) -> list[str]:
    pool = settings.monitoring
    return [_prefect_executable(), "worker", "start", "--pool", pool.work_pool, "--type", pool.work_pool_type]


# Per-process settings that libraries put in os.environ for their own process and that must not reach the worker's
# flow runs: Feast points PROMETHEUS_MULTIPROC_DIR at a temporary folder that is gone once its process ends.
PROCESS_LOCAL_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in PROCESS_LOCAL_ENV}


def start_worker(settings: Settings) -> int:
    """A process worker for the deployments' work pool, detached, logging to AOI_HOME/prefect/worker.log. Its
    flow runs inherit this environment (AOI_*, PREFECT_API_URL): they see the same catalog and store."""
    home = settings.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            worker_command(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=worker_env(),
            start_new_session=True,
        )
    (home / "worker.pid").write_text(str(proc.pid))
    return proc.pid
