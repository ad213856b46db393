"""What the job runner writes to the run store, on one writer thread, and what it reads back.

Two tables are written (`lib.store.RunStore`): the runs, one row per device of a job ("running" when the
job starts, updated with the outcome when it ends, so a server that dies mid-job leaves rows that the
next runner marks "interrupted"), and the jobs (the durable queue: every job on submit and on each
change of state or owners, so a restarted server can re-queue what was waiting).

Every write goes through `JobRecords`' single writer thread, in the order it was asked for, so a job's
"running" update can never overtake its "queued" row; each method returns a `Future`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lib.backend import library_versions
from lib.device_run import DeviceRun
from lib.hardware import describe_hardware
from lib.jobs import JobRecord, RunPoint
from lib.spec import ModelSpec
from lib.store import RunStore, StoreError

FINISHED_RUNS_READ = 1000  # most recent finished runs read back for time estimates


@dataclass(frozen=True)
class RunLabels:
    """What every stored run of one job carries besides its `DeviceRun`."""

    job_id: str
    spec: ModelSpec
    preset: str | None
    params: int  # trainable parameters
    started_at: float | None  # `time.time()` when the job's worker started


@dataclass(frozen=True)
class _Machine:
    """What a run's row says about where it ran."""

    hardware: dict[str, Any]
    versions: dict[str, str]


class JobRecords:
    """The runner's single writer to a run store.

    Args:
        store: The run store.
    """

    def __init__(self, store: RunStore):
        self.store = store
        self._hardware = describe_hardware()
        self._versions = library_versions()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store-writer")

    def save_job(self, record: JobRecord) -> Future[None]:
        """Writes a new job to the jobs table (or replaces it)."""
        return self._submit(self.store.save_job, record)

    def update_job(self, job_id: str, **changes: Any) -> Future[None]:
        """Changes a stored job: any of `state`, `owners`, `started_at`, `finished_at`, `error`."""
        return self._submit(self.store.update_job, job_id, **changes)

    def runs_started(self, labels: RunLabels, runs: tuple[DeviceRun, ...]) -> Future[dict[str, int]]:
        """Stores one "running" row per run; the future gives run key (`DeviceRun.key`) -> row id."""
        return self._submit(lambda: {run.key: self._record(labels, run) for run in runs})

    def runs_ended(
        self,
        labels: RunLabels,
        runs: tuple[DeviceRun, ...],
        row_ids: Future[dict[str, int]] | None = None,
        *,
        hardware: dict[str, Any] | None = None,
        versions: dict[str, str] | None = None,
    ) -> Future[None]:
        """Stores the outcome of each run: updates its "running" row, or adds a row when it has none.

        Args:
            labels: What every run of the job carries.
            runs: One outcome per device.
            row_ids: The job's "running" rows (run key -> row id), from `runs_started`.
            hardware: The machine the worker ran on, from its "ready" event; this server's when None.
            versions: The worker's library versions, from its "ready" event; this server's when None.
        """
        machine = _Machine(hardware or self._hardware, versions or self._versions)
        return self._submit(self._runs_ended, labels, runs, row_ids, machine)

    def finished_runs(self) -> Future[pd.DataFrame]:
        """Reads the most recent finished runs (for time estimates), after every write asked for before."""
        return self._submit(self.store.runs, status="done", limit=FINISHED_RUNS_READ)

    def call(self, function: Callable[[], Any]) -> Future[Any]:
        """Runs any other store access on the writer thread, in order with the writes."""
        return self._submit(function)

    def close(self) -> None:
        """Waits for the writes asked for so far, then ends the writer thread."""
        self._writer.shutdown(wait=True)

    def _submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queues a call on the writer thread; after `close`, a future that holds the refusal."""
        try:
            return self._writer.submit(function, *args, **kwargs)
        except RuntimeError as error:  # the writer has been closed (the runner shut down)
            refused: Future[Any] = Future()
            refused.set_exception(StoreError(f"The run store is closed: {error}."))
            return refused

    def _runs_ended(
        self,
        labels: RunLabels,
        runs: tuple[DeviceRun, ...],
        row_ids: Future[dict[str, int]] | None,
        machine: _Machine,
    ) -> None:
        ids: Mapping[str, int] = {} if row_ids is None else row_ids.result()
        for run in runs:
            run_id = ids.get(run.key)
            if run_id is None:
                self._record(labels, run, machine)
            else:
                self.store.update_status(
                    run_id, run.status, error=run.error, run=run, hardware=machine.hardware, versions=machine.versions
                )

    def _record(self, labels: RunLabels, run: DeviceRun, machine: _Machine | None = None) -> int:
        machine = machine or _Machine(self._hardware, self._versions)
        spec = RunPoint(run.device, run.sweep_batch, run.repeat).spec(labels.spec)  # a sweep's batch, a repeat's seed
        return self.store.record(
            spec,
            run,
            preset=labels.preset,
            job_id=labels.job_id,
            started_at=None if labels.started_at is None else datetime.fromtimestamp(labels.started_at, UTC),
            hardware=machine.hardware,
            versions=machine.versions,
            params=labels.params,
        )


def stored_results(store: RunStore, job_id: str) -> tuple[tuple[DeviceRun, ...], dict[str, Any]]:
    """The stored runs of one job as `DeviceRun`s (status and error as stored), oldest first, and its machine.

    Returns:
        The runs, and the hardware stored with the first of them ({} when it has none).
    """
    frame = store.runs(job_id=job_id)
    runs = []
    for result, status, error in zip(frame["result"], frame["status"], frame["error"], strict=True):
        run = DeviceRun.from_dict(result)
        run.status, run.error = status, error
        runs.append(run)
    hardware = frame["hardware"].iloc[0] if len(frame) else {}
    return tuple(runs), dict(hardware or {})
