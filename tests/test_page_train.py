"""AppTest of the Train page: a tiny real training on CPU, then the queue, coalescing, links and lost settings.

Each test uses its own run database (the `runs_db` fixture), so it gets its own job runner. Apart from the
first test, jobs are the worker's "fake" test hook (same events as a real job, no Keras): the `fake_jobs`
fixture enables it, turns off the warm spare and the server's background import of Keras, and shuts the
runner down at the end. Two AppTests on one database are two browser sessions of one server: they share
its runner.
"""

from __future__ import annotations

import json
import platform
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import lib.executor
from lib.backend import backend_name
from lib.datasets import available_sources
from lib.devices import has_gpu, list_devices
from lib.estimates import median_overhead, suggest_sample_limit
from lib.executor import ExecutorStatus, LocalExecution, LocalExecutor, Machine
from lib.jobs import JobSnapshot, JobState
from lib.links import RunSettings
from lib.presets import PRESETS
from lib.spec import ModelSpec
from tests.conftest import REPO_ROOT, open_app_page
from tests.helpers.fake_worker import HOOK_KEY
from ui import runtime
from ui.keys import Key

APP = str(REPO_ROOT / "streamlit_app.py")
TINY_SPEC = ModelSpec(hidden_units=(32,), epochs=1, batch_size=64)
JOB_WAIT_S = 240  # upper bound for a tiny job: a worker process imports TensorFlow on a 2-core machine
FAKE_WAIT_S = 60  # upper bound for a fake job to reach a state (no Keras, a 2-core machine shared by others)


def fake_spec(epochs: int = 40, epoch_s: float = 0.5) -> ModelSpec:
    """The tutorial's Fashion-MNIST model, trained by the test worker's fake hook (`epochs` x `epoch_s` seconds)."""
    return PRESETS["fashion-seed"].spec.with_changes(
        epochs=epochs, extra={HOOK_KEY: {"fake": True, "epoch_s": epoch_s}}
    )


def open_train(spec: ModelSpec | None = None, query: dict[str, str] | None = None) -> AppTest:
    return open_app_page("train", spec, query)


def job_state(at: AppTest) -> str:
    """Reruns the page and reads this session's job state from what the page shows."""
    at.run()
    assert not at.exception
    if at.success or (at.warning and "Job `" in at.warning[-1].value):
        return "final"
    if any("Waiting in the queue" in info.value for info in at.info):
        return "queued"
    return "running"


def wait_until(at: AppTest, state: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while job_state(at) != state:
        assert time.monotonic() < deadline, f"the job did not become {state} within {timeout_s} s"
        time.sleep(0.5)


def wait_until_final(at: AppTest, timeout_s: float = JOB_WAIT_S) -> None:
    wait_until(at, "final", timeout_s)


def session_job(at: AppTest) -> JobSnapshot:
    """The job this session follows, as the server's runner has it."""
    return runtime.runner().get(at.session_state[Key.JOB_ID])


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def texts(at: AppTest) -> str:
    """Everything the page wrote in markdown, captions and alerts, as one string."""
    elements = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success]
    return "\n".join(element.value for element in elements)


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
    assert "There too: what the model learned" in texts(at)  # real data: a confusion matrix was kept
    assert not at.button(key=Key.TRAIN).disabled

    at.switch_page("app_pages/results.py").run()
    assert not at.exception
    compared = at.multiselect(key=Key.RESULTS_COMPARE).value
    assert len(compared) == 1
    assert len(charts(at)) == 7  # the six comparison charts and the run's confusion matrix
    assert "What the model learned" in [header.value for header in at.subheader]
    history = next(frame.value for frame in at.dataframe if "Samples" in frame.value.columns)
    assert list(history["Device"]) == ["cpu:0"]
    assert 0 < history["Samples"][0] <= 300  # the engine may drop a last partial batch
    runtime.runner().shutdown()


