"""Tests of epoch-time estimates from stored runs of similar size."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.estimates import NO_ESTIMATE_TEXT, EpochEstimate, estimate_epoch_times, format_seconds, usable_runs
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


def test_no_runs_gives_no_estimate_on_every_device(store):
    estimates = estimate_epoch_times(ModelSpec(), 60_000, ["cpu:0", "gpu:0"], store.runs())
    assert [e.device for e in estimates] == ["cpu:0", "gpu:0"]
    assert all(e.seconds is None and e.text == NO_ESTIMATE_TEXT for e in estimates)


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
    assert estimate.seconds is None
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
