"""Real-browser test of a server fit for a classroom network: no request leaves this machine, a clean log.

The server starts as `make run` starts it (the repository's `.streamlit/config.toml`, every interface, no
extra flags), so the test sees what a class sees. Run only this with
`.venv/bin/pytest -m browser tests/browser/test_browser_offline.py`.
"""

from __future__ import annotations

import pathlib
import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SERVER_LOG_NAME, streamlit_server
from ui import runtime

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
NETWORK_SCHEMES = {"http", "https", "ws", "wss"}  # data: and blob: URLs are no request to any host
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
SIDEBAR = '[data-testid="stSidebar"]'
LOG_PROBLEMS = ("Traceback", "Inotify", "WARNING", "Did not auto detect external IP")  # none may appear


@pytest.fixture
def server_as_make_runs_it(tmp_path) -> Iterator[tuple[str, pathlib.Path]]:
    """`streamlit run streamlit_app.py --server.port N`, as the Makefile runs it; yields its URL and its log."""
    with streamlit_server(tmp_path, flags=()) as url:
        yield url, tmp_path / SERVER_LOG_NAME


def goes_outside(url: str) -> bool:
    """Whether a request the page made goes to a host other than this machine."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in NETWORK_SCHEMES and parts.hostname not in LOCAL_HOSTS


def open_page(page: Page, url: str, heading: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)


def test_pages_ask_no_outside_host_and_the_log_stays_clean(page: Page, server_as_make_runs_it):
    url, log_path = server_as_make_runs_it
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    open_page(page, url, "CPU vs GPU deep learning")
    icon = page.locator("link[rel*='icon']").first
    assert not goes_outside(urllib.parse.urljoin(url, icon.get_attribute("href")))
    open_page(page, f"{url}/gpu", "What is a GPU?")
    # The backend loads in the background; once it has, the page redraws itself with the backend's list.
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.get_by_text("cpu:0", exact=False).first).to_be_visible()
    expect(sidebar.get_by_text(runtime.BACKEND_LOADING_NOTE)).to_have_count(0)
    expect(page.get_by_text("built with", exact=False).first).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)

    outside = sorted({request for request in requested if goes_outside(request)})
    assert requested and outside == []
    log = log_path.read_text(errors="replace")
    for problem in LOG_PROBLEMS:
        assert problem not in log, f"the server log holds {problem!r}:\n{log[-4000:]}"
