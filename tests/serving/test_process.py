"""``aoi serve`` as a process: the foreground wrapper passes signals on to the service's whole process group and
holds little memory; ``--stop`` signals only a pid that is still this service; no bind beyond loopback without
a key. Real processes throughout: a stand-in service (a process group with a child) where BentoML would only
add minutes, and one real ``aoi serve`` at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from serving import process
from tests.flows.helpers import aoi
from tests.helpers import REPO_ROOT, free_port

# A stand-in service: starts a child (a worker) in its own group, writes both pids, and waits.
SERVICE = textwrap.dedent("""
    import subprocess, sys, time, pathlib
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    pathlib.Path(sys.argv[1]).write_text(f"{__import__('os').getpid()} {worker.pid}")
    time.sleep(600)
""")


def _wait_for(path: Path, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def _gone(pids: list[int], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.05)
    return False


def _wrapper(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    pids = tmp_path / "pids"
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "serving.foreground", sys.executable, "-c", SERVICE, str(pids)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    return wrapper, [int(p) for p in _wait_for(pids).split()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_foreground_wrapper_stops_the_whole_service(tmp_path, signum):
    wrapper, (service, worker) = _wrapper(tmp_path)
    try:
        assert os.getpgid(service) == service != os.getpgid(wrapper.pid)  # the service leads a group of its own
        wrapper.send_signal(signum)
        assert wrapper.wait(timeout=20) != 0
        assert _gone([service, worker]), "the service or its worker outlived the wrapper"
    finally:
        for pid in (service, worker):
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_wrapper_exits_with_the_service_and_holds_little_memory(tmp_path):
    wrapper, (service, worker) = _wrapper(tmp_path)
    try:
        rss_mb = psutil.Process(wrapper.pid).memory_info().rss / 2**20
        assert rss_mb < 60, rss_mb  # the CLI it replaces held ~750 MB of imports
        os.kill(service, signal.SIGKILL)  # the service dies on its own: the wrapper follows, with its status
        assert wrapper.wait(timeout=20) == 128 + signal.SIGKILL
        assert _gone([worker])  # and does not leave its worker behind
    finally:
        for pid in (service, worker):
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def _fake_bentoml(tmp_path: Path) -> Path:
    """An executable named bentoml whose command line looks like the service's (``bentoml serve SERVICE``).

    It writes ``terminated`` beside itself when it receives SIGTERM: ``stop`` may reap it before the test's
    ``Popen.wait`` does (which then reads exit code 0), so the signal is checked through that file.
    """
    script = tmp_path / "bin" / "bentoml"
    script.parent.mkdir()
    marker = script.parent / "terminated"
    script.write_text(
        f"#!{sys.executable}\nimport signal, sys, time\n"
        f"def _term(*_):\n    open({str(marker)!r}, 'w').close()\n    sys.exit(143)\n"
        f"signal.signal(signal.SIGTERM, _term)\nopen({str(script.parent / 'ready')!r}, 'w').close()\ntime.sleep(600)\n"
    )
    script.chmod(0o755)
    return script


def _pid_file(settings, pid: int, created: float) -> Path:
    path = settings.home / "serving" / "serve.pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} http://127.0.0.1:1 {created:.2f}\n")
    return path


def test_stop_signals_only_a_pid_that_is_still_our_service(settings, tmp_path):
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)  # some other program under a recorded pid
    looks_alike = subprocess.Popen(
        [str(_fake_bentoml(tmp_path)), "serve", process.SERVICE, "--port", "1"], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "bin" / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # its SIGTERM handler is installed
        path = _pid_file(settings, other.pid, psutil.Process(other.pid).create_time())
        result = process.stop(settings)
        assert (
            result["stopped"] is False and result["stale_pid"] == other.pid and "not this service" in result["reason"]
        )
        assert other.poll() is None and not path.exists()  # not signalled; the stale file is gone
        _pid_file(settings, looks_alike.pid, psutil.Process(looks_alike.pid).create_time() - 120)  # pid reused
        result = process.stop(settings)
        assert result["stopped"] is False and "reused" in result["reason"] and looks_alike.poll() is None
        _pid_file(settings, 999_999_999, time.time())
        assert process.stop(settings)["stopped"] is False
        assert process.running_pid(settings) is None
        _pid_file(settings, looks_alike.pid, psutil.Process(looks_alike.pid).create_time())  # really it
        assert process.running_pid(settings) == looks_alike.pid
        assert process.stop(settings, timeout_s=10) == {"stopped": True, "pid": looks_alike.pid}
        looks_alike.wait(timeout=10)
        assert (tmp_path / "bin" / "terminated").exists()  # it got SIGTERM (a graceful stop), not SIGKILL
    finally:
        for p in (other, looks_alike):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_stop_reports_a_stale_pid_on_the_command_line(settings):
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        _pid_file(settings, other.pid, psutil.Process(other.pid).create_time())
        stopped = aoi("serve", "--stop")
        assert stopped["stopped"] is False and stopped["stale_pid"] == other.pid and other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.invalid"])
def test_no_bind_beyond_loopback_without_a_key(configure, host):
    configure()
    refused = aoi("serve", "--host", host, code=2)
    assert "AOI_API_KEY" in refused["error"]
    configure(SERVING__HOST=host)
    assert "AOI_API_KEY" in aoi("serve", "--background", code=2)["error"]
    with pytest.raises(process.ServeError):
        process.check_bind(configure(SERVING__HOST=host))
    process.check_bind(configure(API_KEY="a-real-key-0123456789", SERVING__HOST=host))  # with a key: allowed
    for loopback in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        process.check_bind(configure(SERVING__HOST=loopback))


def test_an_empty_key_is_a_one_line_error_not_an_open_service(configure):
    from typer.testing import CliRunner

    from cli import app
    from tests.helpers import forget_settings

    for key in ("", "  ", "tiny-k3y"):
        os.environ["AOI_API_KEY"] = key  # configure() would build the (invalid) settings itself
        forget_settings()
        try:
            result = CliRunner().invoke(app, ["serve", "--json"])
        finally:
            del os.environ["AOI_API_KEY"]
            forget_settings()
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "AOI_API_KEY" in json.loads(result.stdout)["error"] and (not key.strip() or key not in result.stdout)


def test_the_key_is_not_handed_to_bentoml_as_its_cloud_token(configure):
    env = process.environment(configure(API_KEY="a-real-key-0123456789"))
    assert "a-real-key-0123456789" not in {v for k, v in env.items() if k != "AOI_API_KEY"}


@pytest.mark.slow
def test_aoi_serve_in_the_foreground_stops_with_a_signal(configure, tmp_path):
    """The real thing: `aoi serve`, SIGTERM to its pid, and nothing of the service is left."""
    port = free_port()
    configure(SERVING__PORT=port)
    log = (tmp_path / "serve.log").open("wb")
    served = subprocess.Popen(
        [str(Path(sys.executable).with_name("aoi")), "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        process.wait_alive(f"http://127.0.0.1:{port}", timeout_s=240)
        wrapper = psutil.Process(served.pid)
        assert "serving.foreground" in " ".join(wrapper.cmdline())  # the CLI became the light wrapper (exec)
        group = [p.pid for p in wrapper.children(recursive=True)]
        rss_mb = wrapper.memory_info().rss / 2**20
        assert group and rss_mb < 60, rss_mb
        served.send_signal(signal.SIGTERM)
        served.wait(timeout=60)
        assert _gone(group, 10), [psutil.Process(p).cmdline() for p in group if psutil.pid_exists(p)]
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if served.poll() is None:
            served.kill()
        log.close()
