"""AppTest of time to accuracy on the Train and Results pages: a real run stops at its target, and says when."""

from __future__ import annotations

import time

import pandas as pd

from lib.device_run import DeviceRun
from lib.lesson import Lesson, lesson_params
from lib.presets import PRESETS
from lib.spec import ModelSpec
from lib.store import RunStore
from tests.conftest import open_app_page
from ui import runtime
from ui.keys import Key

TINY = ModelSpec(hidden_units=(32,), epochs=3, batch_size=64)
JOB_WAIT_S = 240  # a worker process imports TensorFlow on a 2-core machine


def test_a_real_run_stops_at_its_target_and_the_table_says_when(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_WARMUP", "0")
    link = {"layers": "1", "units": "32", "epochs": "3", "batch": "64", "samples": "600", "devices": "cpu:0"}
    at = open_app_page("train", query=link)
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 600
    at.toggle(key=Key.TARGET_ON).set_value(True).run()
    assert at.number_input(key=Key.TARGET_ACCURACY).value == 0.85  # Fashion-MNIST's default target
    at.number_input(key=Key.TARGET_ACCURACY).set_value(0.3).run()
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception and not at.error
    assert runtime.runner().get(at.session_state[Key.JOB_ID]).request.target_accuracy == 0.3

    deadline = time.monotonic() + JOB_WAIT_S
    while not at.success and not (at.warning and "Job `" in at.warning[-1].value):
        assert time.monotonic() < deadline, "the job did not end in time"
        time.sleep(0.5)
        at.run()
    table = at.dataframe[0].value
    assert "(epoch 1, test accuracy" in table["Time to 30%"][0]
    assert list(table["Status"]) == ["done"]
    runtime.runner().shutdown()


def test_generated_images_cannot_stop_at_an_accuracy(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_WARMUP", "0")
    at = open_app_page("train", TINY)
    at.checkbox(key=Key.SYNTHETIC).check().run()

    assert at.toggle(key=Key.TARGET_ON).disabled
    assert any("generated images have random labels" in caption.value for caption in at.caption)


def test_results_show_each_compared_runs_time_to_target(runs_db):
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    for device, epoch_s, accuracies in (("cpu:0", 10.0, [0.80, 0.84, 0.849]), ("gpu:0", 1.0, [0.82, 0.86])):
        run = DeviceRun(device, "jax", False, num_train=6000)
        run.set_epoch_times([epoch_s] * len(accuracies))
        run.set_target(0.85, accuracies)
        store.record(seed, run, preset="fashion-seed", job_id="job-t")

    at = open_app_page("results")

    table = next(frame.value for frame in at.dataframe if "Time to target" in frame.value.columns)
    assert isinstance(table, pd.DataFrame) and len(table) == 2
    caption = next(caption.value for caption in at.caption if caption.value.startswith("First to 85%"))
    assert "gpu:0, in 2.00 s (epoch 2" in caption and "Not reached: cpu:0 (not reached in 3 epochs" in caption


def test_a_link_sets_the_target_and_the_runs_per_device_and_a_change_goes_back_into_it(runs_db):
    tiny = {"layers": "1", "units": "32", "epochs": "3", "batch": "64"}
    at = open_app_page("train", query={**tiny, "target": "0.8", "repeats": "3"})
    assert at.toggle(key=Key.TARGET_ON).value and at.number_input(key=Key.TARGET_ACCURACY).value == 0.8
    assert at.number_input(key=Key.REPEATS).value == 3

    at.number_input(key=Key.TARGET_ACCURACY).set_value(0.9).run()
    at.number_input(key=Key.REPEATS).set_value(1).run()
    assert at.query_params["target"] == "0.9" and "repeats" not in at.query_params
    at.toggle(key=Key.TARGET_ON).set_value(False).run()
    assert "target" not in at.query_params


def test_a_lesson_locks_or_hides_the_target_and_the_runs_per_device(fake_jobs):
    fixed = (("repeats", "2"), ("target", "0.7"))
    locked = lesson_params(Lesson(locked=("target", "repeats"), fixed=fixed))
    at = open_app_page("train", TINY, query={**locked, "repeats": "4"})
    assert at.toggle(key=Key.TARGET_ON).disabled and at.number_input(key=Key.TARGET_ACCURACY).disabled
    assert at.number_input(key=Key.TARGET_ACCURACY).value == 0.7
    assert at.number_input(key=Key.REPEATS).disabled and at.number_input(key=Key.REPEATS).value == 2

    hidden = lesson_params(Lesson(hidden=("target", "repeats"), fixed=fixed))
    at = open_app_page("train", TINY, query={**hidden, "devices": "cpu:0", "samples": "600"})
    assert not [toggle for toggle in at.toggle if toggle.key == Key.TARGET_ON]
    assert not [box for box in at.number_input if box.key == Key.REPEATS]
    at.button(key=Key.TRAIN).click().run()
    request = runtime.runner().get(at.session_state[Key.JOB_ID]).request
    assert (request.target_accuracy, request.repeats) == (0.7, 2)
