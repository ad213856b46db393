"""Tests of the one time estimator: a model of the step calibrated by stored runs, ranges and the words for them."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.device_run import DeviceRun
from lib.estimates import (
    COMPILE_SPREAD,
    FIRST_GUESS_TEXT,
    FIRST_GUESSES,
    SPREADS,
    estimate_job,
    format_range,
    median_overhead,
    modelled_epoch_s,
    round_samples,
    samples_note,
    suggest_sample_limit,
    trained_samples,
    usable_runs,
)
from lib.presets import PRESETS
from lib.spec import ModelSpec
from lib.store import RunStore

SMALL = ModelSpec(hidden_units=(128,), batch_size=32, epochs=3)
FASHION_SEED, FASHION_TUNED = PRESETS["fashion-seed"].spec, PRESETS["fashion-tuned"].spec


def _row(
    spec: ModelSpec,
    steady_s: float,
    device: str = "cpu:0",
    *,
    num_train: int = 3200,
    first_s: float | None = None,
    backend: str = "tensorflow",
    status: str = "done",
) -> dict:
    first_s = steady_s if first_s is None else first_s
    return {
        "device": device,
        "backend": backend,
        "status": status,
        "spec": spec.to_dict(),
        "num_train": num_train,
        "first_epoch_s": first_s,
        "steady_epoch_s": steady_s,
        "epoch_s": [first_s, steady_s, steady_s],
    }


def _frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def _one(spec: ModelSpec, samples: int, runs: pd.DataFrame, device: str = "cpu:0", backend: str | None = None):
    return estimate_job(spec, samples, [device], runs, overhead_s=0.0, backend=backend).devices[0]


# --- the model: batch size, samples, epochs, device and backend ---


def test_batch_32_and_batch_1024_of_the_same_model_get_different_estimates_before_any_run():
    seed, tuned = (_one(spec, 60_000, pd.DataFrame(), backend="tensorflow") for spec in (FASHION_SEED, FASHION_TUNED))
    assert seed.first_guess and tuned.first_guess
    assert seed.steady_epoch_s > 2 * tuned.steady_epoch_s  # 1,875 steps of 32 against 59 of 1,024


def test_one_run_at_batch_32_still_tells_batch_1024_apart():
    runs = _frame(_row(FASHION_SEED, 20.0, num_train=60_000, first_s=22.0))
    seed = _one(FASHION_SEED, 60_000, runs, backend="tensorflow")
    tuned = _one(FASHION_TUNED, 60_000, runs, backend="tensorflow")
    assert seed.steady_epoch_s == pytest.approx(20.0)
    assert tuned.based_on == 1 and tuned.steady_epoch_s < seed.steady_epoch_s / 2
    assert tuned.basis_text == "from 1 past run of this model with other training settings"
    assert tuned.spread > seed.spread
    ratio = 20.0 / modelled_epoch_s(FASHION_SEED, 60_000, "cpu:0", "tensorflow")
    trained = trained_samples(FASHION_TUNED, 60_000, "tensorflow")  # 58 whole batches of 1,024 (XLA)
    expected = ratio * modelled_epoch_s(FASHION_TUNED, trained, "cpu:0", "tensorflow")
    assert tuned.steady_epoch_s == pytest.approx(expected)


def test_a_run_of_the_same_model_scales_with_the_samples_and_keeps_its_compile_seconds():
    runs = _frame(_row(SMALL, 2.0, num_train=3200, first_s=3.5))
    device = _one(SMALL.with_changes(epochs=4), 6400, runs)
    assert device.steady_epoch_s == pytest.approx(4.0)
    assert device.first_epoch_s == pytest.approx(4.0 + 1.5)  # compiling costs the same at any size
    assert device.total_s == pytest.approx(5.5 + 3 * 4.0)
    assert device.basis == "this model" and not device.rough


def test_more_samples_and_more_epochs_take_longer():
    first = _one(SMALL, 6000, pd.DataFrame())
    assert _one(SMALL, 12_000, pd.DataFrame()).total_s > first.total_s
    assert _one(SMALL.with_changes(epochs=6), 6000, pd.DataFrame()).total_s > first.total_s


def test_the_gpu_first_guess_is_faster_than_the_cpus():
    cpu, gpu = estimate_job(ModelSpec(), 60_000, ["cpu:0", "gpu:0"], pd.DataFrame(), overhead_s=8.0).devices
    assert 0 < gpu.steady_epoch_s < cpu.steady_epoch_s


def test_data_on_the_device_on_jax_is_one_call_per_epoch():
    resident = FASHION_SEED.with_changes(device_resident=True)
    assert modelled_epoch_s(resident, 60_000, "cpu:0", "jax") < modelled_epoch_s(FASHION_SEED, 60_000, "cpu:0", "jax")
    # TensorFlow has no such loop: the option changes nothing there.
    tf_resident, tf_fit = (modelled_epoch_s(spec, 60_000, "cpu:0", "tensorflow") for spec in (resident, FASHION_SEED))
    assert tf_resident == tf_fit


def test_runs_on_the_jobs_backend_win_when_it_is_known():
    runs = _frame(_row(SMALL, 1.0, backend="jax"), _row(SMALL, 3.0, backend="tensorflow"))
    jax = _one(SMALL, 3200, runs, backend="jax")
    tensorflow = _one(SMALL, 3200, runs, backend="tensorflow")
    assert jax.steady_epoch_s == pytest.approx(1.0)
    assert tensorflow.steady_epoch_s == pytest.approx(3.0)
    assert jax.based_on == tensorflow.based_on == 1


def test_runs_with_the_same_per_step_settings_win():
    compiled = SMALL.with_changes(steps_per_execution=16, jit_compile=True)
    runs = _frame(_row(SMALL, 2.0), _row(compiled, 0.5))
    assert _one(compiled, 3200, runs).steady_epoch_s == pytest.approx(0.5)
    assert _one(SMALL, 3200, runs).steady_epoch_s == pytest.approx(2.0)


def test_the_newest_three_runs_of_the_same_model_are_used():
    runs = _frame(*(_row(SMALL, seconds) for seconds in (9.0, 1.0, 2.0, 3.0)))  # oldest first
    device = _one(SMALL, 3200, runs)
    assert device.based_on == 3 and device.steady_epoch_s == pytest.approx(2.0)


def test_failed_runs_and_runs_without_times_are_not_used():
    runs = _frame(_row(SMALL, 2.0, status="failed"), {**_row(SMALL, 2.0), "steady_epoch_s": None})
    assert usable_runs(runs).empty
    assert _one(SMALL, 3200, runs).first_guess


def test_usable_runs_tolerates_frames_without_the_columns():
    assert usable_runs(pd.DataFrame({"device": ["cpu:0"]})).empty


def test_one_epoch_runs_say_nothing_about_the_first_epoch_extra():
    row = _row(SMALL, 4.0, first_s=4.0)
    row["epoch_s"] = [4.0]
    device = _one(SMALL, 3200, _frame(row))
    assert device.first_epoch_s - device.steady_epoch_s == pytest.approx(FIRST_GUESSES["cpu"].first_epoch_extra_s)


def test_all_gpus_without_runs_of_its_own_is_estimated_as_one_gpu():
    runs = _frame(_row(SMALL, 0.5, "gpu:0"))
    single, parallel = estimate_job(SMALL, 3200, ["gpu:0", "gpu:all"], runs, overhead_s=0.0).devices
    assert parallel.steady_epoch_s == pytest.approx(single.steady_epoch_s)
    assert parallel.basis_text == "from 1 past run on a single GPU here" and parallel.rough and not single.rough
    (parallel,) = estimate_job(SMALL, 3200, ["gpu:all"], _frame(_row(SMALL, 0.2, "gpu:all")), overhead_s=0.0).devices
    assert parallel.steady_epoch_s == pytest.approx(0.2) and parallel.basis == "this model"


def test_stored_runs_from_the_store_are_read_the_same_as_hand_made_ones(runs_db):
    store = RunStore()
    run = DeviceRun(device="cpu:0", backend="tensorflow", synthetic=False, num_train=3200)
    run.epoch_s, run.first_epoch_s, run.steady_epoch_s, run.total_s = [3.5, 2.0, 2.0], 3.5, 2.0, 7.5
    store.record(SMALL, run)
    stored = estimate_job(SMALL, 6400, ["cpu:0"], store.runs(), overhead_s=1.0, backend="tensorflow")
    hand_made = _frame(_row(SMALL, 2.0, first_s=3.5))
    assert stored == estimate_job(SMALL, 6400, ["cpu:0"], hand_made, overhead_s=1.0, backend="tensorflow")
    assert stored.total_s == pytest.approx(1.0 + 5.5 + 2 * 4.0)


# --- ranges and the words for the basis ---


@pytest.mark.parametrize(
    ("low", "high", "text"),
    [
        (0.45, 0.7, "0.45-0.7 s"),
        (8.0, 12.6, "8-13 s"),
        (20.2, 30.4, "20-30 s"),
        (50.0, 100.0, "50 s to 1.7 min"),
        (100.0, 200.0, "1.7-3.3 min"),
        (3000.0, 9000.0, "50 min to 2.5 h"),
        (5.0, 5.01, "5 s"),
    ],
)
def test_format_range(low, high, text):
    assert format_range(low, high) == text


def test_an_estimate_is_a_range_around_its_middle():
    runs = _frame(_row(SMALL, 2.0, first_s=3.5))
    estimate = estimate_job(SMALL, 6400, ["cpu:0"], runs, overhead_s=5.0)
    assert estimate.low_s < estimate.total_s < estimate.high_s
    # 3 epochs of 4 s, give or take a quarter, and 1.5 s of compiling, give or take a half; the overhead as measured.
    assert estimate.high_s == pytest.approx(5.0 + 12.0 * SPREADS["this model"] + 1.5 * COMPILE_SPREAD)
    assert estimate.low_s == pytest.approx(5.0 + 12.0 / SPREADS["this model"] + 1.5 / COMPILE_SPREAD)
    assert estimate.seconds_text == f"about {format_range(estimate.low_s, estimate.high_s)}"
    assert "-" in estimate.seconds_text
    assert estimate.text == f"{estimate.seconds_text} (from 1 past run of this model)"


def test_a_first_guess_is_a_wider_range_than_a_run_of_the_same_model():
    guess = _one(SMALL, 6400, pd.DataFrame())
    measured = _one(SMALL, 6400, _frame(_row(SMALL, 2.0)))
    assert guess.spread > measured.spread


def test_neighbours_that_disagree_widen_the_range():
    agreeing = _one(SMALL, 3200, _frame(_row(SMALL, 2.0), _row(SMALL, 2.0)))
    disagreeing = _one(SMALL, 3200, _frame(_row(SMALL, 1.0), _row(SMALL, 4.0)))
    assert disagreeing.spread == pytest.approx(agreeing.spread * 2.0)


@pytest.mark.parametrize(
    ("stored", "runs", "text"),
    [
        (SMALL, 1, "from 1 past run of this model"),
        (SMALL, 3, "from 3 past runs of this model"),
        (SMALL.with_changes(hidden_units=(100,)), 1, "from 1 past run of a similar model"),
        (SMALL.with_changes(hidden_units=(100,)), 2, "from 2 past runs of similar models"),
        (
            SMALL.with_changes(hidden_units=(4096,) * 4, batch_size=4096),
            1,
            "from 1 past run of a quite different model",
        ),
    ],
)
def test_the_basis_is_said_in_plain_words(stored, runs, text):
    device = _one(SMALL, 3200, _frame(*[_row(stored, 2.0)] * runs))
    assert device.basis_text == text


def test_without_any_run_the_estimate_says_it_is_a_first_guess():
    estimate = estimate_job(ModelSpec(), 60_000, ["cpu:0", "gpu:0"], pd.DataFrame(), overhead_s=8.0)
    assert all(device.first_guess and device.rough for device in estimate.devices)
    assert estimate.source_text == FIRST_GUESS_TEXT == "a first guess: no run on this server yet"
    assert estimate.text == f"{estimate.seconds_text} ({FIRST_GUESS_TEXT})"


def test_a_device_without_runs_next_to_one_with_runs_says_which_is_guessed():
    estimate = estimate_job(SMALL, 3200, ["cpu:0", "gpu:0"], _frame(_row(SMALL, 2.0)), overhead_s=0.0)
    assert estimate.source_text == (
        "cpu:0: from 1 past run of this model; gpu:0: a first guess: nothing has trained on gpu:0 here yet"
    )


def test_a_device_borrowing_runs_of_another_one_says_so():
    (device,) = estimate_job(SMALL, 3200, ["gpu:1"], _frame(_row(SMALL, 0.5, "gpu:0")), overhead_s=0.0).devices
    assert device.basis_text == "from 1 past run on another GPU here" and device.rough


def test_device_texts_give_an_epoch_range_and_a_total_range():
    device = _one(SMALL, 3200, _frame(_row(SMALL, 20.0, first_s=22.0)))
    assert device.epoch_text == "about 16-25 s"  # 20 s / 1.25 to 20 s x 1.25
    assert device.total_text == f"about {format_range(60.0 / 1.25 + 2.0 / 1.5, 60.0 * 1.25 + 2.0 * 1.5)}"


# --- samples that train, and saying so ---


def test_a_partial_last_batch_trains_except_with_xla_through_model_fit():
    assert trained_samples(FASHION_SEED, 3000, "tensorflow") == 3000
    assert trained_samples(FASHION_TUNED, 3000, "jax") == 3000  # one compiled step per shape
    assert trained_samples(FASHION_TUNED, 3000, "tensorflow") == 2048  # XLA would compile again
    assert trained_samples(FASHION_TUNED, 3000, "torch") == 2048
    assert trained_samples(FASHION_TUNED, 700, "tensorflow") == 700  # under one batch: all of them, one step


def test_the_cut_to_whole_batches_is_said_in_numbers():
    note = samples_note(FASHION_TUNED, 3000, "tensorflow")
    assert note.startswith("3,000 asked: 2,048 train, in whole batches of 1,024")
    assert "jit_compile" not in note and "batch_size" not in note
    assert samples_note(FASHION_TUNED, 3072, "tensorflow") is None
    assert samples_note(FASHION_TUNED, 3000, "jax") is None


def test_the_estimate_is_for_the_samples_that_train_and_carries_the_note():
    runs = _frame(_row(FASHION_TUNED, 0.3, num_train=4096))
    asked = estimate_job(FASHION_TUNED, 3000, ["cpu:0"], runs, overhead_s=0.0, backend="tensorflow")
    whole = estimate_job(FASHION_TUNED, 2048, ["cpu:0"], runs, overhead_s=0.0, backend="tensorflow")
    assert asked.total_s == pytest.approx(whole.total_s)
    assert asked.samples_note == samples_note(FASHION_TUNED, 3000, "tensorflow") and whole.samples_note is None


# --- overheads and suggested sample limits ---


@pytest.mark.parametrize(
    ("overheads", "expected"), [([], 8.0), ([3.0, 5.0, 4.0], 4.0), ([100.0] * 5 + [2.0] * 20, 2.0)]
)
def test_median_overhead_of_the_latest_jobs_else_the_default(overheads, expected):
    assert median_overhead(overheads, default_s=8.0) == expected


@pytest.mark.parametrize(
    ("samples", "batch", "expected"),
    [(7300, 32, 7200), (7300, 128, 6400), (5000, 100, 5000), (30_000, 1024, 25_600), (30_000, 2048, 28_672)],
)
def test_round_samples_gives_whole_batches_and_round_numbers(samples, batch, expected):
    assert round_samples(samples, batch) == expected


@pytest.mark.parametrize("samples", [1.0, 31.0, 32.0, 33.0])
def test_round_samples_never_goes_below_one_batch(samples):
    assert round_samples(samples, 32) == 32


def test_suggestion_aims_for_the_target_in_round_whole_batches():
    # 7,296 samples (228 batches) took 40 s over 3 epochs, 13.33 s each, with no compiling.
    runs = _frame(_row(SMALL, 40.0 / 3, num_train=7296))
    suggestion = suggest_sample_limit(SMALL, ["cpu:0"], runs, overhead_s=5.0, max_samples=60_000, target_s=45.0)
    assert suggestion.samples == 7200
    assert suggestion.seconds == pytest.approx(5.0 + 40.0 * 7200 / 7296)
    assert suggestion.seconds == suggestion.estimate.total_s
    assert not (suggestion.whole_dataset or suggestion.too_slow)
    assert suggestion.text == f"{suggestion.estimate.seconds_text} here (from 1 past run of this model)"


def test_suggestion_is_the_whole_dataset_when_it_fits():
    runs = _frame(_row(SMALL, 10.0 / 3, num_train=60_000))
    suggestion = suggest_sample_limit(SMALL, ["cpu:0"], runs, overhead_s=5.0, max_samples=60_000)
    assert suggestion.samples == 60_000 and suggestion.whole_dataset
    assert suggestion.seconds == pytest.approx(15.0)


def test_suggestion_says_when_even_one_batch_is_over_a_minute():
    runs = _frame(_row(SMALL, 30.0, num_train=32))
    suggestion = suggest_sample_limit(SMALL, ["cpu:0"], runs, overhead_s=5.0, max_samples=60_000)
    assert suggestion.samples == 32 and suggestion.too_slow
    assert suggestion.text.startswith("even one batch takes about ")


def test_suggestion_never_exceeds_a_limit_smaller_than_a_batch():
    suggestion = suggest_sample_limit(SMALL, ["cpu:0"], pd.DataFrame(), overhead_s=5.0, max_samples=20)
    assert suggestion.samples == 20 and suggestion.whole_dataset


def test_first_guess_suggestion_for_the_tutorial_model_on_a_cpu_is_class_sized():
    spec = ModelSpec()
    suggestion = suggest_sample_limit(spec, ["cpu:0"], pd.DataFrame(), overhead_s=8.0, max_samples=60_000)
    assert suggestion.samples % spec.batch_size == 0
    assert 32 <= suggestion.samples < 60_000
    assert 30.0 <= suggestion.seconds <= 45.0
    assert suggestion.estimate.rough and suggestion.text.endswith(f"here ({FIRST_GUESS_TEXT})")