def test_a_class_sized_sample_limit_is_suggested_and_trained(fake_jobs):
    at = open_train(fake_spec())
    expected = suggest_sample_limit(
        fake_spec(),
        ["cpu:0"],
        runtime.finished_runs(),
        overhead_s=median_overhead(()),
        max_samples=60_000,
        backend=backend_name(),
    )
    samples = at.number_input(key=Key.SAMPLE_LIMIT)
    assert samples.value == expected.samples
    assert fake_spec().batch_size <= expected.samples < 60_000
    assert f"{expected.samples:,} samples, suggested for a class:" in texts(at)
    assert " s here (" in texts(at)
    assert at.button(key=Key.USE_ALL_SAMPLES).label == "Use all 60,000 samples"

    at.button(key=Key.TRAIN).click().run()
    assert not at.exception and not at.error
    job = session_job(at)
    assert job.request.sample_limit == expected.samples
    assert job.request.devices == ("cpu:0",)
    assert job.request.spec.epochs == 40
    assert at.query_params["job"] == job.id  # a reload finds the job again
    at.button(key=Key.CANCEL).click().run()
    wait_until_final(at, FAKE_WAIT_S)


def test_the_whole_dataset_is_one_click_away_and_the_suggestion_one_more(fake_jobs):
    at = open_train(fake_spec())
    suggested = at.number_input(key=Key.SAMPLE_LIMIT).value
    at.button(key=Key.USE_ALL_SAMPLES).click().run()
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 60_000
    assert at.query_params["samples"] == "60000"
    assert "60,000 samples: " in texts(at)
    at.button(key=Key.USE_SUGGESTED_SAMPLES).click().run()
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == suggested
    assert "samples" not in at.query_params


def test_a_links_samples_and_a_typed_number_win_over_the_suggestion(fake_jobs):
    at = open_train(query={"preset": "fashion-seed", "epochs": "40", "samples": "1234"})
    at.session_state[Key.MODEL_SPEC] = fake_spec()  # the link's model, trained by the fake hook
    at.run()
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 1234
    assert "1,234 samples: " in texts(at)
    assert at.button(key=Key.USE_SUGGESTED_SAMPLES).label.startswith("Back to the suggested ")

    at.number_input(key=Key.SAMPLE_LIMIT).set_value(777).run()
    at.slider(key=Key.EPOCHS).set_value(7).run()  # a new suggestion for 7 epochs, but a typed number stays
    at.switch_page("app_pages/build.py").run()
    at.switch_page("app_pages/train.py").run()
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 777
    assert at.slider(key=Key.EPOCHS).value == 7
    at.button(key=Key.TRAIN).click().run()
    job = session_job(at)
    assert (job.request.sample_limit, job.request.spec.epochs) == (777, 7)
    at.button(key=Key.CANCEL).click().run()


def test_what_the_page_shows_is_what_the_job_trains_when_train_comes_with_an_edit(fake_jobs):
    # Issue 18's lost setting: an edit and the Train click reach the server in one request (the browser
    # commits a typed number when the click takes the focus). The disabled widgets of the next run used to
    # show the values from before the edit (60,000 samples, 5 epochs) while the job trained 3,000 and 6.
    at = open_train(fake_spec(epochs=5))
    at.number_input(key=Key.SAMPLE_LIMIT).set_value(3000)
    at.slider(key=Key.EPOCHS).set_value(6)
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception and not at.error
    job = session_job(at)
    assert (job.request.sample_limit, job.request.spec.epochs, job.request.devices) == (3000, 6, ("cpu:0",))
    assert at.number_input(key=Key.SAMPLE_LIMIT).disabled
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 3000
    assert at.slider(key=Key.EPOCHS).value == 6
    assert at.multiselect(key=Key.DEVICES).value == ["cpu:0"]
    at.button(key=Key.CANCEL).click().run()


def test_a_browser_that_lost_a_widget_value_falls_back_to_the_sessions_choice(fake_jobs):
    # Issue 18's emptied Devices box: under load the browser sometimes sent a rerun without the box's value
    # and the next one with the box's own default, an empty list, which the page took as the user's choice.
    # Each widget's default must be what the session chose, so falling back to it changes nothing.
    at = open_train(fake_spec(epochs=5))
    at.number_input(key=Key.SAMPLE_LIMIT).set_value(3000).run()
    at.slider(key=Key.EPOCHS).set_value(6).run()
    at.switch_page("app_pages/build.py").run()  # another page drops the Train widgets' state
    at.switch_page("app_pages/train.py").run()
    at.run()

    devices = at.multiselect(key=Key.DEVICES)
    epochs = at.slider(key=Key.EPOCHS)
    samples = at.number_input(key=Key.SAMPLE_LIMIT)
    devices.set_value([devices.options[index] for index in devices.proto.default])  # what the browser falls back to
    epochs.set_value(int(epochs.proto.default[0]))
    samples.set_value(int(samples.proto.default))
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception and not at.error
    job = session_job(at)
    assert (job.request.devices, job.request.sample_limit, job.request.spec.epochs) == (("cpu:0",), 3000, 6)
    at.button(key=Key.CANCEL).click().run()


