"""What the class board and the Train page say about jobs, as plain data: progress, models and today's speedups.

The Train page also says where jobs run (`where_jobs_run`: this server, or a Ray cluster's machines) and,
when the cluster's head does not answer, that queued jobs are kept (`cluster_problem_text`).

The class board (`app_pages/board.py`) shows everyone the queue, the running job and the jobs that finished
today, read from the run store. Nothing here names a session or a job id: finished jobs are described by
what they trained (preset or model, dataset, samples, epochs) and how long each device took.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from lib.device_run import ProgressEvent
from lib.jobs import RunPoint
from lib.parallel import device_label

if TYPE_CHECKING:
    from lib.executor import ExecutorStatus, Machine


def progress_fraction(event: ProgressEvent) -> float:
    """How much of one device's training is done, from 0 to 1, after a progress event.

    Over a device's events as the worker sends them ("device_start", throttled "batch" events, one "epoch"
    event per finished epoch, "device_done" after the test) the fraction never goes down: a "device_done"
    counts its finished epochs plus, for a device stopped inside an epoch, the batches that epoch had
    dispatched (`lib.worker.ProgressRelay` adds them).

    Args:
        event: The device's latest progress event.
    """
    epochs = max(event.epochs, 1)
    within = min(event.batch / event.batches, 1.0) if event.batches else 0.0
    if event.kind == "epoch":
        done = event.epoch
    elif event.kind == "device_done":
        done = event.epoch + within
    else:  # "device_start", "batch": `epoch` is the epoch under way
        done = max(event.epoch - 1, 0) + within
    return min(max(done / epochs, 0.0), 1.0)


def progress_text(event: ProgressEvent) -> str:
    """Where one device's training is, in a few words; epochs count from 1 ("epoch 1/2" while the first trains).

    Args:
        event: The device's latest progress event.
    """
    epochs = max(event.epochs, 1)
    if event.kind == "device_done":
        if event.epochs == 0:  # a device the job never started (it was stopped first)
            return "not started"
        if event.epoch >= epochs:
            return f"all {epochs} epochs done"
        return f"stopped after {event.epoch} of {epochs} epochs"
    epoch = min(max(event.epoch, 1), epochs)
    if event.kind == "epoch":
        return f"epoch {epoch}/{epochs} done" + (", testing" if epoch == epochs else "")
    if event.kind == "device_start" or not event.batches:
        return f"epoch {epoch}/{epochs}, starting"
    return f"epoch {epoch}/{epochs}, batch {min(event.batch, event.batches):,}/{event.batches:,}"


def point_label(point: RunPoint) -> str:
    """One run of a job in words: "gpu:0"; in a sweep "gpu:0, batch 512"; a repeat "gpu:0, run 2"."""
    batch = f", batch {point.sweep_batch:,}" if point.sweep_batch else ""
    repeat = f", run {point.repeat}" if point.repeat else ""
    return f"{device_label(point.device)}{batch}{repeat}"


def model_text(hidden_units: Sequence[int], activation: str) -> str:
    """A model in a few words: "2 x Dense 512, relu" or "Dense 3,000 -> 1,000, relu".

    Args:
        hidden_units: Units per hidden layer.
        activation: Activation of the hidden layers.
    """
    widths = [int(width) for width in hidden_units]
    if not widths:
        return f"no hidden layer, {activation}"
    if len(set(widths)) == 1:
        return f"{len(widths)} x Dense {widths[0]:,}, {activation}"
    return "Dense " + " -> ".join(f"{width:,}" for width in widths) + f", {activation}"


def where_jobs_run(status: ExecutorStatus) -> str:
    """Where jobs run, in one sentence: "Jobs run on this server (host)." or a Ray cluster and its machines.

    Args:
        status: `lib.runner.JobRunner.executor_status()` (cached: cheap on every rerun).
    """
    if status.kind != "ray":
        names = ", ".join(machine.name for machine in status.machines)
        return f"Jobs run on this server ({names})." if names else "Jobs run on this server."
    where = f"Jobs run on a Ray cluster at {status.address}"
    count = len(status.machines)
    if not count:
        return f"{where}: no training machine has joined it yet, so jobs wait in the queue."
    machines = ", ".join(_machine_text(machine) for machine in status.machines)
    return f"{where}: {count} training machine{'s' if count != 1 else ''}, {machines}; one job per machine."


def cluster_problem_text(status: ExecutorStatus, queued: bool) -> str:
    """Why no job can start now and that queued jobs are kept; "" when nothing is wrong.

    Args:
        status: `lib.runner.JobRunner.executor_status()`.
        queued: The reader's own job is waiting in the queue.
    """
    if not status.problem:
        return ""
    kept = (
        "Your job stays in the queue and starts when the cluster answers again."
        if queued
        else "You can still press Train: your job waits in the queue and starts when the cluster answers again."
    )
    return f"{status.problem} {kept}"


def _machine_text(machine: Machine) -> str:
    gpus = f"{machine.gpus} GPU{'s' if machine.gpus != 1 else ''}" if machine.gpus else "no GPU"
    return f"{machine.name} ({gpus})"


@dataclass(frozen=True)
class DeviceTime:
    """How long one device took to train a job."""

    device: str  # normalised device name, "cpu:0", "gpu:all"
    total_s: float  # seconds of training, all epochs


@dataclass(frozen=True)
class FinishedJob:
    """One job that finished, as the class board lists it: what it trained and each device's time."""

    preset: str | None  # preset name the spec came from, if any
    dataset: str  # dataset name, "fashion_mnist"
    hidden_units: tuple[int, ...]  # units per hidden layer
    hidden_activation: str  # activation of the hidden layers
    samples: int  # training samples per epoch
    epochs: int  # epochs trained
    finished_at: datetime.datetime  # when its last run was stored (UTC)
    times: tuple[DeviceTime, ...]  # one per device that finished, fastest first
    sweep_batch: int = 0  # a sweep (several batch sizes): the one its times are of, its largest; 0 otherwise

    @property
    def fastest(self) -> DeviceTime:
        """The device that trained fastest."""
        return self.times[0]

    @property
    def slowest(self) -> DeviceTime:
        """The device that trained slowest."""
        return self.times[-1]

    @property
    def speedup(self) -> float | None:
        """Slowest device's time over the fastest's; None when only one device finished."""
        if len(self.times) < 2 or self.fastest.total_s <= 0:
            return None
        return self.slowest.total_s / self.fastest.total_s


