"""Real-browser tests of lesson mode on a projector-sized window: a lesson link opens its start page without the
menu, shows the teacher's note as literal text, keeps its locked control disabled, walks on with "Next", and
"Leave lesson mode" brings the menu back. A whole lesson, in the presenter view at 1280 x 720 and 150 % zoom:
from step 1 ("What is a GPU?") to the class's own timed run and a stored CPU and GPU sweep's crossover, with
the lesson's hidden controls absent and its locked ones disabled; each step is screenshotted to
`out/screenshots/lesson_walk_<n>_<page>.png`.

Run only these with `.venv/bin/pytest -m browser tests/browser/test_browser_lesson.py`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from lib.lesson import LESSON_STEPS, NOTE_PARAM, lesson_url, make_lesson
from lib.links import PRESENTER_PARAM
from lib.presets import PRESETS
from lib.store import RunStore
from tests.browser.conftest import RUNS_DB_NAME, streamlit_server
from tests.browser.test_browser_presenter import SIDEWAYS_SCROLL, wait_for_presenter_type
from tests.browser.test_browser_projector import (
    CHART,
    CUT_CHART_TEXTS,
    SWEEP_THROUGHPUT,
    TEXT_SLACK_PX,
    save_full_page,
    train_tiny_job,
)
from tests.helpers.sweeps import store_sweep
from ui.keys import Key

pytestmark = pytest.mark.browser

SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
SIDEBAR_NAV = '[data-testid="stSidebarNav"]'
PROJECTOR = {"width": 1280, "height": 720}
NOTE = "Watch **the** epoch times [here](https://example.com)"
LESSON = {"lesson": "1", "start": "build", "lock": "batch", "fix_batch": "1024", "note": NOTE}
LESSON_SPEC = PRESETS["fashion-seed"].spec  # the stored sweep's model (same dataset as the lesson's)


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


# --- A whole lesson on a projector: from "What is a GPU?" to a measured time and where the GPU wins ------

MODEL = {"layers": "1", "units": "32", "epochs": "1", "batch": "64", "samples": "320", "devices": "cpu:0"}
WALK_NOTE = "Guess first, then measure."
WALK_HIDDEN = ("preset", "devices", "samples")  # the class trains on the CPU, a class-sized sample
WALK_LOCKED = ("units", "batch", "epochs")  # drawn, disabled


@pytest.fixture(scope="module")
def sweep_app_url(tmp_path_factory) -> Iterator[str]:
    """A server whose store holds one CPU and GPU sweep of the lesson's dataset; yields its base URL."""
    folder = tmp_path_factory.mktemp("lesson")
    store_sweep(RunStore(folder / RUNS_DB_NAME), LESSON_SPEC, SWEEP_THROUGHPUT)
    with streamlit_server(folder) as url:
        yield url


def walk_link(base: str) -> str:
    """The teacher's link: the lesson form's lesson, starting on step 1, in the presenter view."""
    lesson = make_lesson("gpu", WALK_HIDDEN, WALK_LOCKED, {NOTE_PARAM: WALK_NOTE}, MODEL)
    return f"{lesson_url(base + '/', MODEL, lesson)}&{PRESENTER_PARAM}=1"


def next_step(page: Page, number: int, heading: str) -> None:
    """Follows the page's "Next" link to step `number`, and checks the lesson is still on, without the menu."""
    link = page.get_by_role("link", name=f"Next: {number}. {heading}")
    link.scroll_into_view_if_needed()
    link.click()
    wait_for_heading(page, heading)
    assert "lesson=1" in page.url
    expect(page.locator(SIDEBAR_NAV)).to_have_count(0)
    expect(page.get_by_text(WALK_NOTE, exact=True)).to_be_visible()


def test_a_class_walks_from_what_is_a_gpu_to_where_the_gpu_wins_on_a_projector(projector, sweep_app_url):
    page = projector
    page.goto(walk_link(sweep_app_url))
    wait_for_heading(page, LESSON_STEPS[0].title)
    expect(page.locator(SIDEBAR_NAV)).to_have_count(0)
    expect(page.get_by_text("Lesson mode", exact=False).first).to_be_visible()
    wait_for_presenter_type(page)
    save_full_page(page, "lesson_walk_1_gpu")

    next_step(page, 2, LESSON_STEPS[1].title)
    save_full_page(page, "lesson_walk_2_datasets")

    next_step(page, 3, LESSON_STEPS[2].title)
    expect(page.get_by_role("slider", name="Batch size")).to_be_disabled()
    expect(page.locator(f".st-key-{Key.PRESET}")).to_have_count(0)
    save_full_page(page, "lesson_walk_3_build")

    next_step(page, 4, LESSON_STEPS[3].title)
    expect(page.locator(f".st-key-{Key.DEVICES}")).to_have_count(0)
    expect(page.locator(f".st-key-{Key.SAMPLE_LIMIT}")).to_have_count(0)
    expect(page.get_by_role("slider", name="Epochs")).to_be_disabled()
    train_tiny_job(page)  # the class's own measurement, with the lesson's model and settings
    save_full_page(page, "lesson_walk_4_train")

    next_step(page, 5, LESSON_STEPS[4].title)
    expect(page.locator(CHART).first).to_be_attached()
    save_full_page(page, "lesson_walk_5_results")

    next_step(page, 6, LESSON_STEPS[5].title)
    expect(page.locator(f".st-key-{Key.SWEEP_DEVICES}")).to_have_count(0)  # the lesson's devices, hidden
    expect(page.locator(CHART)).to_have_count(2)
    expect(page.get_by_text("gpu:0 overtakes cpu:0 from about batch", exact=False)).to_be_visible()  # the caption
    expect(page.get_by_role("link", name=re.compile("^Next:"))).to_have_count(0)  # the last step
    assert page.evaluate(SIDEWAYS_SCROLL) == [], "the page scrolls sideways"
    assert page.evaluate(CUT_CHART_TEXTS, TEXT_SLACK_PX) == [], "chart texts cut off"
    save_full_page(page, "lesson_walk_6_sweep")
