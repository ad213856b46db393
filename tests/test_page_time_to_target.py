"""AppTest of time to accuracy on the Train and Results pages: a real run stops at its target, and says when."""

from __future__ import annotations

import time

import pandas as pd

from lib.device_run import DeviceRun
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
