"""Real-browser test of lesson mode on a projector-sized window: a lesson link opens its start page without the
menu, shows the teacher's note as literal text, keeps its locked control disabled, walks on with "Next", and
"Leave lesson mode" brings the menu back.

Run only these with `.venv/bin/pytest -m browser tests/browser/test_browser_lesson.py`.
"""

from __future__ import annotations

import urllib.parse

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
SIDEBAR_NAV = '[data-testid="stSidebarNav"]'
PROJECTOR = {"width": 1280, "height": 720}
NOTE = "Watch **the** epoch times [here](https://example.com)"
LESSON = {"lesson": "1", "start": "build", "lock": "batch", "fix_batch": "1024", "note": NOTE}


def wait_for_heading(page: Page, heading: str) -> None:
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    page.wait_for_selector(SCRIPT_DONE)
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_a_lesson_walks_a_class_through_its_steps_without_the_menu(page: Page, app_url: str, tmp_path):
    page.set_viewport_size(PROJECTOR)
    page.goto(f"{app_url}/?{urllib.parse.urlencode(LESSON)}")
    wait_for_heading(page, "Build a model")
    assert page.url.split("?")[0].rstrip("/").endswith("/build")
    expect(page.locator(SIDEBAR_NAV)).to_have_count(0)
    expect(page.get_by_text("Lesson mode", exact=False).first).to_be_visible()
    expect(page.get_by_text(NOTE, exact=True)).to_be_visible()  # literal: no bold, no link
    expect(page.get_by_role("link", name="here")).to_have_count(0)
    expect(page.get_by_role("slider", name="Batch size")).to_be_disabled()
    expect(page.get_by_role("slider", name="Epochs")).to_be_enabled()
    page.screenshot(path=tmp_path / "lesson_build.png")

    page.get_by_role("link", name="Next: 4. Train").click()
    wait_for_heading(page, "Train")
    assert "lesson=1" in page.url
    expect(page.get_by_text(NOTE, exact=True)).to_be_visible()
    page.screenshot(path=tmp_path / "lesson_train.png")

    page.get_by_role("button", name="Leave lesson mode").click()
    page.wait_for_selector(SCRIPT_DONE)
    expect(page.get_by_role("button", name="Leave lesson mode")).to_have_count(0)
    expect(page.locator(SIDEBAR_NAV)).to_have_count(1)
    assert "lesson=1" not in page.url
