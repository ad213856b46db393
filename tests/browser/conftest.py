"""Fixtures of the real-browser tests: a Streamlit server started from the repository and headless Chromium.

The server runs `streamlit run streamlit_app.py` as a subprocess on a free port with the test's own Python,
and is always terminated. Chromium is Debian's (/usr/bin/chromium), driven by Playwright's sync API; when it
is missing the tests fail (never skip) with the command that installs it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 120  # the first start imports TensorFlow on a small machine
PAGE_TIMEOUT_MS = 180_000  # a page's first run may load a dataset and import Keras


RUNS_DB_NAME = "runs.sqlite"  # the run store of a test server, inside its log folder


def free_port() -> int:
    """Asks the operating system for a TCP port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, log_path: pathlib.Path) -> None:
    """Polls Streamlit's health endpoint until it answers "ok", failing if the server dies or takes too long."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not answer {url}/_stcore/health within {SERVER_START_TIMEOUT_S} s")


@contextlib.contextmanager
def streamlit_server(log_dir: pathlib.Path) -> Iterator[str]:
    """Runs `streamlit run streamlit_app.py` from the repository root on a free port; always terminates it.

    The server keeps its run history in `log_dir/runs.sqlite` (`RUNS_DB_NAME`), never in the repository.
    """
    port = free_port()
    log_path = log_dir / "server.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log_path.open("w") as log:
        env = {**os.environ, "GPUX_RUNS_DB": str(log_dir / RUNS_DB_NAME)}
        server = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(url, server, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    """A server shared by the module's page tests; yields its base URL."""
    with streamlit_server(tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture
def fresh_app_url(tmp_path) -> Iterator[str]:
    """A server of its own, for tests about the very first request a server gets."""
    with streamlit_server(tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Launches Debian's headless Chromium through Playwright; fails clearly when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Install it with `sudo apt-get install chromium chromium-driver` (or run `make system-deps`)."
        )
    from playwright.sync_api import expect, sync_playwright

    # A page's first run imports Keras or loads a dataset: far longer than Playwright's 5 s default.
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser page (its own context, so no session state is shared between tests)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    browser_page = context.new_page()
    try:
        yield browser_page
    finally:
        context.close()