def test_second_session_waits_in_the_queue_and_both_cancel(fake_jobs):
    first = open_train(fake_spec())
    first.button(key=Key.TRAIN).click().run()
    second = open_train(fake_spec())
    second.number_input(key=Key.SAMPLE_LIMIT).set_value(2000).run()  # another request: it queues, not joins
    second.button(key=Key.TRAIN).click().run()
    assert not second.exception
    assert any("Waiting in the queue: position 1" in info.value for info in second.info)

    second.button(key=Key.CANCEL).click().run()
    assert not second.exception
    wait_until_final(second, FAKE_WAIT_S)
    assert "was cancelled" in second.warning[-1].value

    assert job_state(first) != "final"
    first.button(key=Key.CANCEL).click().run()
    wait_until_final(first, FAKE_WAIT_S)
    assert "was cancelled" in first.warning[-1].value
    assert first.session_state[Key.JOB_ID] != second.session_state[Key.JOB_ID]


def test_identical_requests_share_one_run_and_a_cancel_takes_back_one_request(fake_jobs):
    first = open_train(fake_spec())
    second = open_train(fake_spec())
    first.button(key=Key.TRAIN).click().run()
    second.button(key=Key.TRAIN).click().run()
    assert not second.exception and not second.error
    assert first.session_state[Key.JOB_ID] == second.session_state[Key.JOB_ID]
    for at in (first, second):
        at.run()
        assert "One run serves 2 requests" in texts(at)
        assert "share this one measurement" in texts(at)
        assert at.button(key=Key.CANCEL).label == "Cancel my request"
        assert "cancelling takes back only your request" in texts(at)

    second.button(key=Key.CANCEL).click().run()
    assert not second.exception
    assert Key.JOB_ID not in second.session_state
    assert "The run goes on for the other sessions" in texts(second)
    assert not second.button(key=Key.TRAIN).disabled
    assert "job" not in second.query_params
    assert job_state(first) != "final"
    assert "One run serves" not in texts(first)
    assert first.button(key=Key.CANCEL).label == "Cancel"
    first.button(key=Key.CANCEL).click().run()
    wait_until_final(first, FAKE_WAIT_S)
    assert "was cancelled" in first.warning[-1].value


def page_report(at: AppTest) -> str:
    """What a failing page test needs to know: the session's job and every alert and bar the page shows."""
    alerts = [
        f"{kind}: {element.value}" for kind in ("error", "warning", "info", "success") for element in at.get(kind)
    ]
    shown = [bar.proto.text for bar in at.get("progress")]
    return f"job id {at.session_state.get(Key.JOB_ID)}; alerts {alerts}; bars {shown}"


def click_train(at: AppTest) -> str:
    """Presses Train and returns the job id it started; fails with what the page said when it started none."""
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception, at.exception
    assert Key.JOB_ID in at.session_state and not at.error, f"Train started no job: {page_report(at)}"
    return at.session_state[Key.JOB_ID]


def bars(at: AppTest) -> list[tuple[float, str]]:
    """Each progress bar's fraction and text."""
    return [(bar.proto.value / 100, bar.proto.text) for bar in at.get("progress")]


def wait_for_bar(at: AppTest, text: str) -> list[tuple[float, str]]:
    """Reruns the page until a progress bar shows `text`; returns every bar seen on the way."""
    deadline = time.monotonic() + FAKE_WAIT_S
    seen: list[tuple[float, str]] = []
    while not any(text in shown for _, shown in seen):
        assert time.monotonic() < deadline, f"no bar showed {text!r} within {FAKE_WAIT_S} s: {seen}; {page_report(at)}"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
        seen += bars(at)
    return seen


