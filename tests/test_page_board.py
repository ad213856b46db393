"""AppTest of the class board: the queue in serving order with anonymous names, the running job, today's speedups.

Jobs are the worker's "fake" test hook (no Keras), submitted straight to the page's runner as sessions of
different browsers would; finished runs are written to the run store the way the runner writes them.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
import time

import pytest
from streamlit.testing.v1 import AppTest

import lib.executor
from lib.device_run import DeviceRun
from lib.presets import PRESETS
from lib.runner import anonymous_name
from lib.spec import ModelSpec
from tests.conftest import REPO_ROOT
from tests.helpers.fake_worker import FAKE_WORKER_COMMAND, HOOK_KEY
from ui import runtime

BOARD = str(REPO_ROOT / "app_pages" / "board.py")
FAKE_WAIT_S = 60  # upper bound for a fake job to start on a 2-core machine shared by others
OWNERS = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)  # four browser sessions


def fake_spec(hidden_units: tuple[int, ...] = (64,), epochs: int = 40) -> ModelSpec:
    """A model trained by the test worker's fake hook: `epochs` epochs of 0.5 s."""
    return ModelSpec(hidden_units=hidden_units, epochs=epochs, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.5}})


@pytest.fixture
def runner(runs_db, monkeypatch):
    """The board's job runner, with the tests' workers (hooks honoured) started cold; shut down when the test ends."""
    monkeypatch.setattr(lib.executor, "DEFAULT_WORKER_COMMAND", FAKE_WORKER_COMMAND)
    monkeypatch.setenv("GPUX_WARM_WORKER", "0")
    monkeypatch.setenv("GPUX_WARMUP", "0")
    yield runtime.runner()
    runtime.runner().shutdown()


def open_board() -> AppTest:
    at = AppTest.from_file(BOARD, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def page_text(at: AppTest) -> str:
    """Every text the board drew: headings, markdown, captions and metrics."""
    parts = [element.value for element in (*at.title, *at.header, *at.subheader, *at.markdown, *at.caption)]
    parts += [f"{metric.label} {metric.value}" for metric in at.metric]
    return "\n".join(parts)


def wait_until_running(job_id: str) -> None:
    deadline = time.monotonic() + FAKE_WAIT_S
    while runtime.runner().get(job_id).state != "running":
        assert time.monotonic() < deadline, "the first job did not start"
        time.sleep(0.2)


def test_the_queue_shows_serving_order_names_and_what_each_asked_for(runner):
    running = runner.submit(OWNERS[0], fake_spec(), ["cpu:0"], sample_limit=500, client="10.0.0.1")
    wait_until_running(running.id)
    preset_spec = PRESETS["fashion-seed"].spec.with_changes(extra=fake_spec().extra)
    second = runner.submit(
        OWNERS[1], preset_spec, ["cpu:0"], sample_limit=3000, preset="fashion-seed", client="10.0.0.2"
    )
    third = runner.submit(OWNERS[2], fake_spec((256, 128), epochs=3), ["cpu:0"], sample_limit=800, client="10.0.0.3")
    joined = runner.submit(
        OWNERS[3], preset_spec, ["cpu:0"], sample_limit=3000, preset="fashion-seed", client="10.0.0.4"
    )
    assert joined.id == second.id  # an identical request joins the queued job

    at = open_board()
    text = page_text(at)
    names = [anonymous_name(owner) for owner in OWNERS[:3]]
    assert [header.value for header in at.header][:2] == ["Training now", "Waiting: 2"]
    subheaders = [subheader.value for subheader in at.subheader]
    assert subheaders == [
        f"{names[0]}: 1 x Dense 64, relu on Fashion-MNIST",
        f"1. {names[1]}: Fashion-MNIST, as in the tutorial",
        f"2. {names[2]}: Dense 256 -> 128, relu on Fashion-MNIST",
    ]
    assert "cpu:0 · 500 samples · 40 epochs" in text
    assert "cpu:0 · 3,000 samples · 5 epochs" in text
    assert "cpu:0 · 800 samples · 3 epochs" in text
    assert "One run serves 2 requests" in text
    assert len(at.get("progress")) == 1  # the running job's one device
    assert re.search(r"cpu:0: (starting|epoch \d+ of 40)", text)
    for secret in (*OWNERS, running.id, second.id, third.id):
        assert secret not in text
    for job_id in (running.id, second.id, third.id):
        runner.cancel(job_id)


def test_a_running_job_counts_its_epochs_from_one(runner):
    slow = ModelSpec(hidden_units=(64,), epochs=40, extra={HOOK_KEY: {"fake": True, "epoch_s": 60}})
    job = runner.submit(OWNERS[0], slow, ["cpu:0"], sample_limit=500, client="10.0.0.1")
    deadline = time.monotonic() + FAKE_WAIT_S
    while runner.get(job.id).latest_progress("cpu:0") is None:  # the first epoch has started
        assert time.monotonic() < deadline, "the job did not start training"
        time.sleep(0.2)

    at = open_board()

    assert "cpu:0: epoch 1 of 40" in page_text(at)  # the epoch under way, never "epoch 0"
    assert at.get("progress")[0].proto.value == 0
    runner.cancel(job.id)


def test_an_idle_server_says_so(runner):
    at = open_board()
    text = page_text(at)
    assert "Nothing is training right now." in text
    assert "The queue is empty" in text
    assert "No run has finished today yet." in text


def record_job(job_id: str, spec: ModelSpec, seconds: dict[str, float], preset: str | None = None) -> list[int]:
    """Stores one finished job's runs, one per device, as the runner does."""
    run_ids = []
    for device, total_s in seconds.items():
        run = DeviceRun(device=device, backend="tensorflow", synthetic=True, num_train=2000, total_s=total_s)
        run.epoch_s = [total_s]
        run.first_epoch_s = run.steady_epoch_s = total_s
        run_ids.append(runtime.store().record(spec, run, preset=preset, job_id=job_id))
    return run_ids


def test_todays_finished_jobs_show_each_models_speedup(runner, runs_db):
    tuned = PRESETS["fashion-tuned"].spec
    record_job("1" * 12, tuned, {"cpu:0": 12.0, "gpu:0": 1.5}, preset="fashion-tuned")
    record_job("2" * 12, ModelSpec(hidden_units=(32,), epochs=2), {"cpu:0": 4.0})
    old = record_job("3" * 12, ModelSpec(hidden_units=(16,), epochs=2), {"cpu:0": 9.0, "gpu:0": 3.0})
    yesterday = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)).isoformat()
    with sqlite3.connect(runs_db) as connection:
        connection.executemany("UPDATE runs SET created_at = ? WHERE id = ?", [(yesterday, run_id) for run_id in old])

    at = open_board()
    assert "Finished today: 2" in [header.value for header in at.header]
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics == {
        "1 x Dense 32, relu on Fashion-MNIST": "4.00 s",
        "Fashion-MNIST, tuned for the GPU": "8.0x faster",
    }
    text = page_text(at)
    assert "2,000 samples · 2 epochs · cpu:0 only" in text
    assert "gpu:0 vs cpu:0" in text
    assert "1" * 12 not in text and "2" * 12 not in text
