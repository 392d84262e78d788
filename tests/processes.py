"""Real servers as local processes for the multi-process tests, each in its own process group so that a
test stops exactly what it started (never `ray stop`, which would kill every Ray process on the host), even
when it fails."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_port

RAY = str(Path(sys.executable).with_name("ray"))
# A cluster runs with token authentication, as in production: the nodes read Ray's RAY_AUTH_TOKEN, `aoi train`
# reads the same token from its setting AOI_RAY__AUTH_TOKEN. One token per test session.
_CLUSTER_TOKEN = secrets.token_hex(32)
CLUSTER_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": _CLUSTER_TOKEN,
    "AOI_RAY__AUTH_TOKEN": _CLUSTER_TOKEN,
    "RAY_USAGE_STATS_ENABLED": "0",
}


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def alive_ray_nodes(address: str) -> int:
    probe = "import ray; ray.init(address=%r, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run(
        [sys.executable, "-c", probe % address],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **CLUSTER_ENV},
    )
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


@contextmanager
def loopback_ray(cpus_per_node: int = 1, timeout_s: float = 90):
    """A Ray head and one worker node as blocking `ray start` processes; yields the head's address."""
    port = free_port("127.0.0.2")
    # Ray replaces 127.0.0.1 by the machine's address; other loopback addresses it keeps, so the cluster's
    # traffic stays on loopback: the head on 127.0.0.2, the worker node on 127.0.0.3.
    address = f"127.0.0.2:{port}"
    env = {**os.environ, **CLUSTER_ENV}
    env.pop("RAY_ADDRESS", None)
    common = [f"--num-cpus={cpus_per_node}", "--num-gpus=0", "--block", "--disable-usage-stats"]
    nodes = [
        subprocess.Popen(
            [
                RAY,
                "start",
                "--head",
                f"--port={port}",
                "--node-ip-address=127.0.0.2",
                "--include-dashboard=false",
                *common,
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + timeout_s
        while alive_ray_nodes(address) < 1:
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(1)
        nodes.append(
            subprocess.Popen(
                [RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.3", *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        while alive_ray_nodes(address) < 2:
            assert time.monotonic() < deadline, "the Ray worker node did not join the head"
            time.sleep(1)
        yield address
    finally:
        for node in reversed(nodes):
            stop_group(node)


def wait_until(ready, timeout_s: float, what: str, log: Path | None = None, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what} within {timeout_s:.0f} s\n{tail}")
        time.sleep(every_s)


def answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def background(command: list[str], env: dict, log: Path):
    """A long-running command in its own process group, its output in ``log``; stopped on leaving."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_group(process)


@contextmanager
def postgres_database(admin_url: str, prefix: str):
    """A new, empty database on the test PostgreSQL server; yields its URL, drops it on leaving."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def prefect_server_on(database_url: str, home: Path, env: dict):
    """`prefect server start` with its database on PostgreSQL (asyncpg); yields the API URL."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_env = {
        **env,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "PREFECT_UI_API_URL": api,
    }
    server_env.pop("PREFECT_API_URL", None)
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = home / "server.log"
    with background([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], server_env, log):
        wait_until(lambda: answers(f"{api}/health"), 180, "the Prefect server did not answer", log, every_s=1)
        yield api