def test_progress_is_shown_while_running_and_counts_epochs_from_one(fake_jobs):
    # Each state lasts one 4 s epoch, so a rerun sees it on a loaded machine. The test used to wait for
    # "epoch 1/" with 0.5 s epochs: it showed for 0.5 s only, and a slow rerun that missed it saw no bar
    # until the job had ended (a flake of clean-clone CI runs).
    at = open_train(fake_spec(epochs=3, epoch_s=4.0))
    click_train(at)
    seen = wait_for_bar(at, "epoch 2/3")
    shown = [(fraction, text) for fraction, text in seen if "waiting" not in text]
    assert shown[0][1].startswith("`cpu:0`: epoch 1/3, starting"), seen  # the first epoch is epoch 1, not 0
    assert "epoch 1/3 done" in " ".join(text for _, text in shown) and "elapsed" in shown[-1][1]
    assert not any("epoch 0" in text for _, text in seen)
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    at.button(key=Key.CANCEL).click().run()
    wait_until_final(at, FAKE_WAIT_S)
    assert at.warning[-1].value.startswith("Job `")


def test_cancel_says_stopping_at_once_disables_itself_and_the_table_shows_dashes(fake_jobs):
    # A worker that ignores SIGTERM stays "stopping" until the runner kills it after its grace period.
    at = open_train(fake_spec().with_changes(extra={HOOK_KEY: {"fake": True, "epoch_s": 0.5, "ignore_sigterm": True}}))
    runtime.runner().cancel_grace_s = 4.0
    click_train(at)
    wait_for_bar(at, "epoch 1/")  # training: the worker ignores SIGTERM from now on
    assert at.button(key=Key.CANCEL).label == "Cancel" and not at.button(key=Key.CANCEL).disabled

    at.button(key=Key.CANCEL).click().run()
    assert not at.exception
    button = at.button(key=Key.CANCEL)
    assert (button.label, button.disabled) == ("Stopping...", True), page_report(at)
    assert any(markdown.value.startswith("**Stopping") for markdown in at.markdown)
    at.run()
    assert at.button(key=Key.CANCEL).disabled  # the session remembers that it asked
    wait_until_final(at, FAKE_WAIT_S)

    assert "was cancelled" in at.warning[-1].value
    table = at.dataframe[0]
    assert table.proto.placeholder == "—"  # what a missing value shows, instead of "None"
    row = table.value.iloc[0]
    assert row["Status"] == "cancelled" and pd.isna(row["Test accuracy"])
    assert not table.value.isin(["None", "nan"]).any().any()


def test_accuracy_on_generated_images_is_not_shown_as_an_accuracy(fake_jobs):
    spec = fake_spec(epochs=2, epoch_s=0.05).with_changes(
        extra={HOOK_KEY: {"fake": True, "epoch_s": 0.05, "test_accuracy": 1.0}}
    )
    at = open_train(spec)
    at.checkbox(key=Key.SYNTHETIC).check().run()
    click_train(at)
    wait_until_final(at, FAKE_WAIT_S)

    assert "finished" in at.success[0].value
    table = at.dataframe[0].value
    assert table["Status"][0] == "done" and pd.isna(table["Test accuracy"][0])  # shown as a dash, not 100.0%
    assert "Generated images" in table["Note"][0]
    assert "generated images" in texts(at) and "accuracy" in texts(at)


def test_a_finished_job_can_be_taken_home_as_a_script_and_a_notebook(fake_jobs):
    at = open_train(fake_spec(epochs=2, epoch_s=0.05))
    click_train(at)
    wait_until_final(at, FAKE_WAIT_S)
    assert "finished" in at.success[0].value
    buttons = {button.proto.id.rpartition("-")[2]: button.proto.label for button in at.get("download_button")}
    assert buttons[Key.TRAIN_SCRIPT] == "Download Python script"
    assert buttons[Key.TRAIN_NOTEBOOK] == "Download notebook"


def test_a_link_with_the_job_finds_it_after_a_reload(fake_jobs):
    first = open_train(fake_spec())
    first.button(key=Key.TRAIN).click().run()
    job_id = first.session_state[Key.JOB_ID]
    link = dict(first.query_params)
    assert link["job"] == job_id

    reloaded = open_train(query=link)  # a new session on the same link, as after a reload
    assert reloaded.session_state[Key.JOB_ID] == job_id
    assert reloaded.button(key=Key.TRAIN).disabled
    assert job_state(reloaded) in ("queued", "running")
    reloaded.button(key=Key.CANCEL).click().run()  # it takes back only its own request
    assert job_state(first) != "final"
    first.button(key=Key.CANCEL).click().run()
    wait_until_final(first, FAKE_WAIT_S)


