"""AppTest of the Train page: a tiny real training on CPU through the job runner, the queue, cancel and bad links.

Each test uses its own run database (the `runs_db` fixture), so it gets its own job runner.
"""

from __future__ import annotations

import json
import time

from streamlit.testing.v1 import AppTest

from lib.datasets import available_sources
from lib.devices import has_gpu, list_devices
from lib.keys import Key
from lib.spec import ModelSpec
from tests.conftest import REPO_ROOT

APP = str(REPO_ROOT / "streamlit_app.py")
TINY_SPEC = ModelSpec(hidden_units=(32,), epochs=1, batch_size=64)
JOB_WAIT_S = 240  # upper bound for a tiny job: a worker process imports TensorFlow on a 2-core machine


def open_train(spec: ModelSpec | None = None, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    if spec is not None:
        at.session_state[Key.MODEL_SPEC] = spec
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    return at


def job_state(at: AppTest) -> str:
    """Reruns the page and reads this session's job state from what the page shows."""
    at.run()
    assert not at.exception
    if at.success or (at.warning and "Job `" in at.warning[-1].value):
        return "final"
    if any("Waiting in the queue" in info.value for info in at.info):
        return "queued"
    return "running"


def wait_until_final(at: AppTest) -> None:
    deadline = time.monotonic() + JOB_WAIT_S
    while job_state(at) != "final":
        assert time.monotonic() < deadline, f"job did not finish within {JOB_WAIT_S} s"
        time.sleep(1.0)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def test_tiny_cpu_training_ends_with_results_on_both_pages(runs_db):
    # A shared link sets the model and the run: 1 hidden layer of 32 units, 1 epoch, 300 samples.
    at = open_train(query={"layers": "1", "units": "32", "epochs": "1", "batch": "64", "samples": "300"})
    assert at.session_state[Key.MODEL_SPEC].hidden_units == (32,)
    assert at.multiselect(key=Key.DEVICES).value == ["cpu:0"]
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 300
    assert at.slider(key=Key.EPOCHS).value == 1
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception and not at.error
    assert at.session_state[Key.JOB_ID]
    assert at.button(key=Key.TRAIN).disabled
    wait_until_final(at)

    assert "finished" in at.success[0].value
    table = at.dataframe[0].value
    assert list(table["Device"]) == ["cpu:0"]
    assert list(table["Status"]) == ["done"]
    assert table["Total time (s)"][0] > 0
    assert 0.0 <= table["Test accuracy"][0] <= 1.0
    assert any("speedup_text" in json.dumps(chart) for chart in charts(at))
    assert not at.button(key=Key.TRAIN).disabled

    at.switch_page("app_pages/results.py").run()
    assert not at.exception
    compared = at.multiselect(key=Key.RESULTS_COMPARE).value
    assert len(compared) == 1
    assert len(charts(at)) == 6
    history = next(frame.value for frame in at.dataframe if "Run" in frame.value.columns)
    assert list(history["Device"]) == ["cpu:0"]
    assert 0 < history["Samples"][0] <= 300  # the engine may drop a last partial batch


def test_second_session_waits_in_the_queue_and_both_cancel(runs_db):
    big = ModelSpec(hidden_units=(64,), epochs=50, batch_size=32)
    first = open_train(big)
    first.button(key=Key.TRAIN).click().run()
    second = open_train(big)
    second.button(key=Key.TRAIN).click().run()
    assert not second.exception
    assert any("Waiting in the queue: position 1" in info.value for info in second.info)

    second.button(key=Key.CANCEL).click().run()
    assert not second.exception
    wait_until_final(second)
    assert "was cancelled" in second.warning[-1].value

    assert job_state(first) != "final"
    first.button(key=Key.CANCEL).click().run()
    wait_until_final(first)
    assert "was cancelled" in first.warning[-1].value
    assert first.session_state[Key.JOB_ID] != second.session_state[Key.JOB_ID]


def test_progress_is_shown_while_running(runs_db):
    at = open_train(ModelSpec(hidden_units=(64,), epochs=50, batch_size=32))
    at.button(key=Key.TRAIN).click().run()
    deadline = time.monotonic() + JOB_WAIT_S
    texts: list[str] = []
    while not any("epoch" in text for text in texts):
        assert time.monotonic() < deadline, texts
        time.sleep(1.0)
        at.run()
        texts = [bar.proto.text for bar in at.get("progress")]
    assert texts[0].startswith("`cpu:0`: epoch ")
    assert "elapsed" in texts[0]
    at.button(key=Key.CANCEL).click().run()
    wait_until_final(at)
    assert at.warning[-1].value.startswith("Job `")


def test_bad_link_settings_are_ignored_with_a_notice(runs_db):
    at = open_train(query={"devices": "gpu:7,tpu:0", "samples": "lots", "epochs": "0"})
    notice = at.warning[0].value
    assert "gpu:7" in notice and "tpu:0" in notice and "samples='lots'" in notice and "epochs='0'" in notice
    assert at.multiselect(key=Key.DEVICES).value == ["cpu:0"]
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 60_000


def test_no_device_chosen_gives_a_message_not_a_traceback(runs_db):
    at = open_train(TINY_SPEC)
    at.multiselect(key=Key.DEVICES).set_value([]).run()
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception
    assert "at least one device" in at.error[0].value
    assert Key.JOB_ID not in at.session_state


def test_missing_dataset_trains_on_generated_images(runs_db):
    at = open_train(TINY_SPEC.with_changes(dataset="cifar10"))
    checkbox = at.checkbox(key=Key.SYNTHETIC)
    missing = not available_sources("cifar10")
    assert any("CIFAR-10 is not on this server" in warning.value for warning in at.warning) == missing
    assert checkbox.disabled == missing
    assert checkbox.value == missing


def test_gpu_notice_matches_the_devices(runs_db):
    at = open_train()
    no_gpu_notice = any("has no GPU" in info.value for info in at.info)
    assert no_gpu_notice == (not has_gpu(list_devices()))
