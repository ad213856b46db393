"""AppTest of predict, then reveal: the Train page's guess and its reveal after the run, the class board's guesses.

The test machine has no GPU (tests/conftest.py hides it), so the Train page asks the CPU-only question: how many
times faster batch 1,024 trains than batch 32. Jobs are the test worker's fake ones (`fake_jobs`); the board's
guesses are written to the run store the way the Train page writes them.
"""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from lib.backend import backend_name
from lib.device_run import DeviceRun
from lib.devices import DeviceInfo
from lib.guesses import BATCH_QUESTION, GPU_QUESTION, LARGE_BATCH, SMALL_BATCH, GuessRecord, format_times, measure
from lib.jobs import JobRecord, JobRequest, JobState
from lib.runner import anonymous_name
from lib.spec import ModelSpec
from tests import test_page_board
from tests.test_page_board import open_board, page_text
from tests.test_page_train import FAKE_WAIT_S, click_train, fake_spec, open_train, texts, wait_until_final
from ui import runtime
from ui.keys import Key

# The two pages' fixtures: the Train page's fake jobs, the board's runner.
runner = test_page_board.runner

FAKE_BACKEND = backend_name()  # the runner starts its workers with this process's backend
OWNERS = ("a" * 32, "b" * 32, "c" * 32)


def small_batch_spec() -> ModelSpec:
    """The tutorial's model at batch 32, two quick epochs by the fake worker."""
    return fake_spec(epochs=2, epoch_s=0.05).with_changes(batch_size=SMALL_BATCH)


def store_cpu_run(spec: ModelSpec, samples_per_s: float, job_id: str | None = None) -> None:
    """A finished CPU run of `spec` whose later epochs train `samples_per_s`."""
    run = DeviceRun(device="cpu:0", backend=FAKE_BACKEND, synthetic=True, num_train=6000)
    run.set_epoch_times([3 * 6000 / samples_per_s, 6000 / samples_per_s])
    runtime.store().record(spec, run, job_id=job_id)


def guess_and_train(at: AppTest, guess: str) -> str:
    """Types a guess, presses Train and waits for the job's end; returns the job id."""
    at.text_input(key=Key.GUESS).set_value(guess).run()
    assert not at.exception and not at.error
    job_id = click_train(at)
    wait_until_final(at, FAKE_WAIT_S)
    assert "finished" in at.success[0].value
    return job_id


def test_a_guess_before_a_run_is_shown_against_the_measurement(fake_jobs):
    store_cpu_run(small_batch_spec().with_changes(batch_size=LARGE_BATCH), 50_000.0)  # an earlier batch-1,024 run
    at = open_train(small_batch_spec())
    assert at.text_input(key=Key.GUESS).label == BATCH_QUESTION.prompt

    job_id = guess_and_train(at, "5x")

    kept = runtime.store().guess(job_id, at.session_state[Key.OWNER_ID])
    assert (kept.question, kept.guess) == (BATCH_QUESTION.kind, 5.0)
    job = runtime.runner().get(job_id)
    measured = measure(BATCH_QUESTION, job.request, job_id, runtime.store().runs()).speedup
    assert measured is not None
    text = texts(at)
    assert f"You guessed 5x; measured {format_times(measured)}" in text
    assert f"at batch {LARGE_BATCH:,} and " in text and f"at batch {SMALL_BATCH} (2 runs" in text
    assert f"Why: {BATCH_QUESTION.why}" in text


def test_no_guess_means_no_reveal(fake_jobs):
    store_cpu_run(small_batch_spec().with_changes(batch_size=LARGE_BATCH), 50_000.0)
    at = open_train(small_batch_spec())
    job_id = click_train(at)
    wait_until_final(at, FAKE_WAIT_S)
    assert "finished" in at.success[0].value
    assert "You guessed" not in texts(at)
    assert runtime.store().guess(job_id, at.session_state[Key.OWNER_ID]) is None
    assert runtime.store().guesses() == []


def test_a_bad_guess_gets_a_clear_message_and_starts_no_job(fake_jobs):
    at = open_train(small_batch_spec())
    at.text_input(key=Key.GUESS).set_value("lots").run()
    assert not at.exception
    assert '"lots" is not a number of times faster' in at.error[0].value

    at.button(key=Key.TRAIN).click().run()
    assert not at.exception
    assert any("Then press Train again." in error.value for error in at.error)
    assert Key.JOB_ID not in at.session_state

    at.text_input(key=Key.GUESS).set_value("5000").run()
    assert '"5000" is outside that' in at.error[0].value
    at.text_input(key=Key.GUESS).set_value("").run()  # no guess is fine
    assert not at.error
    click_train(at)
    at.button(key=Key.CANCEL).click().run()


