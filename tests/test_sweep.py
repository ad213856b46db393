"""Unit tests of lib.sweep: the batch-size checks, and what a sweep's runs show (points, speedups, crossovers, text)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.device_run import DeviceRun
from lib.jobs import LimitError
from lib.spec import ModelSpec
from lib.store import RunStore
from lib.sweep import (
    GPU_EXPLANATION,
    MAX_STORED_GPU_RUNS,
    POINT_COLUMNS,
    SPEEDUP_COLUMNS,
    STORED_GPU_COLUMNS,
    SWEEP_MIN_STEPS,
    Outcome,
    about_batch,
    baseline_device,
    check_batch_sizes,
    crossing_batch_size,
    crossover_frame,
    failed_point_texts,
    speedup_caption,
    speedup_points,
    stored_gpu_runs,
    sweep_crossovers,
    sweep_points,
    sweep_samples,
    throughput_caption,
    unfinished_point_count,
    what_a_gpu_changes,
)

BATCHES = (32, 128, 512, 2048)


def sweep_runs(rows) -> pd.DataFrame:
    """A sweep's runs frame from (device, batch size, samples/s[, status]) tuples, shaped like the store's."""
    records = []
    for row in rows:
        device, batch_size, samples_per_s, *rest = row
        records.append(
            {
                "job_id": "abc123",
                "device": device,
                "batch_size": batch_size,
                "samples_per_s": samples_per_s,
                "steady_epoch_s": 8192 / samples_per_s if samples_per_s == samples_per_s else math.nan,
                "status": rest[0] if rest else "done",
            }
        )
    return pd.DataFrame(records)


def power_law_runs(cpu_exponent: float = 0.3, gpu_start: float = 200.0) -> pd.DataFrame:
    """CPU throughput 1,000 * (b/32)^cpu_exponent, GPU gpu_start * (b/32): the GPU overtakes where they meet."""
    rows = [("cpu:0", size, 1000.0 * (size / 32) ** cpu_exponent) for size in BATCHES]
    rows += [("gpu:0", size, gpu_start * (size / 32)) for size in BATCHES]
    return sweep_runs(rows)


def speedups_of(device_speedups: dict[int, float], device: str = "gpu:0") -> pd.DataFrame:
    """Speedup rows of one device over cpu:0, which trains 1,000 samples/s at every batch size."""
    rows = [("cpu:0", size, 1000.0) for size in device_speedups]
    rows += [(device, size, 1000.0 * speedup) for size, speedup in device_speedups.items()]
    return speedup_points(sweep_points(sweep_runs(rows)))


# --- the request side: batch sizes and samples ---


def test_check_batch_sizes_puts_them_in_order():
    assert check_batch_sizes([512, 32, 2048, 128], largest_allowed=4096) == (32, 128, 512, 2048)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ([32], "between 2 and 6"),
        ([16, 32, 64, 128, 256, 512, 1024], "between 2 and 6"),
        ([32, 64, 32], "chosen twice"),
        ([32, 8192], "over this server's limit of 4,096"),
        ([32, 64.0], "whole numbers"),
        ([32, "64"], "whole numbers"),
        ([32, True], "whole numbers"),
        ([0, 32], "whole numbers"),
    ],
)
def test_check_batch_sizes_refuses(sizes, message):
    with pytest.raises(LimitError, match=message):
        check_batch_sizes(sizes, largest_allowed=4096)


def test_check_batch_sizes_allows_the_limit_itself():
    assert check_batch_sizes([4096, 32], largest_allowed=4096) == (32, 4096)


def test_sweep_samples_raised_so_the_largest_batch_takes_several_steps():
    assert sweep_samples([32, 2048], asked=1000, allowed=60000) == SWEEP_MIN_STEPS * 2048


def test_sweep_samples_keeps_a_larger_ask():
    assert sweep_samples([32, 128], asked=10000, allowed=60000) == 10000


def test_sweep_samples_capped_by_what_is_allowed():
    assert sweep_samples([32, 2048], asked=1000, allowed=5000) == 5000
    assert sweep_samples([32, 2048], asked=90000, allowed=60000) == 60000


# --- finished points ---


def test_sweep_points_keeps_finished_points_with_a_throughput_sorted():
    runs = sweep_runs(
        [
            ("gpu:0", 512, 9000.0),
            ("cpu:0", 2048, 3000.0),
            ("cpu:0", 32, 1000.0),
            ("gpu:0", 32, 500.0),
            ("gpu:0", 2048, math.nan, "failed"),
            ("cpu:0", 512, 2000.0, "cancelled"),
            ("gpu:0", 128, math.nan),  # done, but no steady epoch
        ]
    )
    points = sweep_points(runs)
    assert list(points.columns) == list(POINT_COLUMNS)
    assert list(zip(points["device"], points["batch_size"], strict=True)) == [
        ("cpu:0", 32),
        ("cpu:0", 2048),
        ("gpu:0", 32),
        ("gpu:0", 512),
    ]
    assert unfinished_point_count(runs) == 3


def test_each_failed_point_is_named_with_the_first_line_of_its_reason():
    runs = sweep_runs(
        [
            ("gpu:0", 8192, math.nan, "failed"),
            ("cpu:0", 32, 1000.0),
            ("cpu:0", 8192, math.nan, "failed"),
            ("gpu:0", 4096, math.nan, "cancelled"),  # cancelled: the sweep's own caption counts it
            ("cpu:0", 4096, math.nan, "failed"),  # no stored reason: nothing to say
        ]
    )
    runs["error"] = ["Out of memory on gpu:0.\nTraceback ...", "", "x" * 500, "stopped", None]

    assert failed_point_texts(runs) == [
        "cpu:0 at batch 8,192: " + "x" * 299 + "\u2026",
        "gpu:0 at batch 8,192: Out of memory on gpu:0.",
    ]
    assert failed_point_texts(sweep_runs([("cpu:0", 32, 1000.0)])) == []  # no error column: nothing failed


def test_sweep_points_keeps_the_last_of_a_repeated_point():
    points = sweep_points(sweep_runs([("cpu:0", 32, 1000.0), ("cpu:0", 32, 1200.0)]))
    assert points["samples_per_s"].tolist() == [1200.0]


def test_sweep_points_of_no_runs_is_empty_with_the_columns():
    assert list(sweep_points(pd.DataFrame()).columns) == list(POINT_COLUMNS)
    assert unfinished_point_count(pd.DataFrame()) == 0


# --- speedups ---


def test_speedup_is_at_the_same_batch_size_only():
    runs = sweep_runs([("cpu:0", 32, 1000.0), ("cpu:0", 128, 2000.0), ("gpu:0", 128, 8000.0), ("gpu:0", 512, 9e4)])
    speedups = speedup_points(sweep_points(runs))
    assert list(speedups.columns) == list(SPEEDUP_COLUMNS)
    assert speedups[["device", "baseline", "batch_size", "speedup"]].to_dict("records") == [
        {"device": "gpu:0", "baseline": "cpu:0", "batch_size": 128, "speedup": 4.0}
    ]


def test_speedup_baseline_is_cpu0_else_the_first_cpu():
    assert baseline_device(["gpu:0", "cpu:1", "cpu:0"]) == "cpu:0"
    assert baseline_device(["gpu:0", "cpu:1"]) == "cpu:1"
    assert baseline_device(["gpu:0", "gpu:all"]) is None


def test_speedup_covers_every_non_cpu_device():
    runs = sweep_runs([("cpu:0", 32, 1000.0), ("gpu:0", 32, 3000.0), ("gpu:all", 32, 5000.0), ("cpu:1", 32, 900.0)])
    speedups = speedup_points(sweep_points(runs))
    assert dict(zip(speedups["device"], speedups["speedup"], strict=True)) == {"gpu:0": 3.0, "gpu:all": 5.0}


@pytest.mark.parametrize(
    "rows",
    [[("cpu:0", 32, 1000.0), ("cpu:0", 64, 1500.0)], [("gpu:0", 32, 1000.0), ("gpu:0", 64, 1500.0)], []],
    ids=["cpu only", "no cpu", "nothing"],
)
def test_no_speedup_without_a_cpu_and_another_device(rows):
    speedups = speedup_points(sweep_points(sweep_runs(rows)))
    assert speedups.empty and list(speedups.columns) == list(SPEEDUP_COLUMNS)
    assert sweep_crossovers(speedups) == ()
    assert speedup_caption(()).startswith("No speedup to draw")


# --- crossovers ---


def test_crossover_of_power_laws_is_where_they_meet():
    (crossover,) = sweep_crossovers(speedup_points(sweep_points(power_law_runs())))
    # 200 * (b/32) = 1000 * (b/32)^0.3  <=>  b = 32 * 5^(1/0.7): the log-log interpolation is exact here.
    assert crossover.outcome == Outcome.OVERTAKES
    assert crossover.batch_size == pytest.approx(32 * 5 ** (1 / 0.7))
    assert crossover.crossings == 1
    assert (crossover.device, crossover.baseline) == ("gpu:0", "cpu:0")
    assert (crossover.first_batch, crossover.last_batch) == (32, 2048)
    assert crossover.first_speedup == pytest.approx(0.2)


def test_always_and_never_faster_have_no_crossover_batch():
    (always,) = sweep_crossovers(speedups_of({32: 1.8, 128: 4.0, 2048: 12.0}))
    (never,) = sweep_crossovers(speedups_of({32: 0.1, 128: 0.3, 2048: 0.5}))
    assert (always.outcome, always.batch_size) == (Outcome.ALWAYS_FASTER, None)
    assert (never.outcome, never.batch_size) == (Outcome.NEVER_FASTER, None)
    assert crossover_frame([always, never]).empty


def test_exactly_as_fast_is_not_faster():
    (crossover,) = sweep_crossovers(speedups_of({32: 1.0, 128: 2.0}))
    assert crossover.outcome == Outcome.OVERTAKES
    assert crossover.batch_size == 32


def test_several_crossings_take_the_first_upward_one():
    (crossover,) = sweep_crossovers(speedups_of({32: 2.0, 64: 0.5, 128: 2.0, 256: 0.8, 512: 4.0}))
    assert crossover.outcome == Outcome.OVERTAKES
    assert 64 < crossover.batch_size < 128
    assert crossover.crossings == 4
    assert "crosses 1x 4 times" in speedup_caption([crossover])


def test_falling_behind_is_a_downward_crossing():
    (crossover,) = sweep_crossovers(speedups_of({32: 2.0, 128: 1.5, 512: 0.5}))
    assert crossover.outcome == Outcome.FALLS_BEHIND
    assert 128 < crossover.batch_size < 512
    assert speedup_caption([crossover]).startswith("gpu:0 is faster up to about batch")


@given(
    below_batch=st.integers(min_value=1, max_value=2**16),
    factor=st.integers(min_value=2, max_value=64),
    below_speedup=st.floats(min_value=1e-3, max_value=1.0),
    above_speedup=st.floats(min_value=1.0, max_value=1e3, exclude_min=True),
)
def test_crossing_lies_between_the_bracketing_batch_sizes(below_batch, factor, below_speedup, above_speedup):
    above_batch = below_batch * factor
    upward = crossing_batch_size(below_batch, below_speedup, above_batch, above_speedup)
    downward = crossing_batch_size(below_batch, above_speedup, above_batch, below_speedup)
    assert below_batch <= upward <= above_batch
    assert below_batch <= downward <= above_batch
    # The closer a point's speedup is to 1x, the closer the crossing is to that point (log-log line).
    share = math.log2(upward / below_batch) / math.log2(above_batch / below_batch)
    expected = -math.log(below_speedup) / (math.log(above_speedup) - math.log(below_speedup))
    assert share == pytest.approx(expected, abs=1e-9)


def test_crossover_frame_labels_the_crossing():
    frame = crossover_frame(sweep_crossovers(speedup_points(sweep_points(power_law_runs()))))
    assert frame.to_dict("records") == [
        {
            "device": "gpu:0",
            "batch_size": pytest.approx(318.9, abs=0.1),
            "outcome": "overtakes",
            "label": "gpu:0 overtakes cpu:0 at about batch 320",
        }
    ]


@pytest.mark.parametrize(("batch", "text"), [(90.4, "90"), (318.9, "320"), (1234.0, "1,200"), (5.3, "5"), (None, "?")])
def test_about_batch_keeps_two_significant_figures(batch, text):
    assert about_batch(batch) == text


# --- captions ---


def test_throughput_caption_gives_each_devices_gain():
    points = sweep_points(power_law_runs())
    # cpu:0: 4^... = 64^0.3 = 3.48x; gpu:0: 64x, over the same batch sizes.
    assert throughput_caption(points) == "On cpu:0 throughput grows 3.5x from batch 32 to 2,048; on gpu:0 64x."


def test_throughput_caption_names_each_range_and_the_missing_points():
    runs = sweep_runs(
        [
            ("cpu:0", 32, 1000.0),
            ("cpu:0", 2048, 800.0),
            ("gpu:0", 32, 500.0),
            ("gpu:0", 512, 5000.0),
            ("gpu:0", 2048, math.nan, "failed"),
        ]
    )
    caption = throughput_caption(sweep_points(runs), unfinished_point_count(runs))
    assert caption == (
        "On cpu:0 throughput falls to 0.8x from batch 32 to 2,048; on gpu:0 it grows 10x from batch 32 to 512. "
        "1 point has no throughput (not finished, failed or cancelled) and is not drawn."
    )


def test_throughput_caption_names_a_peak_below_the_largest_batch():
    measured = {32: 4_174.0, 128: 10_050.0, 512: 19_186.0, 2048: 13_011.0}  # this CPU, Fashion-MNIST seed model
    runs = sweep_runs([("cpu:0", batch, samples_per_s) for batch, samples_per_s in measured.items()])

    caption = throughput_caption(sweep_points(runs))

    assert caption == (
        "On cpu:0 throughput grows 3.1x from batch 32 to 2,048. "
        "cpu:0 is fastest at batch 512; larger batches are slower there."
    )


def test_a_last_point_within_the_margin_of_the_best_is_no_peak():
    runs = sweep_runs([("cpu:0", 32, 1_000.0), ("cpu:0", 512, 2_100.0), ("cpu:0", 2048, 2_000.0)])

    assert "fastest" not in throughput_caption(sweep_points(runs))


def test_throughput_caption_without_points():
    assert throughput_caption(sweep_points(pd.DataFrame()), 2).startswith("No point of this sweep has finished yet. 2")


def test_speedup_caption_says_where_the_gpu_overtakes():
    crossovers = sweep_crossovers(speedup_points(sweep_points(power_law_runs())))
    assert (
        speedup_caption(crossovers) == "gpu:0 overtakes cpu:0 from about batch 320; at batch 2,048 it is 3.7x faster."
    )


def test_speedup_caption_when_always_or_never_faster():
    always = sweep_crossovers(speedups_of({32: 1.8, 128: 4.0, 2048: 12.0}))
    never = sweep_crossovers(speedups_of({32: 0.1, 2048: 0.45}))
    assert speedup_caption(always) == (
        "gpu:0 is faster at every batch size measured, from 1.8x at batch 32 to 12x at batch 2,048."
    )
    assert speedup_caption(never).startswith("cpu:0 stays faster at every batch size measured (gpu:0 reaches 0.45x")
    assert "too small to keep gpu:0 busy" in speedup_caption(never)


def test_speedup_caption_after_an_overtaking_that_falls_back():
    crossovers = sweep_crossovers(speedups_of({32: 0.5, 128: 2.0, 512: 0.5}))
    assert speedup_caption(crossovers).startswith(
        "gpu:0 overtakes cpu:0 from about batch 64; at batch 512 cpu:0 is ahead again, 2x faster."
    )


# --- the CPU-only case: stored GPU runs and what a GPU changes ---


def store_rows(rows) -> pd.DataFrame:
    """Store-shaped rows from dicts that override a finished fashion_mnist [500, 500] gpu:0 run."""
    base = {
        "status": "done",
        "device": "gpu:0",
        "batch_size": 1024,
        "samples_per_s": 100000.0,
        "dataset": "fashion_mnist",
        "hidden_units": [500, 500],
        "hardware": {"node": "machine-1"},
        "backend": "jax",
        "synthetic": False,
    }
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["created_at"] = pd.to_datetime([f"2026-01-{day:02d}T10:00:00Z" for day in range(1, len(rows) + 1)])
    return frame


def test_stored_gpu_runs_are_the_same_models_finished_gpu_runs_newest_first():
    runs = store_rows(
        [
            {"batch_size": 256},
            {"device": "cpu:0"},
            {"dataset": "cifar10"},
            {"hidden_units": [500, 500, 500]},
            {"status": "failed"},
            {"samples_per_s": math.nan},
            {"device": "gpu:all", "synthetic": True, "hardware": {"host": "lab-pc"}},
        ]
    )
    stored = stored_gpu_runs(runs, "fashion_mnist", (500, 500))
    assert list(stored.columns) == list(STORED_GPU_COLUMNS)
    assert stored[["device", "batch_size", "machine", "data"]].to_dict("records") == [
        {"device": "gpu:all", "batch_size": 1024, "machine": "lab-pc", "data": "generated"},
        {"device": "gpu:0", "batch_size": 256, "machine": "machine-1", "data": "real"},
    ]


def test_stored_gpu_runs_are_bounded():
    stored = stored_gpu_runs(store_rows([{}] * (MAX_STORED_GPU_RUNS + 5)), "fashion_mnist", [500, 500])
    assert len(stored) == MAX_STORED_GPU_RUNS
    assert stored["created_at"].is_monotonic_decreasing
    assert stored_gpu_runs(pd.DataFrame(), "fashion_mnist", [500]).empty


def test_stored_gpu_runs_read_the_run_stores_frame(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    spec = ModelSpec(dataset="fashion_mnist", hidden_units=(64, 32), batch_size=512)
    for device, model in (("gpu:0", spec), ("cpu:0", spec), ("gpu:0", spec.with_changes(hidden_units=(64,)))):
        run = DeviceRun(device=device, backend="jax", synthetic=False, num_train=4096)
        run.set_epoch_times([2.0, 0.5])
        store.record(model, run, hardware={"host": "gpu-box"})
    stored = stored_gpu_runs(store.runs(), "fashion_mnist", (64, 32))
    assert stored[["device", "batch_size", "samples_per_s", "machine"]].to_dict("records") == [
        {"device": "gpu:0", "batch_size": 512, "samples_per_s": 8192.0, "machine": "gpu-box"}
    ]


def cpu_points() -> pd.DataFrame:
    return sweep_points(sweep_runs([("cpu:0", 32, 1000.0), ("cpu:0", 512, 2000.0), ("cpu:0", 2048, 3500.0)]))


def test_what_a_gpu_changes_without_stored_runs():
    text = what_a_gpu_changes(cpu_points(), stored_gpu_runs(pd.DataFrame(), "fashion_mnist", [500]))
    assert text.startswith(
        "On cpu:0 this model trains 1,000 samples/s at batch 32 and 3,500 samples/s at batch 2,048: "
        "its throughput grows 3.5x"
    )
    assert GPU_EXPLANATION in text
    assert text.endswith(
        "This store has no GPU runs of this model yet, so there is no GPU curve to set beside this one."
    )


def test_what_a_gpu_changes_cites_the_fastest_stored_run():
    stored = stored_gpu_runs(
        store_rows([{"samples_per_s": 250000.0}, {"batch_size": 64, "samples_per_s": 9000.0}]),
        "fashion_mnist",
        [500, 500],
    )
    text = what_a_gpu_changes(cpu_points(), stored)
    assert text.endswith(
        "This store has 2 GPU runs of this model: the fastest, gpu:0 at batch 1,024 on machine-1, "
        "trained 250,000 samples/s, 71.4x this CPU's best."
    )


def test_what_a_gpu_changes_says_at_least_when_the_list_is_full():
    stored = stored_gpu_runs(store_rows([{}] * (MAX_STORED_GPU_RUNS + 1)), "fashion_mnist", [500, 500])
    assert f"at least {MAX_STORED_GPU_RUNS} GPU runs" in what_a_gpu_changes(cpu_points(), stored)


def test_what_a_gpu_changes_before_any_cpu_point():
    stored = stored_gpu_runs(store_rows([{}]), "fashion_mnist", [500, 500])
    text = what_a_gpu_changes(sweep_points(pd.DataFrame()), stored)
    assert text.startswith("No CPU point of this sweep has finished yet.")
    assert text.endswith(
        "This store has 1 GPU run of this model: gpu:0 at batch 1,024 on machine-1, trained 100,000 samples/s."
    )
