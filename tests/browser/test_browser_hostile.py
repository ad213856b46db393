"""Real-browser tests of hostile links: nothing from a link renders, and no link stops a page.

Each payload (a markdown link, bold, LaTeX, a Streamlit colour directive) goes into every parameter the app
knows and into an unknown name; the page must draw it only as literal text. Huge and very long values draw
the Build page with one short notice. One server serves the whole module; its log must stay free of
tracebacks. Run only these with `.venv/bin/pytest -m browser tests/browser/test_browser_hostile.py`.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Locator, Page, expect

from lib.links import KNOWN_PARAMS, quote_fragment
from tests.browser.conftest import streamlit_server

pytestmark = pytest.mark.browser

SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
WARNING = '[data-testid="stAlertContentWarning"]'
NOTICE_HEADER = "Some settings in this link were changed"
PAYLOADS = ("[x](https://example.com)", "**b**", "$x$", ":red[t]")
SHORT_NOTICE_CHARS = 300  # one notice plus the header


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory) -> Iterator[tuple[str, pathlib.Path]]:
    """A server for the module, with the path of its log."""
    log_dir = tmp_path_factory.mktemp("hostile")
    with streamlit_server(log_dir) as url:
        yield url, log_dir / "server.log"


def open_with_link(page: Page, url: str, path: str, heading: str, params: dict[str, str]) -> Locator:
    """Opens a page through a link and waits for its heading and the end of its script; returns its warnings."""
    page.goto(f"{url}/{path}?{urlencode(params)}")
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    return page.locator(WARNING)


def assert_no_traceback(log: pathlib.Path) -> None:
    assert "Traceback" not in log.read_text(errors="replace")


def assert_nothing_from_the_link_rendered(page: Page) -> None:
    """No link to the payload's address, no bold or coloured payload text and no LaTeX anywhere on the page."""
    expect(page.locator('a[href*="example.com"]')).to_have_count(0)
    expect(page.locator("strong", has_text=re.compile(r"^\s*b\s*$"))).to_have_count(0)
    expect(page.locator(".katex")).to_have_count(0)
    expect(page.locator('[class*="stMarkdownColored"]')).to_have_count(0)
    expect(page.locator('span[style*="color"]', has_text=re.compile(r"^\s*t\s*$"))).to_have_count(0)


@pytest.mark.parametrize("payload", PAYLOADS, ids=["link", "bold", "latex", "colour"])
def test_markdown_in_every_parameter_shows_only_as_literal_text(page: Page, hostile_server, payload):
    url, log = hostile_server
    params = {name: payload for name in KNOWN_PARAMS} | {payload: payload}
    warning = open_with_link(page, url, "build", "Build a model", params)
    expect(warning).to_have_count(1)
    expect(warning).to_contain_text(NOTICE_HEADER)
    assert_nothing_from_the_link_rendered(page)
    # The notice is still there (notices stay while the model is the link's, so the checks above saw it),
    # and it shows the payload whole, as code: shown, not rendered.
    expect(warning.locator("code", has_text=payload).first).to_be_visible()
    assert_no_traceback(log)


def test_markdown_on_the_train_page_shows_only_as_literal_text(page: Page, hostile_server):
    url, log = hostile_server
    params = {name: PAYLOADS[index % len(PAYLOADS)] for index, name in enumerate(KNOWN_PARAMS)}
    warning = open_with_link(page, url, "train", "Train", params)
    expect(warning.filter(has_text=NOTICE_HEADER)).to_have_count(1)
    assert_nothing_from_the_link_rendered(page)
    expect(warning.filter(has_text=NOTICE_HEADER).locator("code").first).to_be_visible()
    assert_no_traceback(log)


@pytest.mark.parametrize(
    ("name", "value"),
    [("layers", str(10**30)), ("units", "1," * 2500)],
    ids=["layers-10-to-the-30", "5000-character-units"],
)
def test_huge_values_draw_the_build_page_with_one_short_notice(page: Page, hostile_server, name, value):
    url, log = hostile_server
    warning = open_with_link(page, url, "build", "Build a model", {name: value})
    expect(warning).to_have_count(1)
    expect(warning.locator("code")).to_have_text(f"{name}={quote_fragment(value)}")
    text = warning.inner_text()
    assert NOTICE_HEADER in text and len(text) <= SHORT_NOTICE_CHARS, text
    assert_no_traceback(log)
