"""Tests of the data-parallel device-resident loop (lib.device_resident with `devices`).

JAX fixes its device count at start-up, so the checks run once in a subprocess with KERAS_BACKEND=jax and
two host CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=2), and report their findings as JSON;
the tests below assert on that report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, SCALING_BENCHMARK_SCRIPT, run_on_two_host_devices

# 1000 samples over 2 replicas: blocks of 500; global batch 64 = 32 per replica, 15 steps and a last one of 20.
PARALLEL_CHECKS = r"""
import json
import numpy as np
import jax
import keras
from lib import device_resident
from lib.device_resident import DeviceResidentError, fit_device_resident, jax_devices

rng = np.random.default_rng(0)
NUM, FEATURES, CLASSES, BATCH, REPLICAS = 1000, 64, 4, 64, 2
PER, STEPS = BATCH // REPLICAS, (NUM // REPLICAS) // (BATCH // REPLICAS)
x = rng.random((NUM, FEATURES), dtype=np.float32)
y = np.argmax(x @ rng.normal(size=(FEATURES, CLASSES)), axis=1).astype(np.int32)
devices = jax_devices(["cpu:0", "cpu:1"])
report = {"device_count": len(jax.devices("cpu")), "devices": [str(d) for d in devices]}


def mlp(extra=(), optimizer="adam"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(32, activation="relu"),
        *extra,
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    # SGD's step is proportional to the gradient, so gradients summed instead of averaged would show.
    optimizer = keras.optimizers.Adam(0.01) if optimizer == "adam" else keras.optimizers.SGD(0.1)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# Record the replicated state handed to the write-back: one copy per device.
replica_copies = []
original_write_back = device_resident._write_back


def recording_write_back(model, state, device):
    leaves = jax.tree.leaves(state)
    replica_copies.append([[np.asarray(shard.data) for shard in leaf.addressable_shards] for leaf in leaves])
    original_write_back(model, state, device)


device_resident._write_back = recording_write_back

# In order: replica r's batch k is rows k*PER.. of block r, so global batch k is the union of those; the last
# (smaller) batch is the union of the blocks' last 20 rows.
parallel = mlp(optimizer="sgd")
parallel_history = fit_device_resident(
    parallel, x, y, batch_size=BATCH, epochs=3, seed=0, shuffle=False, devices=devices
)
blocks = np.arange(NUM).reshape(REPLICAS, NUM // REPLICAS)
whole = blocks[:, : STEPS * PER].reshape(REPLICAS, STEPS, PER).transpose(1, 0, 2).reshape(-1)
order = np.concatenate([whole, blocks[:, STEPS * PER :].reshape(-1)])
single = mlp(optimizer="sgd")
single_history = fit_device_resident(single, x[order], y[order], batch_size=BATCH, epochs=3, seed=0, shuffle=False)
copies = replica_copies[0]
report["ordered"] = {
    "parallel_loss": [s.loss for s in parallel_history], "single_loss": [s.loss for s in single_history],
    "parallel_accuracy": [s.accuracy for s in parallel_history],
    "single_accuracy": [s.accuracy for s in single_history],
    "max_weight_difference": max(
        float(np.max(np.abs(a - b))) for a, b in zip(parallel.get_weights(), single.get_weights())
    ),
    "replica_copies": [len(leaf) for leaf in copies],
    "replicas_identical": all(all(np.array_equal(leaf[0], c) for c in leaf[1:]) for leaf in copies),
    "optimizer_steps": int(parallel.optimizer.iterations.numpy()),
    "weights_device": [str(d) for d in parallel.trainable_variables[0].value.devices()],
}

# Shuffled, with dropout (seed state) and batch normalisation (float statistics) kept equal on the replicas.
replica_copies.clear()
noisy = mlp(extra=(keras.layers.BatchNormalization(), keras.layers.Dropout(0.1)))
noisy_history = fit_device_resident(noisy, x, y, batch_size=BATCH, epochs=4, seed=3, devices=devices)
_, eval_accuracy = noisy.evaluate(x, y, batch_size=BATCH, verbose=0)
copies = replica_copies[0]
report["shuffled"] = {
    "loss": [s.loss for s in noisy_history], "accuracy": [s.accuracy for s in noisy_history],
    "eval_accuracy": float(eval_accuracy),
    "replicas_identical": all(all(np.array_equal(leaf[0], c) for c in leaf[1:]) for leaf in copies),
    "moving_mean_changed": bool(np.any(noisy.layers[1].moving_mean.numpy() != 0)),
    "optimizer_steps": int(noisy.optimizer.iterations.numpy()),
}

errors = {}
for label, call in {
    "odd_batch": lambda: fit_device_resident(mlp(), x, y, batch_size=63, epochs=1, seed=0, devices=devices),
    "twice": lambda: fit_device_resident(mlp(), x, y, batch_size=BATCH, epochs=1, seed=0, devices=devices[:1] * 2),
    "unknown": lambda: jax_devices(["cpu:9"]),
}.items():
    try:
        call()
    except DeviceResidentError as error:
        errors[label] = str(error)
report["errors"] = errors
print("REPORT" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def parallel_report() -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", PARALLEL_CHECKS], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
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
    done = run_on_two_host_devices(["-c", SCALING_BENCHMARK_SCRIPT, *args], "jax", timeout_s=600)
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
