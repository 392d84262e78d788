"""Starting and stopping the classification service as a process (``aoi serve``): in the foreground, or in the
background with a pid file and log under ``AOI_HOME/serving`` (the demo leaves it running; ``aoi serve --stop``).

The foreground command becomes ``serving/foreground.py`` (exec), which passes signals on to the service's process
group. The pid file records the process's start time beside its pid: ``--stop`` signals only a process that is
still that one, running this service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from aoi.network import is_loopback
from aoi.settings import Settings
from training.registry import bentoml_env

SERVICE = "serving.service:Classifier"


class ServeError(RuntimeError):
    pass


@dataclass
class Served:
    url: str
    pid: int
    log: Path | None
    started: bool


def command(settings: Settings, port: int | None = None, host: str | None = None) -> list[str]:
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    return [
        bentoml,
        "serve",
        SERVICE,
        "--host",
        host or settings.serving.host,
        "--port",
        str(port or settings.serving.port),
    ]


def environment(settings: Settings) -> dict[str, str]:
    # The key reaches the service as AOI_API_KEY, nothing else: the model calls batch in-process (no self-call
    # through the HTTP stack that would need it), and BentoML would take BENTO_CLOUD_API_KEY as its cloud token.
    bentoml_env(settings)
    return {**os.environ, "AOI_HOME": str(settings.home)}


def check_bind(settings: Settings, host: str | None = None) -> None:
    """A bind beyond loopback needs an API key (AOI_API_KEY; the settings refuse an empty or short one)."""
    host = host or settings.serving.host
    if settings.api_key is None and not is_loopback(host):
        raise ServeError(
            f"refusing to serve on {host} without an API key: set AOI_API_KEY (16+ characters) or serve on 127.0.0.1"
        )


def exec_foreground(settings: Settings, port: int | None = None, host: str | None = None) -> None:
    """Replace this process by the light foreground wrapper of the service (never returns)."""
    check_bind(settings, host)
    env = environment(settings)
    argv = [sys.executable, "-m", "serving.foreground", *command(settings, port, host)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def url_of(settings: Settings, port: int | None = None, host: str | None = None) -> str:
    return f"http://{host or settings.serving.host}:{port or settings.serving.port}"


def wait_alive(url: str, process: subprocess.Popen | None = None, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServeError(f"the service exited with {process.returncode} before answering")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServeError(f"the service did not answer {url}/healthz within {timeout_s:.0f} s")


def _pid_file(settings: Settings) -> Path:
    return settings.home / "serving" / "serve.pid"


@dataclass
class PidRecord:
    """What the pid file says, and whether that pid is still our service."""

    pid: int | None
    started_at: float | None
    ours: bool
    reason: str | None = None


def _is_our_service(pid: int, started_at: float | None) -> tuple[bool, str | None]:
    """(True, None) when ``pid`` runs ``bentoml serve serving.service:Classifier`` and started when recorded."""
    try:
        process = psutil.Process(pid)
        cmdline, created = process.cmdline(), process.create_time()
    except psutil.NoSuchProcess:
        return False, f"no process {pid} runs any more"
    except psutil.Error as err:
        return False, f"process {pid} cannot be inspected ({type(err).__name__})"
    if not (any(Path(a).name == "bentoml" for a in cmdline[:2]) and "serve" in cmdline and SERVICE in cmdline):
        return False, f"process {pid} is not this service (it runs {' '.join(cmdline)[:80]!r})"
    if started_at is not None and abs(created - started_at) > 1.0:
        return False, f"process {pid} started at another time than the recorded service: the pid was reused"
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
    ours, reason = _is_our_service(pid, started_at)
    return PidRecord(pid, started_at, ours, reason)


def start_background(settings: Settings, port: int | None = None, host: str | None = None) -> Served:
    """Start (or find running) the service of this AOI_HOME; returns once /healthz answers."""
    check_bind(settings, host)
    url = url_of(settings, port, host)
    running = running_pid(settings)
    if running is not None:
        return Served(url, running, settings.home / "serving" / "serve.log", started=False)
    folder = settings.home / "serving"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command(settings, port, host),
            env=environment(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        created = psutil.Process(process.pid).create_time()
    except psutil.Error:
        created = time.time()
    _pid_file(settings).write_text(f"{process.pid} {url} {created:.2f}\n")
    try:
        wait_alive(url, process)
    except ServeError:
        _stop_group(process.pid)
        _pid_file(settings).unlink(missing_ok=True)
        raise ServeError(f"the service did not start; see {log}") from None
    return Served(url, process.pid, log, started=True)


def running_pid(settings: Settings) -> int | None:
    """The pid of this AOI_HOME's background service when it runs; a stale pid file is removed."""
    record = read_pid_file(settings)
    if record is None:
        return None
    if not record.ours:
        _pid_file(settings).unlink(missing_ok=True)
        return None
    return record.pid


def _group_alive(pid: int) -> bool:
    """Whether the group led by ``pid`` still has a live member (a leader that exited but is not reaped is not)."""
    with contextlib.suppress(ChildProcessError):  # reaps the leader when this process started it (then stop)
        os.waitpid(pid, os.WNOHANG)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pid]
    return any(_status(p) not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD, None) for p in members)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _status(process: psutil.Process) -> str | None:
    try:
        return process.status()
    except psutil.Error:
        return None


def _stop_group(pid: int, timeout_s: float = 30) -> None:
    """SIGTERM the process group led by ``pid`` (the service flushes its prediction log), SIGKILL after timeout."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(settings: Settings, timeout_s: float = 30) -> dict:
    """Stop the background service, having checked that the pid file's pid is still it.

    A stale or reused pid is reported and never signalled: {"stopped": False, "stale_pid": pid, "reason": ...}.
    """
    record = read_pid_file(settings)
    if record is None:
        return {"stopped": False}
    _pid_file(settings).unlink(missing_ok=True)
    if not record.ours:
        return {"stopped": False, "stale_pid": record.pid, "reason": f"{record.reason}; not signalled"}
    try:
        group = os.getpgid(record.pid)
    except ProcessLookupError:
        return {"stopped": False, "stale_pid": record.pid, "reason": "the process ended meanwhile"}
    if group != record.pid:  # started by start_background: it leads its own group
        return {
            "stopped": False,
            "stale_pid": record.pid,
            "reason": f"process {record.pid} does not lead its own process group; not signalled",
        }
    _stop_group(record.pid, timeout_s)
    return {"stopped": True, "pid": record.pid}