def test_a_link_with_an_unknown_job_says_so_in_a_few_words(fake_jobs):
    at = open_train(query={"job": "0123456789ab"})
    assert not at.exception
    assert Key.JOB_ID not in at.session_state
    message = next(warning.value for warning in at.warning if "no longer on this server" in warning.value)
    assert len(message) < 200
    assert "job" not in at.query_params
    assert not at.button(key=Key.TRAIN).disabled


def test_a_choice_the_server_cannot_train_is_changed_with_a_message_never_silently(fake_jobs):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[Key.MODEL_SPEC] = TINY_SPEC.with_changes(dataset="cifar10")  # 50,000 training images
    at.session_state[Key.RUN_SETTINGS] = RunSettings(devices=("cpu:0", "gpu:7"), sample_limit=60_000)
    at.session_state[Key.DEVICES_RESOLVED] = True  # as after an earlier view that listed gpu:7
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    assert at.multiselect(key=Key.DEVICES).value == ["cpu:0"]
    assert any("gpu:7 is not on this server now" in warning.value for warning in at.warning)
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == 50_000
    assert "You chose 60,000; CIFAR-10 has 50,000 here, so all of them train." in texts(at)


def test_bad_link_settings_are_ignored_with_a_notice(fake_jobs):
    at = open_train(query={"devices": "gpu:7,tpu:0", "samples": "lots", "epochs": "0"})
    notice = at.warning[0].value
    assert "gpu:7" in notice and "tpu:0" in notice and "samples=lots" in notice and "epochs=0" in notice
    assert at.multiselect(key=Key.DEVICES).value == ["cpu:0"]
    suggested = at.session_state[Key.SAMPLE_SUGGESTION][1].samples
    assert at.number_input(key=Key.SAMPLE_LIMIT).value == suggested


def test_no_device_chosen_gives_a_message_not_a_traceback(fake_jobs):
    at = open_train(TINY_SPEC)
    at.multiselect(key=Key.DEVICES).set_value([]).run()
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception
    message = at.error[0].value
    assert "at least one device" in message and "Devices box" in message
    assert "[" not in message and "]" not in message  # no Python list
    assert Key.JOB_ID not in at.session_state
    at.switch_page("app_pages/build.py").run()
    at.switch_page("app_pages/train.py").run()
    assert at.multiselect(key=Key.DEVICES).value == []  # an emptied box stays the user's choice


def owner_texts(at: AppTest) -> list[str]:
    """The markdown folded away for the server's owner."""
    return [m.value for e in at.expander if e.label.startswith("For the server's owner") for m in e.markdown]


def test_a_model_over_a_limit_is_refused_in_the_pages_words(fake_jobs, monkeypatch):
    monkeypatch.setenv("GPUX_MAX_UNITS", "256")
    at = open_train(TINY_SPEC.with_changes(hidden_units=(512,)))  # set before this server's limit was lowered
    at.button(key=Key.TRAIN).click().run()
    assert not at.exception
    message = at.error[0].value
    assert message == (
        "The model passes a server limit; fix it on the Build page:\n"
        "- 512 units in a layer: this server's limit is 256."
    )
    assert "hidden_units" not in message and "GPUX_" not in message
    assert Key.JOB_ID not in at.session_state


def test_where_the_limits_are_set_is_only_in_the_owners_expander(fake_jobs, monkeypatch):
    monkeypatch.setenv("GPUX_MAX_EPOCHS", "7")
    at = open_train(TINY_SPEC)
    assert at.slider(key=Key.EPOCHS).help == "Server limit: 7 epochs."
    assert "- `GPUX_MAX_EPOCHS=7`" in owner_texts(at)[0]
    assert "`GPUX_MAX_JOBS_PER_CLIENT=0` (0: no limit)" in owner_texts(at)[0]
    inside = {id(element) for expander in at.expander for element in expander.markdown}
    outside = [
        element.value for element in [*at.markdown, *at.caption, *at.info, *at.warning] if id(element) not in inside
    ]
    assert outside and not any("GPUX_" in text for text in outside)


