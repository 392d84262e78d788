"""Workbench fixtures: the app on a fresh catalog, and for browser tests the app served by uvicorn in a thread
with a real Chromium page (Playwright driving Debian's /usr/bin/chromium)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aoi.settings import Settings
from tests.helpers import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Real argon2id at its smallest cost: the library's default (64 MiB, 3 passes) takes a good part of a second
    per hash on a busy CI machine, and these tests log in many times."""
    from argon2 import PasswordHasher

    from workbench import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_DUMMY_HASH", None)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A test client of the workbench on this test's catalog (not logged in)."""
    from workbench.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The workbench served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    from workbench.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the workbench did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per test module (skipped where Debian's chromium is not installed). Not one per
    session: Playwright's sync API keeps an event loop running in the main thread while it is open, and Prefect's
    sync-compatible calls made there afterwards (by any later test) would return coroutines instead of results."""
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: the browser tests need Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(served, chromium):
    """``(base_url, page)``: a fresh browser context (no cookies) on the served workbench, 1200x800."""
    context = chromium.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield served, page
    context.close()
