"""Tests of the time estimates (epochs, jobs, suggested sample limits) from stored runs of similar size."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.estimates import (
    FIRST_GUESS_TEXT,
    FIRST_GUESSES,
    EpochEstimate,
    estimate_epoch_times,
    estimate_job,
    format_seconds,
    median_overhead,
    round_samples,
    suggest_sample_limit,
    usable_runs,
)
from lib.results import DeviceRun
from lib.spec import ModelSpec, flops_per_epoch
from lib.store import RunStore


def _record(store: RunStore, spec: ModelSpec, device: str, flops_per_s: float, status: str = "done") -> None:
    run = DeviceRun(
        device=device,
        backend="tensorflow",
        synthetic=False,
        status=status,
        num_train=1000,
        epoch_s=[1.0, 0.5],
        first_epoch_s=1.0,
        steady_epoch_s=0.5,
        total_s=1.5,
        samples_per_s=2000.0,
        achieved_flops_per_s=flops_per_s if status == "done" else None,
    )
    store.record(spec, run)


@pytest.fixture
def store(runs_db) -> RunStore:
    return RunStore()


def test_no_runs_gives_a_rough_first_guess_on_every_device(store):
    estimates = estimate_epoch_times(ModelSpec(), 60_000, ["cpu:0", "gpu:0"], store.runs())
    assert [e.device for e in estimates] == ["cpu:0", "gpu:0"]
    assert all(e.rough and e.based_on == 0 and e.text.endswith(f"({FIRST_GUESS_TEXT})") for e in estimates)
    assert estimates[1].seconds < estimates[0].seconds  # the GPU's first guess is the faster one


def test_estimate_is_epoch_flops_over_achieved_flops_per_device(store):
    spec = ModelSpec(hidden_units=(128,), batch_size=64)
    _record(store, spec, "cpu:0", 2e9)
    _record(store, spec, "gpu:0", 5e10)
    cpu, gpu = estimate_epoch_times(spec, 10_000, ["cpu:0", "gpu:0"], store.runs())
    expected_cpu = flops_per_epoch(spec, 10_000) / 2e9
    assert cpu.seconds == pytest.approx(expected_cpu)
    assert gpu.seconds == pytest.approx(flops_per_epoch(spec, 10_000) / 5e10)
    assert cpu.based_on == 1 and not cpu.rough
    assert cpu.text == f"about {format_seconds(expected_cpu)} (from 1 past run)"


def test_nearest_runs_in_size_win(store):
    small = ModelSpec(hidden_units=(32,), batch_size=32)
    big = ModelSpec(hidden_units=(2048, 2048), batch_size=32)
    _record(store, small, "cpu:0", 1e8)
    for rate in (4e9, 5e9, 6e9):
        _record(store, big, "cpu:0", rate)
    (estimate,) = estimate_epoch_times(big.with_changes(hidden_units=(2000, 2000)), 1000, ["cpu:0"], store.runs())
    assert estimate.flops_per_s == pytest.approx(5e9)
    assert estimate.based_on == 3


def test_far_away_runs_give_a_rough_estimate(store):
    _record(store, ModelSpec(hidden_units=(16,), batch_size=16), "cpu:0", 1e8)
    (estimate,) = estimate_epoch_times(
        ModelSpec(hidden_units=(4096,) * 4, batch_size=4096), 1000, ["cpu:0"], store.runs()
    )
    assert estimate.rough
    assert estimate.text.startswith("roughly ")


def test_failed_runs_and_other_devices_are_not_used(store):
    spec = ModelSpec(hidden_units=(64,))
    _record(store, spec, "cpu:0", 0.0, status="failed")
    _record(store, spec, "gpu:0", 3e10)
    (estimate,) = estimate_epoch_times(spec, 1000, ["cpu:0"], store.runs())
    assert estimate.based_on == 0 and estimate.rough  # neither the failed CPU run nor the GPU run was used
    assert len(usable_runs(store.runs())) == 1


def test_usable_runs_tolerates_frames_without_the_columns():
    assert usable_runs(pd.DataFrame({"device": ["cpu:0"]})).empty


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4213, "0.42 s"), (12.34, "12.3 s"), (245.0, "4 min 05 s"), (3725.0, "1 h 02 min")]
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_plural_in_text():
    estimate = EpochEstimate(device="cpu:0", seconds=2.0, flops_per_s=1.0, based_on=3, rough=False)
    assert estimate.text == "about 2.00 s (from 3 past runs)"


# --- one estimator for the Build page, the Train page and the runner (hand-made run frames) ---


def _row(
    spec: ModelSpec,
    flops_per_s: float,
    device: str = "cpu:0",
    *,
    first_s: float | None = None,
    steady_s: float | None = None,
    backend: str = "tensorflow",
) -> dict:
    epochs = [] if first_s is None else [first_s, steady_s, steady_s]
    return {
        "device": device,
        "backend": backend,
        "status": "done",
        "achieved_flops_per_s": flops_per_s,
        "spec": spec.to_dict(),
        "first_epoch_s": first_s,
        "steady_epoch_s": steady_s,
        "epoch_s": epochs,
    }


def _frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


SMALL = ModelSpec(hidden_units=(128,), batch_size=32, epochs=3)


def test_batch_size_changes_the_estimate_when_stored_runs_say_so():
    big_batch = SMALL.with_changes(batch_size=1024)
    runs = _frame(_row(SMALL, 1e9), _row(big_batch, 2e10))
    slow = estimate_job(SMALL, 6000, ["cpu:0"], runs, overhead_s=0.0)
    fast = estimate_job(big_batch, 6000, ["cpu:0"], runs, overhead_s=0.0)
    assert slow.devices[0].steady_epoch_s == pytest.approx(flops_per_epoch(SMALL, 6000) / 1e9)
    assert fast.devices[0].steady_epoch_s == pytest.approx(flops_per_epoch(big_batch, 6000) / 2e10)
    assert slow.devices[0].based_on == fast.devices[0].based_on == 1


def test_job_total_is_overhead_plus_first_and_steady_epochs_per_device():
    runs = _frame(_row(SMALL, 2e9, first_s=3.0, steady_s=1.0), _row(SMALL, 4e10, "gpu:0", first_s=6.0, steady_s=0.5))
    estimate = estimate_job(SMALL, 6000, ["cpu:0", "gpu:0"], runs, overhead_s=7.5)
    cpu, gpu = estimate.devices
    assert cpu.first_epoch_s == pytest.approx(cpu.steady_epoch_s + 2.0)
    assert gpu.first_epoch_s == pytest.approx(gpu.steady_epoch_s + 5.5)
    assert cpu.total_s == pytest.approx(cpu.first_epoch_s + 2 * cpu.steady_epoch_s)
    assert estimate.total_s == pytest.approx(7.5 + cpu.total_s + gpu.total_s)
    assert estimate.based_on == 2 and not estimate.rough
    assert estimate.text == f"about {format_seconds(estimate.total_s)} (from 2 past runs)"


def test_first_epoch_extra_is_seconds_that_do_not_grow_with_the_samples():
    runs = _frame(_row(SMALL, 2e9, first_s=4.0, steady_s=1.0))
    small, large = (estimate_job(SMALL, n, ["cpu:0"], runs, overhead_s=0.0).devices[0] for n in (1000, 60_000))
    assert large.steady_epoch_s == pytest.approx(60 * small.steady_epoch_s)
    assert large.first_epoch_s - large.steady_epoch_s == pytest.approx(3.0)
    assert small.first_epoch_s - small.steady_epoch_s == pytest.approx(3.0)


def test_one_epoch_runs_say_nothing_about_the_first_epoch_extra():
    row = _row(SMALL, 2e9, first_s=4.0, steady_s=4.0)
    row["epoch_s"] = [4.0]
    (device,) = estimate_job(SMALL, 1000, ["cpu:0"], _frame(row), overhead_s=0.0).devices
    assert device.first_epoch_s - device.steady_epoch_s == pytest.approx(FIRST_GUESSES["cpu"].first_epoch_extra_s)


def test_no_stored_run_gives_a_rough_first_guess_per_device_kind():
    estimate = estimate_job(ModelSpec(), 60_000, ["cpu:0", "gpu:0"], pd.DataFrame(), overhead_s=8.0)
    cpu, gpu = estimate.devices
    assert cpu.first_guess and gpu.first_guess and estimate.rough
    assert 0 < gpu.steady_epoch_s < cpu.steady_epoch_s
    assert cpu.steady_epoch_s > flops_per_epoch(ModelSpec(), 60_000) / FIRST_GUESSES["cpu"].flops_per_s
    assert estimate.text == f"roughly {format_seconds(estimate.total_s)} ({FIRST_GUESS_TEXT})"


def test_a_device_without_runs_next_to_one_with_runs_says_which_is_guessed():
    estimate = estimate_job(SMALL, 6000, ["cpu:0", "gpu:0"], _frame(_row(SMALL, 2e9)), overhead_s=0.0)
    assert estimate.rough
    assert estimate.source_text == "from 1 past run; first guess for gpu:0"


def test_all_gpus_without_runs_of_its_own_is_estimated_as_one_gpu_and_rough():
    runs = _frame(_row(SMALL, 3e10, "gpu:0"))
    single, parallel = estimate_job(SMALL, 6000, ["gpu:0", "gpu:all"], runs, overhead_s=0.0).devices
    assert parallel.steady_epoch_s == pytest.approx(single.steady_epoch_s)
    assert parallel.based_on == 1 and parallel.rough and not single.rough
    runs = _frame(_row(SMALL, 3e10, "gpu:0"), _row(SMALL, 5e10, "gpu:all"))
    (parallel,) = estimate_job(SMALL, 6000, ["gpu:all"], runs, overhead_s=0.0).devices
    assert parallel.flops_per_s == pytest.approx(5e10) and not parallel.rough


def test_runs_on_the_jobs_backend_win_when_it_is_known():
    runs = _frame(_row(SMALL, 1e10, backend="jax"), _row(SMALL, 2e9, backend="tensorflow"))

    def rate(backend: str | None) -> float:
        return estimate_job(SMALL, 6000, ["cpu:0"], runs, overhead_s=0.0, backend=backend).devices[0].flops_per_s

    assert rate("jax") == pytest.approx(1e10)
    assert rate("tensorflow") == pytest.approx(2e9)
    assert rate(None) == pytest.approx(6e9)


def test_runs_with_the_same_per_step_settings_win():
    compiled = SMALL.with_changes(steps_per_execution=16, jit_compile=True)
    runs = _frame(_row(SMALL, 2e9), _row(compiled, 2e10))
    assert estimate_job(compiled, 6000, ["cpu:0"], runs, overhead_s=0.0).devices[0].flops_per_s == pytest.approx(2e10)
    assert estimate_job(SMALL, 6000, ["cpu:0"], runs, overhead_s=0.0).devices[0].flops_per_s == pytest.approx(2e9)


def test_build_page_epoch_estimates_equal_the_job_estimates_steady_epochs():
    runs = _frame(_row(SMALL, 2e9, first_s=3.0, steady_s=1.0), _row(ModelSpec(hidden_units=(2048,)), 9e9))
    devices = ["cpu:0", "gpu:0"]
    epochs = estimate_epoch_times(SMALL, 6000, devices, runs)
    job = estimate_job(SMALL, 6000, devices, runs, overhead_s=8.0)
    assert [e.seconds for e in epochs] == [d.steady_epoch_s for d in job.devices]
    assert epochs[1].text.endswith(f"({FIRST_GUESS_TEXT})") and epochs[1].rough


def test_stored_runs_from_the_store_are_read_the_same_as_hand_made_ones(store):
    _record(store, SMALL, "cpu:0", 2e9)
    stored = estimate_job(SMALL, 6000, ["cpu:0"], store.runs(), overhead_s=1.0)
    hand_made = estimate_job(
        SMALL, 6000, ["cpu:0"], _frame(_row(SMALL, 2e9, first_s=1.0, steady_s=0.5)), overhead_s=1.0
    )
    assert stored == hand_made


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


def _rate_for(spec: ModelSpec, samples: int, training_s: float) -> float:
    """The FLOP/s at which `spec` trains `samples` per epoch for all its epochs in `training_s` seconds."""
    return flops_per_epoch(spec, samples) * spec.epochs / training_s


def test_suggestion_aims_for_the_target_in_round_whole_batches():
    runs = _frame(_row(SMALL, _rate_for(SMALL, 7300, 40.0), first_s=1.0, steady_s=1.0))
    suggestion = suggest_sample_limit(SMALL, ["cpu:0"], runs, overhead_s=5.0, max_samples=60_000, target_s=45.0)
    assert suggestion.samples == 7200
    assert suggestion.seconds == pytest.approx(5.0 + 40.0 * 7200 / 7300)
    assert suggestion.seconds == suggestion.estimate.total_s
    assert not (suggestion.whole_dataset or suggestion.too_slow)
    assert suggestion.text == f"about {format_seconds(suggestion.seconds)} here (from 1 past run)"


def test_suggestion_is_the_whole_dataset_when_it_fits():
    runs = _frame(_row(SMALL, _rate_for(SMALL, 60_000, 10.0), first_s=1.0, steady_s=1.0))
    suggestion = suggest_sample_limit(SMALL, ["cpu:0"], runs, overhead_s=5.0, max_samples=60_000)
    assert suggestion.samples == 60_000 and suggestion.whole_dataset
    assert suggestion.seconds == pytest.approx(15.0)


def test_suggestion_says_when_even_one_batch_is_over_a_minute():
    runs = _frame(_row(SMALL, _rate_for(SMALL, 32, 90.0), first_s=1.0, steady_s=1.0))
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
