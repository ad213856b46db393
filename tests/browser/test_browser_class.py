"""Real-browser test of a class on a fresh server: two sessions set their own run and press Train together.

Issue 18's lost setting: on a fresh server, two sessions typed their samples, set their epochs and pressed
Train at nearly the same time, and one session's Devices box came back empty (or its disabled widgets
showed other numbers than its job trained). Here each session sets its devices, samples and epochs with
different values, without waiting for the server between the steps, and presses Train; each job's stored
runs must match what its page shows, and what the session set. Jobs are tiny (one hidden layer of 32).
Run only this with `.venv/bin/pytest -m browser tests/browser/test_browser_class.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from lib.store import RunStore
from tests.browser.conftest import RUNS_DB_NAME
from ui.keys import Key

pytestmark = pytest.mark.browser

SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'
SUCCESS = '[data-testid="stAlertContentSuccess"]'
JOB_TIMEOUT_MS = 300_000  # the second job waits for the first; each worker imports TensorFlow
TINY_LINK = "train?layers=1&units=32&batch=64"  # a tiny model; the run's settings come from the widgets


@dataclass(frozen=True)
class Choice:
    """What one session sets on the Train page."""

    reselect_devices: bool  # take cpu:0 out of the Devices box and choose it again
    samples: int  # typed into the samples input (whole batches of 64, so every sample trains)
    epoch_steps: int  # arrow-key presses on the epochs slider, from its start at 5


CHOICES = (Choice(reselect_devices=True, samples=320, epoch_steps=-3), Choice(False, 448, -2))


def devices_box(page: Page):
    return page.locator(f".st-key-{Key.DEVICES} .react-aria-ComboBox")


def epochs_slider(page: Page):
    return page.locator(f".st-key-{Key.EPOCHS} input[type=range]")


def samples_input(page: Page):
    return page.locator(f".st-key-{Key.SAMPLE_LIMIT} input")


def shown_devices(page: Page) -> list[str]:
    """The devices the page's box shows, in order."""
    return [tag.get_attribute("aria-label") for tag in devices_box(page).locator("[data-tag]").all()]


def set_run(page: Page, choice: Choice) -> None:
    """Sets devices, epochs and samples as a quick user does: one action after the other, no waiting."""
    if choice.reselect_devices:
        devices_box(page).get_by_role("button", name="Remove cpu:0").click()
        devices_box(page).get_by_role("combobox").fill("cpu:0")
        devices_box(page).get_by_role("combobox").press("Enter")
    slider = epochs_slider(page)
    slider.focus()
    for _ in range(abs(choice.epoch_steps)):
        slider.press("ArrowRight" if choice.epoch_steps > 0 else "ArrowLeft")
    samples_input(page).fill(str(choice.samples))  # committed when Train takes the focus


def shown_run(page: Page) -> tuple[list[str], int, int]:
    """The devices, samples and epochs the page shows now (read at once, no waiting for a value)."""
    return shown_devices(page), int(samples_input(page).input_value()), int(epochs_slider(page).input_value())


def expected_run(choice: Choice) -> tuple[list[str], int, int]:
    return ["cpu:0"], choice.samples, 5 + choice.epoch_steps


def finished_job_id(page: Page) -> str:
    """Waits for the "Job `...` finished." message and returns the job id in it."""
    success = page.locator(SUCCESS).filter(has_text="finished")
    expect(success).to_be_visible(timeout=JOB_TIMEOUT_MS)
    return re.search(r"Job (\w+) finished", success.inner_text()).group(1)


def test_two_sessions_on_a_fresh_server_each_train_what_their_page_shows(chromium, fresh_app_url, tmp_path):
    contexts = [chromium.new_context(viewport={"width": 1300, "height": 1000}) for _ in CHOICES]
    try:
        pages = []
        for context in contexts:
            context.set_default_timeout(180_000)
            page = context.new_page()
            page.goto(f"{fresh_app_url}/{TINY_LINK}")
            pages.append(page)
        for page in pages:
            expect(devices_box(page)).to_contain_text("cpu:0")
            expect(epochs_slider(page)).to_have_value("5")
        for page, choice in zip(pages, CHOICES, strict=True):
            set_run(page, choice)
        for page in pages:
            page.locator(f".st-key-{Key.TRAIN} button").click()
        for page, choice in zip(pages, CHOICES, strict=True):
            expect(page.locator(f".st-key-{Key.CANCEL} button")).to_be_visible()  # queued or training
            assert shown_run(page) == expected_run(choice), "the disabled widgets show another run"

        job_ids = [finished_job_id(page) for page in pages]
        assert len(set(job_ids)) == 2
        store = RunStore(tmp_path / RUNS_DB_NAME)
        for page, choice, job_id in zip(pages, CHOICES, job_ids, strict=True):
            page.wait_for_selector(SCRIPT_DONE)
            expect(page.locator(EXCEPTION)).to_have_count(0)
            expect(page.locator(ERROR_ALERT)).to_have_count(0)
            devices, samples, epochs = shown_run(page)
            assert (devices, samples, epochs) == expected_run(choice), "the page lost a setting"
            runs = store.runs(job_id=job_id)
            assert list(runs["device"]) == devices
            assert list(runs["num_train"]) == [samples] * len(devices)
            assert list(runs["epochs"]) == [epochs] * len(devices)
            assert list(runs["status"]) == ["done"] * len(devices)
    finally:
        for context in contexts:
            context.close()
