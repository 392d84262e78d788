"""Starting and stopping the classification service as a process (``aoi serve``): in the foreground, or in the
background with a pid file and log under ``AOI_HOME/serving`` (the demo leaves it running; ``aoi serve --stop``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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
    return [bentoml, "serve", SERVICE, "--host", host or settings.serving.host, "--port", str(port or settings.serving.port)]


def environment(settings: Settings) -> dict[str, str]:
    bentoml_env(settings)
    env = {**os.environ, "AOI_HOME": str(settings.home)}
    if settings.api_key:  # the service's own batch calls authenticate like any client
        env["BENTO_CLOUD_API_KEY"] = settings.api_key.get_secret_value()
    return env


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


def start_background(settings: Settings, port: int | None = None, host: str | None = None) -> Served:
    """Start (or find running) the service of this AOI_HOME; returns once /healthz answers."""
    url = url_of(settings, port, host)
    running = running_pid(settings)
    if running is not None:
        return Served(url, running, settings.home / "serving" / "serve.log", started=False)
    folder = settings.home / "serving"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command(settings, port, host), env=environment(settings), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    _pid_file(settings).write_text(f"{process.pid} {url}\n")
    try:
        wait_alive(url, process)
    except ServeError:
        stop(settings)
        raise ServeError(f"the service did not start; see {log}") from None
    return Served(url, process.pid, log, started=True)


def running_pid(settings: Settings) -> int | None:
    path = _pid_file(settings)
    if not path.exists():
        return None
    pid = int(path.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return pid


def stop(settings: Settings, timeout_s: float = 30) -> bool:
    """SIGTERM the background service's process group (the service flushes its prediction log on the way out)."""
    pid = running_pid(settings)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    return True
