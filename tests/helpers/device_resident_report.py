"""Trains with the device-resident loop on tiny problems and prints what it saw as JSON.

Run as `KERAS_BACKEND=jax python -m tests.helpers.device_resident_report` (the loop needs JAX, and Keras fixes
its backend at import). Prints one line, "REPORT" followed by the JSON report that
tests/test_device_resident.py asserts on. The problems: a linear rule over 64 inputs, 4 classes; small MLPs;
a few epochs.
"""

from __future__ import annotations

import json

import jax
import keras
import numpy as np

from lib.device_resident import DeviceResidentError, fit_device_resident

NUM, FEATURES, CLASSES, BATCH = 1000, 64, 4, 64  # 1000 = 15 whole batches + a last batch of 40


def mlp(policy: str = "float32", loss: str = "sparse_categorical_crossentropy", seed: int = 0) -> keras.Model:
    """A small compiled MLP whose hidden layer uses `policy`; the same weights for the same seed."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation="relu", dtype=policy),
            keras.layers.Dense(CLASSES, activation="softmax", dtype="float32"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    return model


def compared_with_fit(x: np.ndarray, y: np.ndarray) -> dict:
    """The loop and model.fit(shuffle=False) on the same samples: their losses and accuracies per epoch."""
    resident = fit_device_resident(mlp(), x, y, batch_size=BATCH, epochs=3, seed=0, shuffle=False)
    fit = mlp().fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0).history
    return {
        "resident_loss": [s.loss for s in resident],
        "fit_loss": fit["loss"],
        "resident_accuracy": [s.accuracy for s in resident],
        "fit_accuracy": fit["accuracy"],
    }


def error_messages(x_float: np.ndarray, y: np.ndarray) -> dict[str, str]:
    """The messages of the loop's refusals: no samples, an uncompiled model, a distributed model."""
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
    with keras.distribution.DataParallel(devices=jax.devices("cpu")).scope():
        try:
            fit_device_resident(mlp(), x_float, y, batch_size=BATCH, epochs=1, seed=0)
        except DeviceResidentError as error:
            errors["distributed"] = str(error)
    return errors


def main() -> None:
    """Runs every check and prints the report."""
    rng = np.random.default_rng(0)
    x_uint8 = rng.integers(0, 256, (NUM, FEATURES), dtype=np.uint8)
    x_float = (x_uint8 / np.float32(255)).astype(np.float32)
    y = np.argmax(x_float @ rng.normal(size=(FEATURES, CLASSES)), axis=1).astype(np.uint8)
    report = {}

    # uint8 input scaled in the step, shuffled on the device.
    model = mlp()
    initial = [w.copy() for w in model.get_weights()]
    seen = []
    history = fit_device_resident(
        model,
        x_uint8,
        y,
        batch_size=BATCH,
        epochs=4,
        seed=0,
        input_scale=1 / 255,
        on_epoch_end=lambda epoch, stats: seen.append(epoch),
    )
    _, eval_accuracy = model.evaluate(x_float, y, batch_size=BATCH, verbose=0)
    report["uint8"] = {
        "loss": [s.loss for s in history],
        "accuracy": [s.accuracy for s in history],
        "seconds": [s.seconds for s in history],
        "callback_epochs": seen,
        "eval_accuracy": float(eval_accuracy),
        "weights_changed": any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights(), strict=True)),
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
    }

    # Same batches in the same order as model.fit(shuffle=False): the same float32 math.
    report["ordered"] = compared_with_fit(x_float[:960], y[:960])
    # Every sample trains: 1000 = 15 whole batches and a last one of 40, the steps model.fit(shuffle=False) takes.
    report["ragged"] = compared_with_fit(x_float, y)

    # Mixed precision (bfloat16 hidden layer, float32 output) with one-hot labels.
    one_hot = np.eye(CLASSES, dtype=np.float32)[y]
    mixed = mlp(policy="mixed_bfloat16", loss="categorical_crossentropy")
    mixed_history = fit_device_resident(mixed, x_float, one_hot, batch_size=BATCH, epochs=4, seed=1)
    report["mixed"] = {
        "loss": [s.loss for s in mixed_history],
        "accuracy": [s.accuracy for s in mixed_history],
        "hidden_kernel_dtype": str(mixed.layers[0].kernel.dtype),
    }

    # should_stop ends training between epochs; the epochs done are kept and written back.
    calls = []
    stopped = fit_device_resident(
        mlp(), x_float, y, batch_size=BATCH, epochs=5, seed=0, should_stop=lambda: calls.append(1) or len(calls) > 2
    )
    report["stopped_epochs"] = len(stopped)

    # Fewer samples than one batch make one smaller step, as in the engine.
    small = mlp()
    fit_device_resident(small, x_float[:10], y[:10], batch_size=BATCH, epochs=2, seed=0)
    report["small_steps"] = int(small.optimizer.iterations.numpy())

    # No samples, an uncompiled model and a distributed one are errors with a fix in the message.
    report["errors"] = error_messages(x_float, y)
    print("REPORT" + json.dumps(report))


if __name__ == "__main__":
    main()
