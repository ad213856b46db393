"""Real-browser test of the main path: home -> Build (Fashion-MNIST preset) -> Train on CPU -> Results charts.

Also three browser sessions starting jobs at once: they queue and all finish, one after another.
The server gets its own run database in a temporary folder. Screenshots go to `out/screenshots/`.
Run only these with `.venv/bin/pytest -m browser tests/browser/test_browser_journey.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from lib.presets import PRESETS
from lib.spec import count_params
from lib.store import RunStore
from tests.browser.conftest import RUNS_DB_NAME, streamlit_server
from tests.conftest import REPO_ROOT
from ui.keys import Key

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO_ROOT / "out" / "screenshots"
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
SUCCESS = '[data-testid="stAlertContentSuccess"]'
INFO = '[data-testid="stAlertContentInfo"]'
CHART = '[data-testid="stVegaLiteChart"]'
SIDEBAR = '[data-testid="stSidebar"]'
JOB_TIMEOUT_MS = 300_000  # a queued tiny job waits for the ones ahead; each worker imports TensorFlow
TINY_LINK = "train?layers=1&units=32&epochs=1&batch=64&samples=300&devices=cpu:0"
OTHER_TINY_LINK = "train?layers=1&units=32&epochs=1&batch=64&samples=320&devices=cpu:0"  # not joined to TINY_LINK
# The first of three queued jobs trains for ~25 s (40 epochs of 20,000 samples), so the third is still waiting
# when looked at even on a loaded machine; tiny jobs alone (~8 s, mostly the worker's imports) finished before
# the third session had submitted in one clean-clone run.
QUEUE_HEAD_LINK = "train?layers=1&units=32&epochs=40&batch=64&samples=20000&devices=cpu:0"


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> Iterator[tuple[str, RunStore]]:
    """Starts the app on a free port with a fresh run database; yields its URL and that database."""
    folder = tmp_path_factory.mktemp("journey")
    with streamlit_server(folder) as url:
        yield url, RunStore(folder / RUNS_DB_NAME)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def wait_for_script(page: Page) -> None:
    page.wait_for_selector(SCRIPT_DONE)
    expect(page.locator(EXCEPTION)).to_have_count(0)


def finished_job_id(page: Page) -> str:
    """Waits for the "Job `...` finished." message and returns the job id in it."""
    success = page.locator(SUCCESS).filter(has_text="finished")
    expect(success).to_be_visible(timeout=JOB_TIMEOUT_MS)
    return re.search(r"Job (\w+) finished", success.inner_text()).group(1)


def test_new_user_goes_from_home_to_a_cpu_timing_chart(chromium, journey):
    url, store = journey
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(180_000)
    page = context.new_page()
    try:
        # Home page, then the sidebar's "Build a model".
        page.goto(url)
        wait_for_script(page)
        page.locator(SIDEBAR).get_by_role("link", name="Build a model").click()
        expect(page.get_by_role("heading", name="Build a model", level=1)).to_be_visible()
        wait_for_script(page)

        # One click loads a preset: CIFAR-10 first, then the tutorial's Fashion-MNIST test.
        parameters = page.locator('[data-testid="stMetricValue"]').first
        presets = page.locator(f".st-key-{Key.PRESET}")
        presets.get_by_role("radio", name="CIFAR-10, as in the tutorial").click()
        expect(parameters).to_have_text(f"{count_params(PRESETS['cifar10-seed'].spec):,}")
        presets.get_by_role("radio", name="Fashion-MNIST, as in the tutorial").click()
        expect(parameters).to_have_text(f"{count_params(PRESETS['fashion-seed'].spec):,}")
        expect(page.get_by_text("The tutorial's Fashion-MNIST test")).to_be_visible()
        wait_for_script(page)
        expect(page).to_have_url(re.compile(r"preset=fashion-seed.*layers=5.*units=500"))
        screenshot(page, "journey_1_build")

        # Train it on the CPU with a small sample.
        page.get_by_role("link", name="Train this model").click()
        expect(page.get_by_role("heading", name="Train", level=1)).to_be_visible()
        wait_for_script(page)
        expect(page.locator(f".st-key-{Key.DEVICES}")).to_contain_text("cpu:0")
        samples = page.locator(f".st-key-{Key.SAMPLE_LIMIT} input")
        samples.fill("500")
        samples.press("Enter")
        expect(page).to_have_url(re.compile(r"samples=500"))
        wait_for_script(page)
        # Before Train is pressed, the page says how long the chosen samples take here, as a range with its basis.
        expect(page.get_by_text(re.compile(r"^500 samples: about \d.* here \(.+\)\.$"))).to_be_visible()
        page.locator(f".st-key-{Key.TRAIN} button").click()
        expect(page.locator(f".st-key-{Key.CANCEL} button")).to_be_visible()
        expect(page.get_by_text(re.compile(r"epoch 0/"))).to_have_count(0)  # epochs count from 1
        screenshot(page, "journey_2_training")
        job_id = finished_job_id(page)
        expect(page.locator(CHART)).to_have_count(1)
        screenshot(page, "journey_3_trained")

        # The Results page draws the job's runs.
        page.get_by_role("link", name="See all charts on the Results page").click()
        expect(page.get_by_role("heading", name="Results", level=1)).to_be_visible()
        wait_for_script(page)
        expect(page.locator(CHART)).to_have_count(7)  # six of the timings, the confusion matrix of the real data
        expect(page.get_by_role("heading", name="What the model learned")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Total training time (of|per run)"))).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Default view\. "))).to_be_visible()
        screenshot(page, "journey_4_results")

        runs = store.runs(job_id=job_id)
        assert list(runs["device"]) == ["cpu:0"]
        assert list(runs["status"]) == ["done"]
        assert list(runs["preset"]) == ["fashion-seed"]
        assert runs["total_s"].iloc[0] > 0
    finally:
        context.close()


def test_three_sessions_queue_and_all_finish(chromium, journey):
    url, store = journey
    contexts = [chromium.new_context(viewport={"width": 1200, "height": 900}) for _ in range(3)]
    try:
        pages = []
        for context, link in zip(contexts, [QUEUE_HEAD_LINK, TINY_LINK, OTHER_TINY_LINK], strict=True):
            context.set_default_timeout(180_000)
            page = context.new_page()
            page.goto(f"{url}/{link}")
            expect(page.get_by_role("heading", name="Train", level=1)).to_be_visible()
            wait_for_script(page)
            pages.append(page)
        # One click at a time, each seen through (the Cancel button) before the next, so the jobs are
        # submitted in page order.
        for page in pages:
            page.locator(f".st-key-{Key.TRAIN} button").click()
            expect(page.locator(f".st-key-{Key.CANCEL} button")).to_be_visible()
        expect(pages[2].locator(INFO).filter(has_text="Waiting in the queue")).to_be_visible()
        screenshot(pages[2], "queue_3_waiting")

        job_ids = [finished_job_id(page) for page in pages]
        screenshot(pages[2], "queue_3_finished")
        assert len(set(job_ids)) == 3
        runs = store.runs(job_id=job_ids).set_index("job_id")
        assert set(runs["status"]) == {"done"}
        started = [runs.loc[job_id, "started_at"] for job_id in job_ids]
        assert started == sorted(started), "jobs must start in the order they were submitted"
    finally:
        for context in contexts:
            context.close()
