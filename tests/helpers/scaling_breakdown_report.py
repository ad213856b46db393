"""Runs every mode of benchmarks/scaling_breakdown.py on a tiny MLP and prints the rows and two losses as JSON.

Run as `python -m tests.helpers.scaling_breakdown_report` with KERAS_BACKEND=jax and two forced host devices
(tests/conftest.py's `run_on_two_host_devices`). The losses are of the first layer in one piece and in blocks.
"""

from __future__ import annotations

import json

import jax
import numpy as np

from benchmarks import scaling_breakdown as breakdown


def main() -> None:
    """Measures each mode on two devices and computes the loss with the first layer in 1 and in 4 blocks."""
    breakdown.LAYERS, breakdown.NUM_SAMPLES = (64, 48, 32, 10), 256
    rows = {mode: breakdown.measure(mode, 64, 2, jax.devices("cpu")[:2]) for mode in breakdown.MODES}
    inputs = jax.numpy.asarray(np.random.default_rng(0).random((8, 64)), jax.numpy.float32)
    labels = jax.numpy.arange(8) % 10
    params = [breakdown._init_params(jax.random.key(0), blocks) for blocks in (1, 4)]
    losses = [float(breakdown._loss(weights, inputs, labels)) for weights in params]
    print(json.dumps({"rows": rows, "losses": losses}))


if __name__ == "__main__":
    main()
