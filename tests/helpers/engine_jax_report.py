"""Trains through the engine on the JAX backend and prints the runs as one JSON line.

Run as `python -m tests.helpers.gpu_machine -m tests.helpers.engine_jax_report` with KERAS_BACKEND=jax:
TensorFlow is unimportable there, as on the GPU machine, which has only JAX. Reports two model.fit runs of
one spec, whether the built model compiles, and the device-resident loop's run, events and a stopped run.
"""

from __future__ import annotations

import dataclasses
import json

from lib.datasets import synthetic_dataset
from lib.engine import train_on_devices
from lib.model import build_model
from lib.spec import ModelSpec


def main() -> None:
    """Trains and prints the report."""
    spec = ModelSpec(hidden_units=(16,), batch_size=64, epochs=2, jit_compile=False)
    dataset = synthetic_dataset("fashion_mnist", 300, 100, seed=0)
    runs = train_on_devices(spec, dataset, ["cpu:0", "cpu:0"])
    jit = build_model(spec, (28, 28), 10).jit_compile

    # The device-resident loop: data on the device, one compiled call per epoch. Its data is marked real,
    # so the run predicts the test images after training (its confusion matrix and sample predictions).
    resident = spec.with_changes(device_resident=True, epochs=3)
    events = []
    labelled = dataclasses.replace(dataset, synthetic=False)
    resident_run = train_on_devices(resident, labelled, ["cpu:0"], progress=events.append)[0]
    seen = []
    stopped_run = train_on_devices(
        resident, dataset, ["cpu:0"], progress=seen.append, should_stop=lambda: any(e.kind == "epoch" for e in seen)
    )[0]
    report = {
        "runs": [run.to_dict() for run in runs],
        "jit": jit,
        "resident": resident_run.to_dict(),
        "resident_events": [event.kind for event in events],
        "stopped": stopped_run.to_dict(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
