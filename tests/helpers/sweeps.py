"""Stored sweeps for tests: a finished "Where does the GPU win?" job written to a run store as the runner writes it.

Pages draw a sweep from the store (its job, with its batch sizes, and one run per device and batch size), so
a test can show a CPU and GPU sweep on a machine without a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from lib.device_run import DeviceRun
from lib.jobs import JobRecord, JobRequest, JobState
from lib.spec import ModelSpec
from lib.store import RunStore
from lib.sweep import sweep_spec

SWEEP_SAMPLES = 8192  # training samples of each stored point


def sweep_point(device: str, batch: int, samples_per_s: float) -> DeviceRun:
    """One finished point: a 2 s first epoch, then the epoch that gives `samples_per_s`."""
    run = DeviceRun(device, "jax", synthetic=False, num_train=SWEEP_SAMPLES, sweep_batch=batch)
    run.set_epoch_times([2.0, SWEEP_SAMPLES / samples_per_s])
    return run


def store_sweep(
    store: RunStore,
    spec: ModelSpec,
    throughput: Mapping[str, Mapping[int, float]],
    *,
    job_id: str = "5eeb5eeb5eeb",
    preset: str | None = None,
) -> None:
    """Stores a finished sweep: its job record and one run per (device, batch size).

    Args:
        store: The run store.
        spec: The model swept.
        throughput: Device -> batch size -> samples per second of the timed epoch.
        job_id: The sweep's job id.
        preset: The preset the spec came from, if any.
    """
    sizes = tuple(sorted({batch for by_batch in throughput.values() for batch in by_batch}))
    request = JobRequest(sweep_spec(spec, sizes), tuple(throughput), SWEEP_SAMPLES, 0, batch_sizes=sizes)
    store.save_job(JobRecord(job_id, 0, time.time(), JobState.DONE, "a", ("a",), preset, request))
    for device, by_batch in throughput.items():
        for batch, samples_per_s in by_batch.items():
            run = sweep_point(device, batch, samples_per_s)
            store.record(spec.with_changes(batch_size=batch), run, preset=preset, job_id=job_id)
