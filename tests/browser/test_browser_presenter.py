"""Real-browser test of issue 15, point 3: the presenter view on a projector of 1280 x 720 at 150 % zoom.

The browser is the projector test's: a CSS viewport of 853 x 480 drawn at 1.5 device pixels per CSS pixel,
against a server whose run store holds CPU/GPU, data-parallel and generated-data runs. The switch is turned on
by hand once (the page's type grows and the link says `presenter=1`); every page is then opened through a
presenter link after the step that fills it, and checked: no exception, nothing wider than the screen, no
chart text cut, the larger type. On Results every chart fits one screen, in width and height, and each is
screenshotted as the class sees it. Screenshots go to `out/screenshots/presenter_<page>.png` (whole page)
and `out/screenshots/presenter_results_<n>.png` (one chart per screen).
Run only this with `.venv/bin/pytest -m browser tests/browser/test_browser_presenter.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from lib.links import PRESENTER_PARAM
from lib.presets import PRESETS
from lib.store import RunStore
from tests.browser.conftest import RUNS_DB_NAME, streamlit_server
from tests.browser.test_browser_projector import (
    CHART,
    CHART_SVG,
    CHART_TEXT_DRAWN,
    CUT_CHART_TEXTS,
    CUT_METRIC_TEXTS,
    PAGES,
    SCREENSHOTS,
    SCRIPT_DONE,
    TEXT_SLACK_PX,
    PageVisit,
    compare_generated_run_and_measure,
    open_filled,
    save_full_page,
    seed_runs,
)
from tests.helpers.runs import device_run
from ui.keys import Key
from ui.presenter import PRESENTER_FONT_PX

pytestmark = pytest.mark.browser

STREAMLIT_FONT_PX = 16  # Streamlit's own base font size: its body text
STREAMLIT_SMALL_PX = 14  # Streamlit's captions and page links (0.875 rem): the smallest text on these pages
GROWTH = PRESENTER_FONT_PX / STREAMLIT_FONT_PX  # 1.25
HEADER = '[data-testid="stHeader"]'
MAIN = '[data-testid="stMain"]'
PARAGRAPH = f'{MAIN} [data-testid="stMarkdownContainer"] p'
SWITCH_INPUT = f".st-key-{Key.PRESENTER} input"
SWITCH_LABEL = f".st-key-{Key.PRESENTER} label"

# The font sizes (CSS px) of the main block's paragraphs.
TEXT_SIZES = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMarkdownContainer"] p')]
    .map(p => parseFloat(getComputedStyle(p).fontSize))"""

# Anything wider than the window: the page, or Streamlit's scrolling main block, scrolls sideways.
SIDEWAYS_SCROLL = """() => [document.documentElement, document.querySelector('[data-testid="stMain"]')]
    .filter(box => box && box.scrollWidth > box.clientWidth + 1).map(box => [box.scrollWidth, box.clientWidth])"""


def compare_in_the_middle_of_the_screen(page: Page) -> None:
    """The projector test's Results step, its run picker first brought to mid-screen so its menu has room."""
    picker = page.locator(f".st-key-{Key.RESULTS_COMPARE}")
    picker.evaluate("box => box.scrollIntoView({block: 'center'})")
    compare_generated_run_and_measure(page)


def measure_the_ceiling(page: Page) -> None:
    """Keeps the default comparison (the latest job: CPU vs GPU, as in a lesson) and measures the ceiling."""
    button = page.locator(f".st-key-{Key.RESULTS_MEASURE_CEILING} button")
    button.scroll_into_view_if_needed()
    button.click()


# The projector test's visits; Results also draws the confusion matrix of the latest job's runs.
VISITS = PAGES | {
    "results": dataclasses.replace(
        PAGES["results"], charts=PAGES["results"].charts + 1, fill=compare_in_the_middle_of_the_screen
    )
}


def seed_runs_with_confusion(store: RunStore) -> None:
    """The projector test's runs, then a CPU vs GPU job whose runs have a confusion matrix (the latest job)."""
    seed_runs(store)
    mixed_up = [[80 if true == predicted else 2 for predicted in range(10)] for true in range(10)]
    for device, epoch_s in (("cpu:0", [8.0, 6.0, 6.0]), ("gpu:0", [2.5, 0.8, 0.8])):
        run = dataclasses.replace(device_run(device, epoch_s), confusion=mixed_up)
        store.record(PRESETS["fashion-seed"].spec, run, preset="fashion-seed", job_id="job-learned")


