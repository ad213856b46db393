"""Trains with the data-parallel device-resident loop on two host devices and prints what it saw as JSON.

Run as `python -m tests.helpers.device_resident_parallel_report` with KERAS_BACKEND=jax and
XLA_FLAGS=--xla_force_host_platform_device_count=2 (JAX fixes its device count at start-up). Prints one line,
"REPORT" followed by the JSON report that tests/test_device_resident_parallel.py asserts on.

1000 samples over 2 replicas: blocks of 500; global batch 64 = 32 per replica, 15 steps and a last one of 20.
"""

from __future__ import annotations

import json

import jax
import keras
import numpy as np

from lib import device_resident
from lib.device_resident import DeviceResidentError, fit_device_resident, jax_devices

NUM, FEATURES, CLASSES, BATCH, REPLICAS = 1000, 64, 4, 64, 2
PER, STEPS = BATCH // REPLICAS, (NUM // REPLICAS) // (BATCH // REPLICAS)


def mlp(extra: tuple = (), optimizer: str = "adam") -> keras.Model:
    """A small compiled MLP, the same weights every time."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation="relu"),
            *extra,
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    # SGD's step is proportional to the gradient, so gradients summed instead of averaged would show.
    chosen = keras.optimizers.Adam(0.01) if optimizer == "adam" else keras.optimizers.SGD(0.1)
    model.compile(optimizer=chosen, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def record_replica_copies() -> list:
    """Records the replicated state handed to the write-back (one copy per device); returns the record."""
    replica_copies = []
    original_write_back = device_resident._write_back

    def recording_write_back(model, state, device):
        leaves = jax.tree.leaves(state)
        replica_copies.append([[np.asarray(shard.data) for shard in leaf.addressable_shards] for leaf in leaves])
        original_write_back(model, state, device)

    device_resident._write_back = recording_write_back
    return replica_copies


def identical(copies: list) -> bool:
    """Whether every replica holds the same copy of every state leaf."""
    return all(all(np.array_equal(leaf[0], copy) for copy in leaf[1:]) for leaf in copies)


def main() -> None:
    """Runs every check and prints the report."""
    rng = np.random.default_rng(0)
    x = rng.random((NUM, FEATURES), dtype=np.float32)
    y = np.argmax(x @ rng.normal(size=(FEATURES, CLASSES)), axis=1).astype(np.int32)
    devices = jax_devices(["cpu:0", "cpu:1"])
    report = {"device_count": len(jax.devices("cpu")), "devices": [str(d) for d in devices]}
    replica_copies = record_replica_copies()

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
        "parallel_loss": [s.loss for s in parallel_history],
        "single_loss": [s.loss for s in single_history],
        "parallel_accuracy": [s.accuracy for s in parallel_history],
        "single_accuracy": [s.accuracy for s in single_history],
        "max_weight_difference": max(
            float(np.max(np.abs(a - b))) for a, b in zip(parallel.get_weights(), single.get_weights(), strict=True)
        ),
        "replica_copies": [len(leaf) for leaf in copies],
        "replicas_identical": identical(copies),
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
        "loss": [s.loss for s in noisy_history],
        "accuracy": [s.accuracy for s in noisy_history],
        "eval_accuracy": float(eval_accuracy),
        "replicas_identical": identical(copies),
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


if __name__ == "__main__":
    main()
