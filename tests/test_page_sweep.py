"""AppTest of "Where does the GPU win?": one click queues a sweep, its points train, its charts are drawn.

Sweeps here are the test worker's "fake" jobs (the same events as training, no Keras), except where the
store is written directly: a stored CPU and GPU sweep draws the speedup and its crossover on any machine.
"""

from __future__ import annotations

import json
import time

from streamlit.testing.v1 import AppTest

from lib.device_run import DeviceRun
from lib.lesson import Lesson, lesson_params
from lib.presets import PRESETS
from lib.store import RunStore
from lib.sweep import DEFAULT_SWEEP_BATCHES
from tests.conftest import open_app_page
from tests.helpers.fake_worker import HOOK_KEY
from tests.helpers.sweeps import store_sweep
from ui import runtime
from ui.keys import Key

FAKE_WAIT_S = 90  # upper bound for a fake sweep to end (no Keras; a 2-core machine shared by others)
SPEC = PRESETS["fashion-seed"].spec
FAKE_SPEC = SPEC.with_changes(extra={HOOK_KEY: {"fake": True, "epoch_s": 0.05}})


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def chart_titles(at: AppTest) -> list[str]:
    titles = []
    for chart in charts(at):
        title = chart.get("title", {})
        titles.append(title.get("text") if isinstance(title, dict) else title)
    return [" ".join(title) if isinstance(title, list) else str(title) for title in titles]


def texts(at: AppTest) -> str:
    elements = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success]
    return "\n".join(element.value for element in elements)


def wait_for_sweep_end(at: AppTest) -> None:
    deadline = time.monotonic() + FAKE_WAIT_S
    while not at.success and not at.warning:
        assert time.monotonic() < deadline, "the sweep did not end in time"
        time.sleep(0.5)
        at.run()
        assert not at.exception


def test_one_click_sweeps_the_default_batch_sizes_and_draws_the_cpu_curve(fake_jobs):
    at = open_app_page("sweep", FAKE_SPEC)
    assert at.multiselect(key=Key.SWEEP_BATCHES).value == list(DEFAULT_SWEEP_BATCHES)
    assert at.multiselect(key=Key.SWEEP_DEVICES).value == ["cpu:0"]
    assert "4 short runs: 8,192 training samples each" in texts(at)  # 4 steps of 2,048 at least

    at.button(key=Key.SWEEP_START).click().run()
    assert not at.exception and not at.error
    job = runtime.runner().get(at.session_state[Key.JOB_ID])
    assert job.request.batch_sizes == DEFAULT_SWEEP_BATCHES and job.request.test_limit == 0
    assert at.button(key=Key.SWEEP_START).disabled
    wait_for_sweep_end(at)

    assert "done" in at.success[0].value
    assert any("Throughput" in title for title in chart_titles(at)), chart_titles(at)
    assert not any("Speedup" in title for title in chart_titles(at))
    assert "no GPU runs of this model yet" in texts(at)
    table = at.dataframe[0].value
    assert list(table["Batch size"]) == list(DEFAULT_SWEEP_BATCHES)


def test_a_cpu_only_sweep_cites_the_stored_gpu_runs_of_the_same_model(runs_db):
    store = RunStore()
    store_sweep(store, SPEC, {"cpu:0": {32: 4_000.0, 512: 9_000.0}})
    gpu = DeviceRun("gpu:0", "jax", synthetic=False, num_train=8192)
    gpu.set_epoch_times([1.0, 0.02])
    store.record(SPEC.with_changes(batch_size=1024), gpu, job_id="0123456789ab", hardware={"host": "gpu-box"})

    at = open_app_page("sweep", SPEC)

    assert "The latest sweep on this server" in [header.value for header in at.subheader]
    info = "\n".join(element.value for element in at.info)
    assert "gpu:0" in info and "1,024" in info
    layers = json.dumps(charts(at)[0])
    assert "stored" in layers.lower()


def test_a_stored_cpu_and_gpu_sweep_draws_the_speedup_with_its_crossover(runs_db):
    store_sweep(
        RunStore(),
        SPEC,
        {"cpu:0": {32: 4_000.0, 128: 6_000.0, 512: 8_000.0}, "gpu:0": {32: 2_000.0, 128: 12_000.0, 512: 80_000.0}},
    )

    at = open_app_page("sweep", SPEC)

    titles = chart_titles(at)
    assert any("Speedup" in title for title in titles), titles
    captions = "\n".join(caption.value for caption in at.caption)
    assert "gpu:0 overtakes cpu:0" in captions
    assert "Swept: **Fashion-MNIST**, 5 x Dense 500" in captions and "each batch size" in captions
    assert "10x" in captions or "10.0x" in captions or "10 times" in captions