def test_a_missing_batch_size_is_named_and_one_click_sets_it_for_the_next_run(fake_jobs):
    at = open_train(small_batch_spec())
    guess_and_train(at, "3")
    assert "You guessed 3x. Not measured yet" in texts(at)
    assert f"no run at batch {LARGE_BATCH:,} (it has batch {SMALL_BATCH})" in texts(at)

    at.button(key=f"{Key.GUESS_SET_BATCH}_{LARGE_BATCH}").click().run()
    assert at.session_state[Key.MODEL_SPEC].batch_size == LARGE_BATCH
    assert at.text_input(key=Key.GUESS).value == "3"  # the guess stays for the second run

    guess_and_train(at, "3")
    assert "You guessed 3x; measured " in texts(at)
    assert "Not measured yet" not in texts(at)


def test_the_guess_is_kept_while_another_page_is_shown(fake_jobs):
    at = open_train(small_batch_spec())
    at.text_input(key=Key.GUESS).set_value("7").run()
    at.switch_page("app_pages/build.py").run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    assert at.text_input(key=Key.GUESS).value == "7"


def test_on_a_gpu_server_the_guess_is_the_gpus_speedup_over_the_cpu(fake_jobs, monkeypatch):
    cpu = DeviceInfo("cpu:0", "CPU", "Test CPU, 2 cores", 2**34, None, "tensorflow")
    gpu = DeviceInfo("gpu:0", "GPU", "NVIDIA H100 80GB HBM3", 80 * 2**30, "9.0", "tensorflow")
    monkeypatch.setattr(runtime, "devices", lambda: [cpu, gpu])  # the fake worker "trains" on any device
    at = open_train(small_batch_spec())
    assert at.multiselect(key=Key.DEVICES).value == ["cpu:0", "gpu:0"]
    assert at.text_input(key=Key.GUESS).label == GPU_QUESTION.prompt

    at.multiselect(key=Key.DEVICES).set_value(["gpu:0"]).run()  # one kind of device compares nothing
    assert Key.GUESS not in [text_input.key for text_input in at.text_input]
    assert "Choose the CPU and a GPU in Devices" in texts(at)

    at.multiselect(key=Key.DEVICES).set_value(["cpu:0", "gpu:0"]).run()
    job_id = guess_and_train(at, "20")

    kept = runtime.store().guess(job_id, at.session_state[Key.OWNER_ID])
    assert (kept.question, kept.guess) == (GPU_QUESTION.kind, 20.0)
    text = texts(at)
    assert "You guessed 20x; measured " in text
    assert "gpu:0 trained " in text and " samples/s, cpu:0 " in text
    assert f"Why: {GPU_QUESTION.why}" in text


def store_gpu_job(job_id: str, owner: str, guess: float, gpu_speed: float | None) -> None:
    """A CPU and GPU job one session guessed for; its runs are stored when `gpu_speed` is given."""
    spec = ModelSpec(hidden_units=(64,), epochs=3)
    request = JobRequest(spec=spec, devices=("cpu:0", "gpu:0"))
    store = runtime.store()
    store.save_job(JobRecord(job_id, 0, time.time(), JobState.DONE, "10.0.0.1", (owner,), None, request))
    store.save_guess(GuessRecord(job_id, owner, GPU_QUESTION.kind, guess, made_at=time.time()))
    if gpu_speed is None:
        return
    for device, speed in (("cpu:0", 1000.0), ("gpu:0", gpu_speed)):
        run = DeviceRun(device=device, backend="tensorflow", synthetic=True, num_train=6000)
        run.set_epoch_times([3 * 6000 / speed, 6000 / speed, 6000 / speed])
        store.record(spec, run, job_id=job_id)


def test_the_class_board_shows_the_guesses_without_names(runner):
    job_ids = ("1" * 12, "2" * 12, "3" * 12)
    store_gpu_job(job_ids[0], OWNERS[0], 3.0, 4000.0)
    store_gpu_job(job_ids[1], OWNERS[1], 10.0, 18000.0)
    store_gpu_job(job_ids[2], OWNERS[2], 80.0, None)  # its run has not finished

    at = open_board()

    assert "Class guesses: 3" in [header.value for header in at.header]
    assert GPU_QUESTION.title in [subheader.value for subheader in at.subheader]
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Guesses"] == "3"
    assert metrics["Median guess"] == "10x"
    assert metrics["Median measured"] == "11x"
    assert metrics["Within 2x"] == "2 of 2"
    assert len(at.get("vega_lite_chart")) == 1
    text = page_text(at)
    for secret in (*OWNERS, *job_ids, *(anonymous_name(owner) for owner in OWNERS)):
        assert secret not in text


def test_a_board_without_guesses_says_how_to_make_one(runner):
    at = open_board()
    assert "Class guesses: 0" in [header.value for header in at.header]
    assert "No guesses today yet" in page_text(at)
    assert not [metric for metric in at.metric if metric.label == "Guesses"]
