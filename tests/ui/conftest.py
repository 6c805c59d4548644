"""Fixtures for the browser tests: one Ray instance, one Runner, one web view and one
Chromium for the whole module (each costs seconds to start).

Chromium is Debian's (``/usr/bin/chromium``, installed by ``make browser``), driven by
the ``playwright`` package; no browser is downloaded. Without either, the tests skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ray"))
from ray_support import kill_runner, start_ray  # noqa: E402

from runner.client import Client, connect  # noqa: E402

CHROMIUM = os.environ.get("RUNNER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS_ENV = "RUNNER_UI_SCREENSHOTS"  # a directory: the tests save the list and run pages there


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def ui_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    if not ray.is_initialized():
        start_ray()
    namespace = f"ui-{uuid.uuid4().hex[:12]}"
    store = "duckdb:///" + str(tmp_path_factory.mktemp("ui") / "runs.duckdb")
    client = connect(store=store, namespace=namespace)
    try:
        yield client
    finally:
        kill_runner(client)


@pytest.fixture(scope="module")
def ui_url(ui_client: Client) -> Iterator[str]:
    server = ui_client.ui(port=0, allow_actions=True)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        with contextlib.suppress(Exception):
            context.close()


def screenshot(page: Any, name: str) -> None:
    """Save the page under $RUNNER_UI_SCREENSHOTS (how docs/ui/*.png are made), if set."""
    directory = os.environ.get(SCREENSHOTS_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / name), full_page=True)