@pytest.fixture(scope="module")
def seeded_app_url(tmp_path_factory) -> Iterator[str]:
    """A server whose run store holds `seed_runs_with_confusion`; yields its base URL."""
    folder = tmp_path_factory.mktemp("presenter")
    seed_runs_with_confusion(RunStore(folder / RUNS_DB_NAME))
    with streamlit_server(folder) as url:
        yield url


def font_px(page: Page, selector: str) -> float:
    """The computed font size of the first element the selector finds, in CSS px."""
    return page.locator(selector).first.evaluate("box => parseFloat(getComputedStyle(box).fontSize)")


def wait_for_presenter_type(page: Page) -> None:
    """Waits until the presenter view's style has reached the page: its root font is the presenter's."""
    page.wait_for_function(f"() => getComputedStyle(document.documentElement).fontSize === '{PRESENTER_FONT_PX}px'")


def presenter_visit(visit: PageVisit) -> PageVisit:
    """The same visit through a presenter link."""
    joiner = "&" if "?" in visit.path else "?"
    return dataclasses.replace(visit, path=f"{visit.path}{joiner}{PRESENTER_PARAM}=1")


def test_the_switch_makes_the_type_larger_and_puts_itself_in_the_link(projector, seeded_app_url):
    page = projector
    open_filled(page, seeded_app_url, VISITS["home"])
    before = font_px(page, PARAGRAPH)
    assert before == pytest.approx(STREAMLIT_FONT_PX)
    expect(page.locator(SWITCH_INPUT)).not_to_be_checked()
    page.locator(SWITCH_LABEL).click()
    expect(page.locator(SWITCH_INPUT)).to_be_checked()
    page.wait_for_selector(SCRIPT_DONE)
    wait_for_presenter_type(page)
    assert font_px(page, PARAGRAPH) == pytest.approx(GROWTH * before)
    expect(page).to_have_url(re.compile(rf"[?&]{PRESENTER_PARAM}=1(&|$)"))


@pytest.mark.parametrize("name", list(VISITS))
def test_every_page_fits_a_projector_in_the_presenter_view(projector, seeded_app_url, name):
    page = projector
    open_filled(page, seeded_app_url, presenter_visit(VISITS[name]))
    expect(page.locator(SWITCH_INPUT)).to_be_checked()
    wait_for_presenter_type(page)
    sizes = page.evaluate(TEXT_SIZES)
    assert sizes and min(sizes) >= GROWTH * STREAMLIT_SMALL_PX, sizes
    assert page.evaluate(SIDEWAYS_SCROLL) == [], "the page scrolls sideways"
    assert page.evaluate(CUT_METRIC_TEXTS) == [], "metrics cut off"
    assert page.evaluate(CUT_CHART_TEXTS, TEXT_SLACK_PX) == [], "chart texts cut off"
    save_full_page(page, f"presenter_{name}")


def test_each_results_chart_of_a_cpu_gpu_comparison_fits_one_screen(projector, seeded_app_url):
    page = projector
    open_filled(page, seeded_app_url, presenter_visit(dataclasses.replace(VISITS["results"], fill=measure_the_ceiling)))
    viewport = page.viewport_size
    header = page.locator(HEADER).bounding_box()["height"]
    charts = page.locator(CHART).all()
    assert len(charts) == VISITS["results"].charts
    for number, chart in enumerate(charts, start=1):
        chart.scroll_into_view_if_needed()
        expect(chart.locator(CHART_TEXT_DRAWN).first).to_be_attached()
        drawing = chart.locator(CHART_SVG).bounding_box()
        assert drawing["width"] <= viewport["width"], (number, drawing)
        assert drawing["height"] <= viewport["height"] - header, (number, drawing, header)
        # What the class sees: the chart at the top of the screen, below Streamlit's header.
        page.locator(MAIN).evaluate(
            "(main, [chart, header]) => main.scrollBy(0, chart.getBoundingClientRect().top - header)",
            [chart.element_handle(), header],
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"presenter_results_{number}.png")