def test_missing_dataset_trains_on_generated_images(fake_jobs):
    at = open_train(TINY_SPEC.with_changes(dataset="cifar10"))
    checkbox = at.checkbox(key=Key.SYNTHETIC)
    missing = not available_sources("cifar10")
    assert any("CIFAR-10 is not on this server" in warning.value for warning in at.warning) == missing
    assert checkbox.disabled == missing
    assert checkbox.value == missing


def test_gpu_notice_matches_the_devices(fake_jobs):
    at = open_train()
    no_gpu_notice = any("has no GPU" in info.value for info in at.info)
    assert no_gpu_notice == (not has_gpu(list_devices()))


CLUSTER_ADDRESS = "http://10.0.0.5:8265"
SILENT_HEAD = f"The Ray cluster at {CLUSTER_ADDRESS} does not answer (Connection refused)."


class NodeExecution(LocalExecution):
    """A test worker here that the cluster places on its node "machine-1"."""

    def machine(self) -> dict:
        return {"node": "machine-1", "node_id": "node-1"}


class FakeCluster(LocalExecutor):
    """A Ray cluster as the runner sees it, with one machine ("machine-1") whose jobs are test workers here.

    While `problem` is set the head "does not answer": no job can start, and `status()` says why.
    """

    kind = "ray"
    poll_s = 0.05  # the runner looks at the cluster again by itself, as with a real one

    def __init__(self) -> None:
        super().__init__(default_backend=backend_name(), warm_workers=False)
        self.problem = SILENT_HEAD

    def can_start(self, request, running) -> bool:
        return not self.problem and super().can_start(request, running)

    def launch(self, job_id, request, backend) -> NodeExecution:
        started = super().launch(job_id, request, backend)
        return NodeExecution(started.process, started.request_json, warm=started.warm)

    def status(self) -> ExecutorStatus:
        machine = Machine("machine-1", "node-1", "10.0.0.6", gpus=0)
        return ExecutorStatus(kind="ray", address=CLUSTER_ADDRESS, machines=(machine,), problem=self.problem)


@pytest.fixture
def fake_cluster(fake_jobs, monkeypatch) -> FakeCluster:
    """The server's runner sends its jobs to a `FakeCluster` (as GPUX_RAY_ADDRESS would); its head is silent."""
    cluster = FakeCluster()  # made after `fake_jobs` chose the test workers
    monkeypatch.setattr(lib.executor, "cluster_executor", lambda environ, worker_env=None: cluster)
    return cluster


def test_the_page_says_where_jobs_run_and_which_machine_ran_the_job(fake_jobs):
    host = platform.node()
    at = open_train(fake_spec(epochs=2, epoch_s=2.0))
    assert f"Jobs run on this server ({host})." in texts(at)
    click_train(at)
    wait_for_bar(at, "epoch 1/2")  # the worker said where it runs before it started training
    assert f"On {host}: " in texts(at) and "logical cores" in texts(at), page_report(at)
    at.button(key=Key.CANCEL).click().run()
    wait_until_final(at, FAKE_WAIT_S)
    ran_on = next(caption.value for caption in at.caption if caption.value.startswith("Ran on "))
    assert ran_on.startswith(f"Ran on {host}: ") and "GPUs: " in ran_on


def test_a_silent_cluster_head_is_a_warning_and_a_job_waits_for_it_in_the_queue(fake_cluster):
    at = open_train(fake_spec(epochs=2, epoch_s=0.05))
    assert not at.exception
    assert f"Jobs run on a Ray cluster at {CLUSTER_ADDRESS}: 1 training machine, machine-1 (no GPU)" in texts(at)
    warning = next(warning.value for warning in at.warning if "does not answer" in warning.value)
    assert warning.startswith(SILENT_HEAD) and "You can still press Train" in warning

    job_id = click_train(at)
    assert job_state(at) == "queued", page_report(at)
    assert any("Your job stays in the queue" in warning.value for warning in at.warning)
    assert not any("until it starts" in info.value for info in at.info)  # no start time is promised meanwhile
    assert runtime.runner().get(job_id).state == JobState.QUEUED
    assert "Traceback" not in texts(at)

    fake_cluster.problem = ""  # the head answers again: the kept job starts on its machine
    wait_until_final(at, FAKE_WAIT_S)
    assert "finished" in at.success[0].value
    assert not any("does not answer" in warning.value for warning in at.warning)
    assert "Ran on machine-1 (host " in texts(at)
