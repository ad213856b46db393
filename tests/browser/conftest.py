"""Fixtures of the real-browser tests: a Streamlit server started from the repository and headless Chromium.

The server runs `streamlit run streamlit_app.py` as a subprocess on a free port with the test's own Python,
and is always terminated. Chromium is Debian's (/usr/bin/chromium), driven by Playwright's sync API; when it
is missing the tests fail (never skip) with the command that installs it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence

import pytest

from benchmarks.harness import CHROMIUM, CHROMIUM_ARGS, SERVER_FLAGS, ServerStartError, launch_streamlit

SERVER_START_TIMEOUT_S = 120  # the first start imports TensorFlow on a small machine
PAGE_TIMEOUT_MS = 180_000  # a page's first run may load a dataset and import Keras


RUNS_DB_NAME = "runs.sqlite"  # the run store of a test server, inside its log folder
SERVER_LOG_NAME = "server.log"  # the server's output, inside its log folder


@contextlib.contextmanager
def streamlit_server(
    log_dir: pathlib.Path, flags: Sequence[str] = SERVER_FLAGS, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Runs `streamlit run streamlit_app.py` from the repository root on a free port; always terminates it.

    The server keeps its run history in `log_dir/runs.sqlite` (`RUNS_DB_NAME`), never in the repository, and
    writes its output to `log_dir/server.log` (`SERVER_LOG_NAME`). `flags=()` starts it as `make run` does.
    `settings` adds environment variables (e.g. GPUX_RAY_ADDRESS).
    """
    env = {**os.environ, **(settings or {}), "GPUX_RUNS_DB": str(log_dir / RUNS_DB_NAME)}
    try:
        with launch_streamlit(
            log_dir / SERVER_LOG_NAME, env, flags=flags, start_timeout_s=SERVER_START_TIMEOUT_S
        ) as server:
            yield server.url
    except ServerStartError as error:
        pytest.fail(str(error))


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


PROJECTOR_SIZE = {"viewport": {"width": 853, "height": 480}, "device_scale_factor": 1.5}  # 1280 x 720 at 150 %


@pytest.fixture
def projector(chromium):
    """A fresh page in a projector's window: 1280 x 720 at 150 % zoom (853 x 480 CSS px at 1.5)."""
    context = chromium.new_context(**PROJECTOR_SIZE)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
