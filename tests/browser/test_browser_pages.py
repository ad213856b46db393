"""Real-browser tests of the first two pages: the app as a visitor sees it in headless Chromium.

Run only these with `.venv/bin/pytest -m browser tests/browser`.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from ui.keys import Key

pytestmark = pytest.mark.browser

SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'
CHART = '[data-testid="stVegaLiteChart"]'
SIDEBAR = '[data-testid="stSidebar"]'
VERDICT = re.compile("Only the CPU was timed|The GPU overtakes the CPU|the GPU did not stay ahead")  # one is shown
ROUTER_TIMEOUT_MS = 10_000  # the sidebar is drawn before any page content


def open_page(page: Page, url: str, heading: str) -> None:
    """Opens a page and waits until its script has finished running."""
    page.goto(url)
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)


def assert_no_errors(page: Page) -> None:
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(ERROR_ALERT)).to_have_count(0)


def assert_router_ran(page: Page) -> None:
    """The router's sidebar (backend caption) and its page titles are shown, not Streamlit's file-name pages."""
    sidebar = page.locator(SIDEBAR)
    # Called once the script has finished, so the sidebar is complete: no long wait needed.
    expect(sidebar.get_by_text("Keras backend:")).to_be_visible(timeout=ROUTER_TIMEOUT_MS)
    expect(sidebar.get_by_role("link", name="What is a GPU?")).to_be_visible(timeout=ROUTER_TIMEOUT_MS)


def test_first_visit_by_deep_link_goes_through_the_router(page: Page, fresh_app_url: str, tmp_path):
    # A freshly started server whose first request is the GPU page's own link (a bookmark), not "/".
    # Streamlit 1.67 runs files in `app_pages/` directly (no router, no sidebar) until some session has run
    # st.navigation, and it serves the default page at "/" only, so "/gpu" must be a real route.
    open_page(page, f"{fresh_app_url}/gpu", "What is a GPU?")
    page.screenshot(path=tmp_path / "first_visit_gpu.png", full_page=True)
    expect(page.get_by_text("Page not found")).to_have_count(0, timeout=ROUTER_TIMEOUT_MS)
    assert_router_ran(page)


def test_gpu_page_explains_lists_devices_and_races(page: Page, app_url: str, tmp_path):
    open_page(page, f"{app_url}/gpu", "What is a GPU?")
    assert_no_errors(page)
    assert_router_ran(page)
    expect(page.get_by_text("Parallelism is the key.")).to_be_visible()
    expect(page.get_by_role("heading", name="This machine")).to_be_visible()
    # The device table's grid paints its cells on a canvas; their text lives in an accessibility table that is
    # never "visible", so the cell is checked for its text, not its visibility.
    cell = page.get_by_role("main").get_by_role("gridcell", name="cpu:0", exact=True, include_hidden=True)
    expect(cell.first).to_be_attached()
    page.screenshot(path=tmp_path / "gpu.png", full_page=True)

    # Streamlit draws elements below the fold only once they are scrolled into view.
    run_button = page.locator(f".st-key-{Key.MATMUL_RUN}")
    run_button.scroll_into_view_if_needed()
    run_button.get_by_role("button").click()
    for key in (Key.MATMUL_TIME_CHART, Key.MATMUL_GFLOPS_CHART):
        chart = page.locator(f".st-key-{key}")
        chart.scroll_into_view_if_needed()
        expect(chart.locator(CHART)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)
    assert_no_errors(page)
    expect(page.get_by_text(VERDICT)).to_be_visible()
    page.screenshot(path=tmp_path / "gpu_results.png", full_page=True)


def test_datasets_page_loads_fashion_mnist_by_default(page: Page, app_url: str, tmp_path):
    open_page(page, f"{app_url}/datasets", "Datasets")
    page.screenshot(path=tmp_path / "datasets.png", full_page=True)
    assert_no_errors(page)
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("Fashion-MNIST")
    expect(page.locator('[data-testid="stMetricValue"]').first).to_have_text("60,000")
    expect(page.get_by_text("x_train.shape  = (60000, 28, 28)")).to_be_visible()


def test_home_and_sidebar_lead_to_both_pages(page: Page, app_url: str):
    open_page(page, app_url, "CPU vs GPU deep learning")
    assert_no_errors(page)
    page.get_by_role("main").get_by_role("link", name="1. What is a GPU?").click()
    expect(page.get_by_role("heading", name="What is a GPU?", level=1)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)
    assert page.url.rstrip("/").endswith("/gpu")
    page.locator(SIDEBAR).get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Datasets", level=1)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)
    assert page.url.rstrip("/").endswith("/datasets")
    assert_no_errors(page)