FINISHED_COLUMNS = (
    "id",
    "job_id",
    "created_at",
    "status",
    "preset",
    "dataset",
    "device",
    "total_s",
    "num_train",
    "epochs",
    "hidden_units",
    "hidden_activation",
    "batch_size",
)


def finished_jobs(runs: pd.DataFrame) -> list[FinishedJob]:
    """Groups stored runs into finished jobs, newest first; runs that did not finish are left out.

    Args:
        runs: Stored runs, as `RunStore.runs()` returns them (needs the columns in `FINISHED_COLUMNS`).
            Runs without a job id (the command line's) each count as a job of their own.

    Returns:
        One entry per job with at least one finished run, the most recently finished first.
    """
    if runs.empty or not set(FINISHED_COLUMNS) <= set(runs.columns):
        return []
    done = runs[(runs["status"] == "done") & runs["total_s"].notna()]
    if done.empty:
        return []
    groups = [_job_key(row) for row in done.itertuples(index=False)]
    jobs = [_finished_job(frame) for _, frame in done.groupby(groups, sort=False)]
    return sorted(jobs, key=lambda job: job.finished_at, reverse=True)


def start_of_today(now: datetime.datetime | None = None) -> datetime.datetime:
    """Midnight of today on this server's clock, as an aware datetime (what "today" means on the board).

    Args:
        now: The time to take the day of; the current local time when None.
    """
    local = (now or datetime.datetime.now()).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _job_key(row: Any) -> str:
    job_id = row.job_id
    if isinstance(job_id, str) and job_id:
        return f"job:{job_id}"
    return f"run:{row.id}"


def _finished_job(frame: pd.DataFrame) -> FinishedJob:
    largest = frame["batch_size"].max()
    sweep = frame["batch_size"].nunique() > 1  # a sweep: its devices are compared at one batch size, its largest
    frame = frame[frame["batch_size"] == largest]
    first = frame.iloc[0]
    times = sorted(
        (DeviceTime(device=str(row.device), total_s=float(row.total_s)) for row in frame.itertuples(index=False)),
        key=lambda time: time.total_s,
    )
    preset = first["preset"]
    return FinishedJob(
        preset=preset if isinstance(preset, str) and preset else None,
        dataset=str(first["dataset"]),
        hidden_units=_units(first["hidden_units"]),
        hidden_activation=str(first["hidden_activation"]),
        samples=int(first["num_train"]),
        epochs=int(first["epochs"]),
        finished_at=pd.Timestamp(frame["created_at"].max()).to_pydatetime(),
        times=tuple(times),
        sweep_batch=int(largest) if sweep else 0,
    )


def _units(value: Any) -> tuple[int, ...]:
    """Units per hidden layer from a stored value (a list, or something unreadable)."""
    if isinstance(value, list | tuple):
        return tuple(int(width) for width in value if isinstance(width, int | float) and math.isfinite(width))
    return ()