def test_a_running_training_job_keeps_the_sweep_button_off_and_says_why(fake_jobs):
    at = open_app_page("sweep", FAKE_SPEC.with_changes(epochs=40, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.5}}))
    job = runtime.runner().submit(
        "trainer", FAKE_SPEC.with_changes(epochs=40), ["cpu:0"], sample_limit=100, synthetic=True
    )
    at.session_state[Key.OWNER_ID] = "trainer"
    at.session_state[Key.JOB_ID] = job.id
    at.run()

    assert at.button(key=Key.SWEEP_START).disabled
    assert "Your training job (Train page) is queued or running" in texts(at)
    runtime.runner().cancel(job.id)


def test_a_lesson_that_hides_the_devices_sweeps_the_lessons_devices(runs_db):
    at = open_app_page("sweep", SPEC, query=lesson_params(Lesson(hidden=("devices",))))

    assert not [box for box in at.multiselect if box.key == Key.SWEEP_DEVICES]
    assert "1 short run" not in texts(at) and "4 short runs" in texts(at)


def test_a_reloaded_sweep_link_follows_the_running_sweep_to_its_charts(fake_jobs):
    slow = SPEC.with_changes(extra={HOOK_KEY: {"fake": True, "epoch_s": 0.05, "sleep_before_s": 2.0}})
    first = open_app_page("sweep", slow)
    first.button(key=Key.SWEEP_START).click().run()
    job_id = first.session_state[Key.JOB_ID]
    link = dict(first.query_params)
    assert link["job"] == job_id

    reloaded = open_app_page("sweep", query=link)  # a new session on the same link, as after a reload

    assert reloaded.session_state[Key.JOB_ID] == job_id
    assert reloaded.button(key=Key.SWEEP_START).disabled
    wait_for_sweep_end(reloaded)
    assert any("Throughput" in title for title in chart_titles(reloaded)), chart_titles(reloaded)
    assert not [header for header in reloaded.subheader if "latest sweep on this server" in header.value]


def test_a_sweep_link_with_an_unknown_job_says_so_and_keeps_the_button(fake_jobs):
    at = open_app_page("sweep", query={"job": "0123456789ab"})

    assert Key.JOB_ID not in at.session_state
    assert any("no longer on this server" in warning.value for warning in at.warning)
    assert "job" not in at.query_params
    assert not at.button(key=Key.SWEEP_START).disabled


def test_a_links_batch_sizes_fill_the_box_and_a_changed_choice_goes_into_the_link(runs_db):
    at = open_app_page("sweep", query={"batches": "64,100,256"})  # 100 is no offered size: still shown
    box = at.multiselect(key=Key.SWEEP_BATCHES)
    assert box.value == [64, 100, 256] and at.query_params["batches"] == "64,100,256"

    box.set_value([32, 2048]).run()
    assert at.query_params["batches"] == "32,2048"
    box.set_value(list(DEFAULT_SWEEP_BATCHES)).run()  # the default is not written
    assert "batches" not in at.query_params


def test_a_lesson_that_locks_or_hides_the_batch_sizes_sweeps_the_lessons(fake_jobs):
    locked = lesson_params(Lesson(locked=("batches",), fixed=(("batches", "32,512"),)))
    at = open_app_page("sweep", FAKE_SPEC, query={**locked, "batches": "64,128"})
    box = at.multiselect(key=Key.SWEEP_BATCHES)
    assert box.disabled and box.value == [32, 512]
    assert any("batches=64,128" in warning.value for warning in at.warning)  # the link's own was replaced

    hidden = lesson_params(Lesson(hidden=("batches",), fixed=(("batches", "32,512"),)))
    at = open_app_page("sweep", FAKE_SPEC, query=hidden)
    assert not [box for box in at.multiselect if box.key == Key.SWEEP_BATCHES]
    at.button(key=Key.SWEEP_START).click().run()
    assert runtime.runner().get(at.session_state[Key.JOB_ID]).request.batch_sizes == (32, 512)


def test_a_point_that_fails_is_named_with_its_reason_and_the_others_are_drawn(fake_jobs):
    failing = SPEC.with_changes(extra={HOOK_KEY: {"fake": True, "epoch_s": 0.05, "fail_batch": 2048}})
    at = open_app_page("sweep", failing)
    at.button(key=Key.SWEEP_START).click().run()
    wait_for_sweep_end(at)

    warning = next(warning.value for warning in at.warning if "These points failed" in warning.value)
    assert "cpu:0 at batch 2,048: Out of memory on cpu:0" in warning.replace("\\", "")
    assert list(at.dataframe[0].value["Batch size"]) == [32, 128, 512]  # the others are drawn
