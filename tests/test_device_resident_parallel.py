"""Tests of the data-parallel device-resident loop (lib.device_resident with `devices`).

JAX fixes its device count at start-up, so the checks (tests/helpers/device_resident_parallel_report.py) run
once in a subprocess with KERAS_BACKEND=jax and two host CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=2), and report their findings as JSON; the tests below assert
on that report.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import SCALING_BENCHMARK, run_on_two_host_devices


@pytest.fixture(scope="module")
def parallel_report() -> dict:
    result = run_on_two_host_devices(["-m", "tests.helpers.device_resident_parallel_report"], "jax", timeout_s=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT"))
    return json.loads(line.removeprefix("REPORT"))


def test_two_replicas(parallel_report):
    assert parallel_report["device_count"] == 2
    assert parallel_report["devices"] == ["cpu:0", "cpu:1"]


def test_in_order_matches_one_device_on_the_same_batches(parallel_report):
    run = parallel_report["ordered"]
    assert run["parallel_loss"] == pytest.approx(run["single_loss"], rel=1e-4)
    assert run["parallel_accuracy"] == pytest.approx(run["single_accuracy"], abs=2e-3)
    assert run["max_weight_difference"] < 1e-4
    assert run["parallel_loss"][-1] < run["parallel_loss"][0]


def test_each_replica_trains_its_own_remainder_as_a_last_step(parallel_report):
    # Blocks of 500 at 32 per replica: 15 whole steps and one of the last 20 samples of each block per epoch.
    assert parallel_report["ordered"]["optimizer_steps"] == 16 * 3
    assert parallel_report["shuffled"]["optimizer_steps"] == 16 * 4


def test_state_replicated_and_written_back_to_one_device(parallel_report):
    run = parallel_report["ordered"]
    assert set(run["replica_copies"]) == {2}
    assert run["replicas_identical"]
    assert run["weights_device"] == ["cpu:0"]


def test_shuffled_with_dropout_and_batch_norm_trains(parallel_report):
    run = parallel_report["shuffled"]
    assert run["loss"][-1] < run["loss"][0] * 0.8
    assert run["accuracy"][-1] > 0.6  # chance is 0.25
    assert run["eval_accuracy"] > 0.6
    assert run["replicas_identical"]
    assert run["moving_mean_changed"]


def test_errors_say_the_fix(parallel_report):
    errors = parallel_report["errors"]
    assert "multiple of 2" in errors["odd_batch"]
    assert "once" in errors["twice"]
    assert "cpu:0, cpu:1" in errors["unknown"]


def test_scaling_benchmark_has_device_resident_rows(tmp_path):
    out = tmp_path / "scaling.json"
    args = ["--kind", "cpu", "--preset", "fashion-tuned", "--synthetic", "--limit", "1024", "--test-limit", "32"]
    args += ["--epochs", "2", "--no-input-floor", "--quiet", "--json", str(out)]
    done = run_on_two_host_devices([*SCALING_BENCHMARK, *args], "jax", timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "input on the device" in done.stdout
    document = json.loads(out.read_text())
    assert document["spec"]["device_resident"] is False  # the model.fit rows stay model.fit
    rows = document["device_resident_rows"]
    assert [(row["device"], row["replicas"], row["per_replica_batch"], row["status"]) for row in rows] == [
        ("cpu:0", 1, 1024, "done"),
        ("cpu:all", 2, 512, "done"),
    ]
    assert rows[1]["speedup"] == pytest.approx(rows[0]["steady_epoch_s"] / rows[1]["steady_epoch_s"])
    assert rows[1]["efficiency"] == pytest.approx(rows[1]["speedup"] / 2)
    runs = document["device_resident_runs"]
    assert [len(run["train_loss"]) for run in runs] == [2, 2] and all(run["num_train"] == 1024 for run in runs)
    assert all(0 <= row["test_accuracy"] <= 1 for row in rows)
