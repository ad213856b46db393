"""Trains a tiny MLP on one CPU device and data parallel on two, and prints the runs as one JSON line.

Run as `python -m tests.helpers.parallel_training` with KERAS_BACKEND set (tests/conftest.py's
`run_on_two_host_devices`). It configures the devices before the backend starts: TensorFlow splits its CPU
into two logical devices here; JAX is told by XLA_FLAGS (set by the test) to show two host devices.
The same spec then asks for the device-resident loop, data parallel, with every batch event sent: the run
and the kinds of its progress events are reported on every backend (the loop exists on JAX only).
"""

from __future__ import annotations

import json
import os


def split_tensorflow_cpu() -> None:
    """Makes TensorFlow show its CPU as two logical devices (before anything starts its runtime)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def main() -> None:
    """Trains, then prints the resolved names, the replicas and the runs."""
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        split_tensorflow_cpu()
    from lib import engine
    from lib.datasets import synthetic_dataset
    from lib.devices import resolve_device
    from lib.parallel import replica_devices
    from lib.spec import ModelSpec

    spec = ModelSpec(
        hidden_units=(32,),
        optimizer="sgd",
        learning_rate=0.05,
        label_encoding="integer",
        batch_size=32,
        epochs=2,
        steps_per_execution=4,
        jit_compile=True,
    )
    dataset = synthetic_dataset("fashion_mnist", 320, 71, seed=1)
    runs = engine.train_on_devices(spec, dataset, ["cpu:0", "all-cpus"])
    # Every batch event is sent, so a run that trained through model.fit shows them.
    engine.BATCH_EVENT_INTERVAL_S = 0.0
    events = []
    resident = engine.train_on_devices(
        spec.with_changes(device_resident=True, epochs=3), dataset, ["all-cpus"], progress=events.append
    )
    report = {
        "resolved": resolve_device("CPU:ALL"),
        "replicas": replica_devices("cpu:all"),
        "runs": [run.to_dict() for run in runs],
        "resident": [run.to_dict() for run in resident],
        "resident_event_kinds": sorted({event.kind for event in events}),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
