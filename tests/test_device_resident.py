"""Tests of the device-resident training loop (lib.device_resident).

The loop needs the JAX backend, and Keras fixes its backend at import, so the training checks run
once in a subprocess with KERAS_BACKEND=jax (JAX's CPU build is a dev dependency) and report their
findings as JSON; the tests below assert on that report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lib import device_resident
from tests.conftest import REPO_ROOT

# Tiny problems: a linear rule over 64 inputs, 4 classes; small MLPs; a few epochs.
JAX_CHECKS = r"""
import json
import numpy as np
import keras
from lib.device_resident import DeviceResidentError, fit_device_resident

rng = np.random.default_rng(0)
NUM, FEATURES, CLASSES, BATCH = 1000, 64, 4, 64  # 1000 = 15 whole batches + a last batch of 40
x_uint8 = rng.integers(0, 256, (NUM, FEATURES), dtype=np.uint8)
x_float = (x_uint8 / np.float32(255)).astype(np.float32)
y = np.argmax(x_float @ rng.normal(size=(FEATURES, CLASSES)), axis=1).astype(np.uint8)
report = {}


def mlp(policy="float32", loss="sparse_categorical_crossentropy", seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(32, activation="relu", dtype=policy),
        keras.layers.Dense(CLASSES, activation="softmax", dtype="float32"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    return model


# uint8 input scaled in the step, shuffled on the device.
model = mlp()
initial = [w.copy() for w in model.get_weights()]
seen = []
history = fit_device_resident(
    model, x_uint8, y, batch_size=BATCH, epochs=4, seed=0, input_scale=1 / 255,
    on_epoch_end=lambda epoch, stats: seen.append(epoch),
)
_, eval_accuracy = model.evaluate(x_float, y, batch_size=BATCH, verbose=0)
report["uint8"] = {
    "loss": [s.loss for s in history], "accuracy": [s.accuracy for s in history],
    "seconds": [s.seconds for s in history], "callback_epochs": seen,
    "eval_accuracy": float(eval_accuracy),
    "weights_changed": any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights())),
    "optimizer_steps": int(model.optimizer.iterations.numpy()),
}

# Same batches in the same order as model.fit(shuffle=False): the same float32 math.
ordered = fit_device_resident(mlp(), x_float[:960], y[:960], batch_size=BATCH, epochs=3, seed=0, shuffle=False)
reference_960 = mlp()
fit_960 = reference_960.fit(x_float[:960], y[:960], batch_size=BATCH, epochs=3, shuffle=False, verbose=0).history
report["ordered"] = {
    "resident_loss": [s.loss for s in ordered], "fit_loss": fit_960["loss"],
    "resident_accuracy": [s.accuracy for s in ordered], "fit_accuracy": fit_960["accuracy"],
}

# Every sample trains: 1000 = 15 whole batches and a last one of 40, the steps model.fit(shuffle=False) takes.
ragged = fit_device_resident(mlp(), x_float, y, batch_size=BATCH, epochs=3, seed=0, shuffle=False)
fit_1000 = mlp().fit(x_float, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0).history
report["ragged"] = {
    "resident_loss": [s.loss for s in ragged], "fit_loss": fit_1000["loss"],
    "resident_accuracy": [s.accuracy for s in ragged], "fit_accuracy": fit_1000["accuracy"],
}

# Mixed precision (bfloat16 hidden layer, float32 output) with one-hot labels.
one_hot = np.eye(CLASSES, dtype=np.float32)[y]
mixed = mlp(policy="mixed_bfloat16", loss="categorical_crossentropy")
mixed_history = fit_device_resident(mixed, x_float, one_hot, batch_size=BATCH, epochs=4, seed=1)
report["mixed"] = {
    "loss": [s.loss for s in mixed_history], "accuracy": [s.accuracy for s in mixed_history],
    "hidden_kernel_dtype": str(mixed.layers[0].kernel.dtype),
}

# should_stop ends training between epochs; the epochs done are kept and written back.
calls = []
stopped = fit_device_resident(
    mlp(), x_float, y, batch_size=BATCH, epochs=5, seed=0,
    should_stop=lambda: calls.append(1) or len(calls) > 2,
)
report["stopped_epochs"] = len(stopped)

# Fewer samples than one batch make one smaller step, as in the engine.
small = mlp()
fit_device_resident(small, x_float[:10], y[:10], batch_size=BATCH, epochs=2, seed=0)
report["small_steps"] = int(small.optimizer.iterations.numpy())

# No samples, and an uncompiled model, are errors with a fix in the message.
errors = {}
try:
    fit_device_resident(mlp(), x_float[:0], y[:0], batch_size=BATCH, epochs=1, seed=0)
except DeviceResidentError as error:
    errors["empty"] = str(error)
bare = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(CLASSES)])
try:
    fit_device_resident(bare, x_float, y, batch_size=BATCH, epochs=1, seed=0)
except DeviceResidentError as error:
    errors["uncompiled"] = str(error)

# A Keras distribution (data parallel) spreads the weights over devices: the loop refuses it.
import jax

with keras.distribution.DataParallel(devices=jax.devices("cpu")).scope():
    try:
        fit_device_resident(mlp(), x_float, y, batch_size=BATCH, epochs=1, seed=0)
    except DeviceResidentError as error:
        errors["distributed"] = str(error)
report["errors"] = errors
print("REPORT" + json.dumps(report))
"""


# The performance benchmarks as the GPU machine runs them: JAX, with TensorFlow, Streamlit and Altair
# unimportable; tiny sizes so that only the code paths are exercised.
BENCHMARK_RUNS = r"""
import json
import sys

for name in ("tensorflow", "streamlit", "altair"):
    sys.modules[name] = None

from benchmarks import ceilings, peers, presets

out = sys.argv[1]
codes = {
    "ceilings": ceilings.main(
        ["--devices", "cpu:0", "--backends", "jax", "--n", "256", "--repeats", "1", "--json", f"{out}/ceilings.json"]
    ),
    "presets": presets.main(
        ["--presets", "fashion-seed,fashion-tuned", "--samples", "1024", "--epochs", "2", "--synthetic",
         "--device-resident", "--spe", "4", "--test-samples", "64", "--ceiling-n", "256", "--profile",
         "--json", f"{out}/presets.json"]
    ),
    "peers": peers.main(
        ["--preset", "fashion-seed", "--batch-sizes", "64", "--samples", "256", "--epochs", "2", "--synthetic",
         "--peers", "engine,device-resident,keras-fit", "--json", f"{out}/peers.json"]
    ),
}
print("CODES" + json.dumps(codes))
"""


@pytest.fixture(scope="module")
def benchmark_outputs(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("benchmarks")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", BENCHMARK_RUNS, str(out)],
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
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", JAX_CHECKS], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
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
