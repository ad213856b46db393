"""Tests of the device-resident training loop (lib.device_resident).

The loop needs the JAX backend, and Keras fixes its backend at import, so the training checks
(tests/helpers/device_resident_report.py) run once in a subprocess with KERAS_BACKEND=jax (JAX's CPU build is
a dev dependency) and report their findings as JSON; the tests below assert on that report.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lib import device_resident
from tests.conftest import REPO_ROOT, subprocess_env


@pytest.fixture(scope="module")
def benchmark_outputs(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("benchmarks")
    env = subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.gpu_machine", "-m", "tests.helpers.benchmark_runs", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("CODES"))
    files = {name: json.loads((out / f"{name}.json").read_text()) for name in ("ceilings", "presets", "peers")}
    return json.loads(line.removeprefix("CODES")), files


@pytest.fixture(scope="module")
def jax_report() -> dict:
    env = subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.device_resident_report"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT"))
    return json.loads(line.removeprefix("REPORT"))


def test_supported_only_on_jax():
    assert device_resident.supported("jax")
    assert not device_resident.supported("tensorflow")
    assert not device_resident.supported("torch")
    assert "not available on the torch backend" in device_resident.unsupported_reason("torch")


def test_refuses_on_other_backends(monkeypatch):
    monkeypatch.setattr(device_resident, "backend_name", lambda: "torch")
    with pytest.raises(device_resident.DeviceResidentError, match="not available"):
        device_resident.fit_device_resident(None, [], [], batch_size=1, epochs=1, seed=0)


def test_loss_falls_and_accuracy_beats_chance(jax_report):
    run = jax_report["uint8"]
    assert len(run["loss"]) == 4
    assert run["loss"][-1] < run["loss"][0] * 0.8
    assert run["accuracy"][-1] > 0.6  # chance is 0.25
    assert run["callback_epochs"] == [1, 2, 3, 4]
    assert all(seconds > 0 for seconds in run["seconds"])


def test_weights_written_back_into_the_model(jax_report):
    run = jax_report["uint8"]
    assert run["weights_changed"]
    assert run["eval_accuracy"] > 0.6
    assert abs(run["eval_accuracy"] - run["accuracy"][-1]) < 0.15


def test_the_remainder_trains_as_one_smaller_step(jax_report):
    # 1000 samples at batch 64: 15 whole batches and one of the last 40 per epoch, 4 epochs.
    assert jax_report["uint8"]["optimizer_steps"] == 16 * 4


def test_a_ragged_epoch_matches_model_fit_value_by_value(jax_report):
    run = jax_report["ragged"]
    assert run["resident_loss"] == pytest.approx(run["fit_loss"], rel=1e-3)
    assert run["resident_accuracy"] == pytest.approx(run["fit_accuracy"], abs=1e-3)


def test_in_order_matches_model_fit(jax_report):
    run = jax_report["ordered"]
    assert run["resident_loss"] == pytest.approx(run["fit_loss"], rel=1e-3)
    assert run["resident_accuracy"] == pytest.approx(run["fit_accuracy"], abs=1e-3)


def test_mixed_precision_trains(jax_report):
    run = jax_report["mixed"]
    assert run["hidden_kernel_dtype"] == "float32"  # variables stay float32 under mixed_bfloat16
    assert run["loss"][-1] < run["loss"][0]
    assert run["accuracy"][-1] > 0.5


def test_should_stop_ends_between_epochs(jax_report):
    assert jax_report["stopped_epochs"] == 2


def test_fewer_samples_than_a_batch_make_one_step(jax_report):
    assert jax_report["small_steps"] == 2  # one step per epoch, 2 epochs


def test_errors_say_the_fix(jax_report):
    assert "at least one" in jax_report["errors"]["empty"]
    assert "compiled" in jax_report["errors"]["uncompiled"]
    assert "data-parallel run" in jax_report["errors"]["distributed"]


def test_benchmarks_run_without_tensorflow(benchmark_outputs):
    codes, files = benchmark_outputs
    assert codes == {"ceilings": 0, "presets": 0, "peers": 0}
    for payload in files.values():
        assert payload["backend"] == "jax"
        assert payload["date"] and payload["command"] and payload["hardware"]


def test_ceilings_benchmark_records_each_precision(benchmark_outputs):
    ceilings = benchmark_outputs[1]["ceilings"]["ceilings"]
    assert [(c["device"], c["precision"], c["backend"]) for c in ceilings] == [
        ("cpu:0", "float32 strict", "jax"),
        ("cpu:0", "bfloat16", "jax"),
    ]
    assert all(c["flops_per_s"] == pytest.approx(2 * c["n"] ** 3 / c["seconds"]) for c in ceilings)


def test_presets_benchmark_has_tutorial_tuned_and_device_resident_rows(benchmark_outputs):
    rows = {row["config"]: row for row in benchmark_outputs[1]["presets"]["rows"]}
    assert list(rows) == [
        "fashion-seed (tutorial)",
        "fashion-seed + steps_per_execution 4",
        "fashion-seed, input on device",
        "fashion-tuned",
        "fashion-tuned, input on device",
        "fashion-tuned, input on device, mixed_bfloat16",
    ]
    tuned = rows["fashion-tuned, input on device"]
    assert tuned["batch_size"] == 1024 and tuned["device_resident"] and tuned["steps_per_call"] == "epoch"
    assert len(tuned["epoch_s"]) == 2  # the extra profiled epoch is not counted
    assert all(row["steady_epoch_s"] > 0 and row["share_pct"] > 0 and row["diagnosis"] for row in rows.values())
    assert rows["fashion-seed (tutorial)"]["profile"]["error"].startswith("no GPU lines")  # CPU: nothing to split


def test_peers_benchmark_compares_against_the_engine(benchmark_outputs):
    rows = benchmark_outputs[1]["peers"]["rows"]
    peers = [row["peer"] for row in rows]
    # The middle row goes through the engine once ModelSpec has a device_resident option, else through device_resident.
    assert peers[0] == "engine" and peers[2] == "keras fit (bare)"
    assert peers[1] == "engine, input on device"
    assert rows[0]["vs_engine"] == 1.0
    assert all(row["batch_size"] == 64 and row["tflops"] > 0 for row in rows)
