"""Real-browser journey with GPUX_RAY_ADDRESS set: the app's jobs run on a Ray cluster's machines.

The server points at the session's local cluster (`ray_cluster` in tests/conftest.py: a head and the training
nodes machine-1 and machine-2 on this machine). A student opens a tiny job's link, sees that jobs run on the
cluster and its machines, trains (the real worker, `python -m lib.worker`, as a Ray Job), and sees which machine
ran it on the Train page (the store keeps the machine with the run; the Results page's machine column and
filter are AppTests in tests/test_page_results.py). Screenshots go to `out/screenshots/`.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from lib.executor import RAY_ADDRESS_ENV
from lib.store import RunStore
from tests.browser.conftest import RUNS_DB_NAME, streamlit_server
from tests.browser.test_browser_journey import (
    CHART,
    JOB_TIMEOUT_MS,
    SIDEBAR,
    TINY_LINK,
    finished_job_id,
    screenshot,
    wait_for_script,
)
from tests.conftest import stop_cluster_jobs
from ui.keys import Key

pytestmark = pytest.mark.browser
MACHINES = ("machine-1", "machine-2")


def test_a_student_trains_on_a_cluster_machine_and_sees_which_one(chromium, ray_cluster, tmp_path):
    with streamlit_server(tmp_path, settings={RAY_ADDRESS_ENV: ray_cluster.address}) as url:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(JOB_TIMEOUT_MS)
        page: Page = context.new_page()
        try:
            page.goto(f"{url}/{TINY_LINK}")
            expect(page.get_by_role("heading", name="Train", level=1)).to_be_visible()
            wait_for_script(page)
            where = page.get_by_text(re.compile(r"^Jobs run on a Ray cluster at "))
            expect(where).to_contain_text(ray_cluster.address)
            for machine in MACHINES:
                expect(where).to_contain_text(machine)
            screenshot(page, "cluster_1_train_page")

            page.locator(f".st-key-{Key.TRAIN} button").click()
            job_id = finished_job_id(page)
            ran_on = page.get_by_text(re.compile(r"^Ran on machine-[12]"))
            expect(ran_on).to_be_visible()
            machine = re.match(r"Ran on (machine-[12])", ran_on.inner_text()).group(1)
            expect(page.locator(CHART)).to_have_count(1)
            screenshot(page, "cluster_2_trained")

            runs = RunStore(tmp_path / RUNS_DB_NAME).runs(job_id=job_id)
            assert list(runs["status"]) == ["done"]
            assert runs["hardware"].iloc[0]["node"] == machine

            page.locator(SIDEBAR).get_by_role("link", name="Results").click()
            expect(page.get_by_role("heading", name="Results", level=1)).to_be_visible()
            wait_for_script(page)
            expect(page.locator(CHART).first).to_be_visible()  # the history's Machine column is drawn on a canvas
            screenshot(page, "cluster_3_results")
        finally:
            context.close()
            stop_cluster_jobs(ray_cluster.address)
