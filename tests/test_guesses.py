"""Predict, then reveal (lib.guesses): the question per server, guess parsing, guess vs measured, the class's guesses.

Measurements are read from runs stored in a real `RunStore`, as the Train page and the class board read them.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.charts import guesses_chart
from lib.device_run import DeviceRun
from lib.guesses import (
    BATCH_QUESTION,
    CLOSE,
    GPU_QUESTION,
    GUESS_COLUMNS,
    GUESS_MAX,
    GUESS_MIN,
    LARGE_BATCH,
    ONE_EPOCH_NOTE,
    SMALL_BATCH,
    TOO_HIGH,
    TOO_LOW,
    ClassGuess,
    GuessError,
    GuessRecord,
    class_guesses,
    class_guesses_frame,
    class_summaries,
    format_times,
    measure,
    parse_guess,
    question_for,
    question_hint,
    reveal,
)
from lib.jobs import JobRecord, JobRequest, JobState
from lib.spec import ModelSpec
from lib.store import RunStore

SPEC = ModelSpec(hidden_units=(64,), epochs=3)
OWNERS = ("a" * 32, "b" * 32, "c" * 32)


def stored_run(
    store: RunStore,
    spec: ModelSpec,
    device: str,
    samples_per_s: float,
    *,
    job_id: str | None = None,
    backend: str = "tensorflow",
    status: str = "done",
) -> None:
    """Stores one run whose steady epochs train `samples_per_s` (6,000 samples per epoch)."""
    run = DeviceRun(device=device, backend=backend, synthetic=True, status=status, num_train=6000)
    steady_s = 6000 / samples_per_s
    run.set_epoch_times([steady_s * 3, *([steady_s] * (spec.epochs - 1))])
    store.record(spec, run, job_id=job_id)


def job(job_id: str, spec: ModelSpec, devices: tuple[str, ...], owner: str = OWNERS[0]) -> JobRecord:
    request = JobRequest(spec=spec, devices=devices)
    return JobRecord(job_id, 0, 1.0, JobState.DONE, "10.0.0.1", (owner,), None, request)


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite")


@pytest.mark.parametrize(
    ("value", "text"),
    [(5, "5x"), (12.34, "12.3x"), (1.0, "1x"), (150.4, "150x"), (1000, "1,000x"), (0.456, "0.46x"), (0.1, "0.1x")],
)
def test_speedups_are_written_as_people_write_them(value, text):
    assert format_times(value) == text


@pytest.mark.parametrize(
    ("chosen", "server", "question"),
    [
        (["cpu:0", "gpu:0"], ["cpu:0", "gpu:0"], GPU_QUESTION),
        (["gpu:all", "cpu:0"], ["cpu:0", "gpu:0", "gpu:1", "gpu:all"], GPU_QUESTION),
        (["gpu:0"], ["cpu:0", "gpu:0"], None),
        (["cpu:0"], ["cpu:0", "gpu:0"], None),
        (["cpu:0"], ["cpu:0"], BATCH_QUESTION),
        ([], ["cpu:0"], None),
    ],
)
def test_the_question_follows_the_server_and_the_chosen_devices(chosen, server, question):
    assert question_for(chosen, server) is question


def test_a_gpu_server_run_on_one_kind_of_device_says_what_to_choose():
    assert "Choose the CPU and a GPU" in question_hint(["gpu:0"], ["cpu:0", "gpu:0"])
    assert question_hint(["cpu:0", "gpu:0"], ["cpu:0", "gpu:0"]) == ""
    assert question_hint([], ["cpu:0"]) == ""  # a CPU-only server has nothing to add


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5.0),
        (" 5x ", 5.0),
        ("12.5 X", 12.5),
        ("3 times", 3.0),
        ("7×", 7.0),
        ("1,000", 1000.0),
        ("2,5", 2.5),
        (".5", 0.5),
        ("0.1", GUESS_MIN),
        ("1000", GUESS_MAX),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_a_typed_guess_is_read_as_times_faster(text, value):
    assert parse_guess(text) == value


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("lots", '"lots" is not a number of times faster'),
        ("-3", '"-3" is not a number of times faster'),
        ("1e3", '"1e3" is not a number'),
        ("nan", '"nan" is not a number'),
        ("inf", '"inf" is not a number'),
        ("5 5", '"5 5" is not a number'),
        ("x" * 50, '"xxxxxxxxxxxxxxxxxxxx..." is not a number'),
        ("0", '"0" is outside that'),
        ("0.05", '"0.05" is outside that'),
        ("1001", '"1001" is outside that'),
        ("1,000,000", '"1,000,000" is outside that'),
    ],
)
def test_a_bad_guess_says_what_to_type(text, words):
    with pytest.raises(GuessError) as raised:
        parse_guess(text)
    message = str(raised.value)
    assert words in message
    assert "0.1" in message or "such as 5" in message  # what to type instead


@given(st.text(max_size=40))
def test_any_text_is_no_guess_a_guess_in_range_or_a_clear_error(text):
    try:
        value = parse_guess(text)
    except GuessError as error:
        assert str(error)
        return
    assert value is None or (math.isfinite(value) and GUESS_MIN <= value <= GUESS_MAX)


@given(st.floats(min_value=GUESS_MIN, max_value=GUESS_MAX))
def test_a_number_in_range_reads_back_as_typed(value):
    typed = f"{value:.4f}"
    assert parse_guess(typed) == pytest.approx(float(typed))
    assert parse_guess(f"{typed}x") == parse_guess(typed)


@pytest.mark.parametrize(
    ("guess", "measured", "verdict"),
    [
        (5, 5, CLOSE),
        (5, 10, CLOSE),
        (10, 5, CLOSE),
        (5, 10.5, TOO_LOW),
        (10, 4.9, TOO_HIGH),
    ],
)
def test_a_guess_within_2x_either_way_is_close(guess, measured, verdict):
    assert reveal(GPU_QUESTION, guess, measured).verdict == verdict


def test_the_reveal_says_guess_measurement_and_which_way_it_missed():
    low = reveal(GPU_QUESTION, 5, 12.3)
    assert low.text.startswith("You guessed 5x; measured 12.3x: 2.5 times more than you guessed.")
    assert "The GPU gained more than you expected." in low.text
    assert not low.close
    high = reveal(BATCH_QUESTION, 40, 0.8)
    assert "50 times less than you guessed" in high.text
    assert high.text.endswith(f"Here batch {LARGE_BATCH:,} was slower than batch {SMALL_BATCH}.")
    assert reveal(GPU_QUESTION, 10, 12).text.endswith("within 2x of the measurement, a good guess.")


def test_the_gpu_question_is_measured_by_the_jobs_own_runs(store):
    stored_run(store, SPEC, "cpu:0", 1000, job_id="job-1")
    stored_run(store, SPEC, "gpu:0", 12000, job_id="job-1")
    stored_run(store, SPEC, "gpu:0", 99000, job_id="job-2")  # another job's GPU: not this job's measurement
    request = JobRequest(spec=SPEC, devices=("cpu:0", "gpu:0"))

    measurement = measure(GPU_QUESTION, request, "job-1", store.runs())

    assert measurement.speedup == pytest.approx(12.0)
    assert "gpu:0 trained 12,000 samples/s, cpu:0 1,000" in measurement.text
    assert ONE_EPOCH_NOTE not in measurement.text


def test_a_gpu_job_that_did_not_finish_on_both_devices_is_not_measured(store):
    stored_run(store, SPEC, "cpu:0", 1000, job_id="job-1")
    stored_run(store, SPEC, "gpu:0", 12000, job_id="job-1", status="cancelled")
    request = JobRequest(spec=SPEC, devices=("cpu:0", "gpu:0"))

    measurement = measure(GPU_QUESTION, request, "job-1", store.runs())

    assert measurement.speedup is None
    assert "did not finish on both the CPU and the GPU" in measurement.text


def test_the_batch_question_is_measured_by_stored_runs_of_the_same_model(store):
    small, large = SPEC.with_changes(batch_size=SMALL_BATCH), SPEC.with_changes(batch_size=LARGE_BATCH, epochs=5)
    stored_run(store, small, "cpu:0", 1000, job_id="job-1")
    stored_run(store, large.with_changes(seed=3), "cpu:0", 6000, job_id="job-0")  # another seed: the same work
    stored_run(store, large, "cpu:0", 10000)  # median of 6,000 and 10,000: 8,000
    stored_run(store, large.with_changes(hidden_units=(512,)), "cpu:0", 90000)  # another model
    stored_run(store, large, "cpu:0", 90000, backend="jax")  # another backend than the job's
    stored_run(store, large, "cpu:0", 90000, status="failed")
    request = JobRequest(spec=small, devices=("cpu:0",))

    measurement = measure(BATCH_QUESTION, request, "job-1", store.runs())

    assert measurement.speedup == pytest.approx(8.0)
    assert measurement.missing_batches == ()
    assert f"8,000 samples/s at batch {LARGE_BATCH:,} and 1,000 at batch {SMALL_BATCH}" in measurement.text


def test_the_batch_question_names_the_batch_size_still_to_train(store):
    small = SPEC.with_changes(batch_size=SMALL_BATCH, epochs=1)
    stored_run(store, small, "cpu:0", 1000, job_id="job-1")
    request = JobRequest(spec=small, devices=("cpu:0",))

    measurement = measure(BATCH_QUESTION, request, "job-1", store.runs())

    assert measurement.speedup is None
    assert measurement.missing_batches == (LARGE_BATCH,)
    assert f"no run at batch {LARGE_BATCH:,} (it has batch {SMALL_BATCH})" in measurement.text
    assert f"Train it at batch {LARGE_BATCH:,}" in measurement.text

    stored_run(store, small.with_changes(batch_size=LARGE_BATCH), "cpu:0", 4000)
    measured = measure(BATCH_QUESTION, request, "job-1", store.runs())
    assert measured.speedup == pytest.approx(4.0)
    assert measured.text.endswith(ONE_EPOCH_NOTE)  # one epoch: its time includes compiling


def test_nothing_stored_measures_nothing(store):
    request = JobRequest(spec=SPEC, devices=("cpu:0",))
    assert measure(BATCH_QUESTION, request, "job-1", store.runs()).missing_batches == (SMALL_BATCH, LARGE_BATCH)
    assert measure(GPU_QUESTION, request, "job-1", store.runs()).speedup is None


def test_the_class_sees_each_sessions_latest_guess_measured_and_never_who(store):
    devices = ("cpu:0", "gpu:0")
    jobs = {job_id: job(job_id, SPEC, devices) for job_id in ("job-1", "job-2", "job-3")}
    for job_id, gpu_speed in (("job-1", 4000), ("job-2", 18000)):
        stored_run(store, SPEC, "cpu:0", 1000, job_id=job_id)
        stored_run(store, SPEC, "gpu:0", gpu_speed, job_id=job_id)
    records = [
        GuessRecord("job-1", OWNERS[0], GPU_QUESTION.kind, 50.0, made_at=1.0),  # replaced by the owner's later one
        GuessRecord("job-2", OWNERS[0], GPU_QUESTION.kind, 10.0, made_at=3.0),
        GuessRecord("job-1", OWNERS[1], GPU_QUESTION.kind, 3.0, made_at=2.0),
        GuessRecord("job-3", OWNERS[2], GPU_QUESTION.kind, 8.0, made_at=4.0),  # its job has no runs yet
        GuessRecord("job-9", OWNERS[2], BATCH_QUESTION.kind, 2.0, made_at=5.0),  # an unknown job
    ]

    guesses = class_guesses(records, jobs, store.runs())

    assert guesses == [
        ClassGuess(GPU_QUESTION.kind, 3.0, pytest.approx(4.0)),
        ClassGuess(GPU_QUESTION.kind, 10.0, pytest.approx(18.0)),
        ClassGuess(GPU_QUESTION.kind, 8.0, None),
    ]
    assert {field.name for field in dataclasses.fields(ClassGuess)} == {"question", "guess", "measured"}

    [summary] = class_summaries(guesses)
    assert (summary.count, summary.median_guess, summary.lowest_guess, summary.highest_guess) == (3, 8.0, 3.0, 10.0)
    assert (summary.measured, summary.median_measured, summary.close) == (2, pytest.approx(11.0), 2)
    assert summary.close_text == "2 of 2"
    assert summary.text == (
        "3 guesses, from 3x to 10x (median 8x). Measured: median 11x; 2 of 2 measured guesses came within 2x."
    )


def test_a_class_summary_before_any_measurement_says_so():
    [summary] = class_summaries([ClassGuess(BATCH_QUESTION.kind, 4.0, None)])
    assert summary.question is BATCH_QUESTION
    assert summary.median_measured is None and summary.close_text == "none measured yet"
    assert summary.text == "1 guess, from 4x to 4x (median 4x). No run of these guesses has been measured yet."
    assert class_summaries([]) == []


def test_the_chart_frame_has_measured_guesses_only_and_the_chart_draws_them():
    guesses = [
        ClassGuess(GPU_QUESTION.kind, 3.0, 12.0),
        ClassGuess(GPU_QUESTION.kind, 10.0, 12.0),
        ClassGuess(GPU_QUESTION.kind, 50.0, 12.0),
        ClassGuess(GPU_QUESTION.kind, 8.0, None),
    ]

    frame = class_guesses_frame(guesses)

    assert tuple(frame.columns) == GUESS_COLUMNS
    assert list(frame["verdict"]) == [TOO_LOW, CLOSE, TOO_HIGH]
    assert set(frame["question"]) == {GPU_QUESTION.title}
    spec = guesses_chart(frame).to_dict()
    dots = spec["layer"][1]
    assert dots["encoding"]["x"]["scale"]["type"] == "log" and dots["encoding"]["y"]["scale"]["type"] == "log"
    assert [item["title"] for item in dots["encoding"]["tooltip"]][:3] == [
        "Question",
        "Guessed (times faster)",
        "Measured (times faster)",
    ]
    assert "tooltip" in spec["layer"][0]["encoding"]  # the exact-guess line too
    assert class_guesses_frame([ClassGuess(GPU_QUESTION.kind, 8.0, None)]).empty
