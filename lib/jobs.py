"""Training jobs as plain data: what was asked for, the job's state, and the errors a refused request raises.

`lib.runner.JobRunner` owns the queue and hands out `JobSnapshot`s (immutable copies) to the UI, so a
Streamlit rerun can read a job without locking anything. `JobRequest` is also what the runner sends to a
`lib.worker` process, as JSON on its standard input. `JobRecord` is a job as the run store keeps it
(the durable queue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from lib.device_run import DeviceRun, ProgressEvent, run_key
from lib.spec import ModelSpec

WORKER_PARENT_ENV = "GPUX_WORKER_PARENT_PID"  # the server's process id; the worker exits once it is gone


class JobState(StrEnum):
    """Where a job is in its life. All but QUEUED and RUNNING are final.

    INTERRUPTED means the server shut down (or restarted) before the job finished.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"


FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT, JobState.INTERRUPTED})


class JobError(Exception):
    """Base class of the errors the job runner raises; the message says what to do."""


class QueueFullError(JobError):
    """The server's queue holds its maximum number of jobs."""


class OwnerBusyError(JobError):
    """This browser session already has a job queued or running."""


class LimitError(JobError, ValueError):
    """A request goes over one of the server's limits (samples, devices, backend)."""


class JobNotFoundError(JobError, KeyError):
    """No job with this id is known to this runner."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Unknown job."


class RunnerClosedError(JobError):
    """The runner has been shut down and accepts no more jobs."""


SEEDS = 2**32  # seeds are 0 .. SEEDS - 1 (`lib.spec`); a repeat's seed wraps around


@dataclass(frozen=True)
class RunPoint:
    """One run of a job: a device; in a sweep the batch size it trains with; in a repeated job its number."""

    device: str  # normalised device name
    sweep_batch: int = 0  # the sweep's batch size for this run; 0 in an ordinary job (the spec's)
    repeat: int = 0  # the repeat's number, from 1, when the job repeats each device; 0 otherwise

    @property
    def key(self) -> str:
        """The run's name within its job (`lib.device_run.run_key`): "cpu:0", "cpu:0 @ 512", "cpu:0 #2"."""
        return run_key(self.device, self.sweep_batch, self.repeat)

    def spec(self, spec: ModelSpec) -> ModelSpec:
        """The job's spec as this run trains it: a sweep's batch size; a repeat's own seed (the spec's + n - 1).

        Repeats differ in their seed, as MLPerf's runs do, so their spread includes the training's own.
        """
        if self.sweep_batch:
            spec = replace(spec, batch_size=self.sweep_batch)
        if self.repeat > 1:
            spec = replace(spec, seed=(spec.seed + self.repeat - 1) % SEEDS)
        return spec


def run_points(devices: Sequence[str], batch_sizes: Sequence[int] = (), repeats: int = 1) -> tuple[RunPoint, ...]:
    """The runs of a job, in training order: each device, or each at each sweep batch size, or each repeat.

    Repeats go every device once, then every device again, and so on: drift over time hits all alike.

    Args:
        devices: The job's devices, in order.
        batch_sizes: A sweep's batch sizes, in order; empty for an ordinary job.
        repeats: Runs per device (a sweep has 1; `lib.requests` refuses both).
    """
    if batch_sizes:
        return tuple(RunPoint(device, size) for size in batch_sizes for device in devices)
    if repeats > 1:
        return tuple(RunPoint(device, repeat=number) for number in range(1, repeats + 1) for device in devices)
    return tuple(RunPoint(device) for device in devices)


@dataclass(frozen=True)
class JobRequest:
    """Everything a worker process needs to run one training job."""

    spec: ModelSpec  # model and training settings
    devices: tuple[str, ...]  # normalised device names, trained one after the other
    sample_limit: int | None = None  # training samples used (None: the whole training set)
    test_limit: int | None = None  # test samples evaluated (None: the whole test set)
    synthetic: bool = False  # generate random data of the dataset's shape instead of loading it
    backend: str | None = None  # Keras backend of the worker (None: the server's environment decides)
    batch_sizes: tuple[int, ...] = ()  # a sweep (`lib.sweep`): every device trains at each of these, ascending
    target_accuracy: float | None = None  # time to accuracy: each run stops once its test accuracy reaches this
    repeats: int = 1  # runs per device (`run_points`): the results show their median and spread

    @property
    def is_sweep(self) -> bool:
        """True for "Where does the GPU win?": the model at several batch sizes on each device."""
        return bool(self.batch_sizes)

    def points(self) -> tuple[RunPoint, ...]:
        """The runs the job trains, in order (`run_points`)."""
        return run_points(self.devices, self.batch_sizes, self.repeats)

    def to_worker_dict(self) -> dict[str, Any]:
        """Returns the request as the JSON-ready dict a worker reads on its standard input."""
        return {
            "spec": self.spec.to_dict(),
            "devices": list(self.devices),
            "sample_limit": self.sample_limit,
            "test_limit": self.test_limit,
            "synthetic": self.synthetic,
            "batch_sizes": list(self.batch_sizes),
            "target_accuracy": self.target_accuracy,
            "repeats": self.repeats,
        }

    @classmethod
    def from_worker_dict(cls, data: dict[str, Any]) -> JobRequest:
        """Builds a request from `to_worker_dict` output.

        Args:
            data: Plain data as written by `to_worker_dict`.

        Returns:
            The request; `backend` is None because a worker's backend comes from its environment.
        """
        return cls(
            spec=ModelSpec.from_dict(data["spec"]),
            devices=tuple(str(d) for d in data["devices"]),
            sample_limit=_optional_int(data.get("sample_limit")),
            test_limit=_optional_int(data.get("test_limit")),
            synthetic=bool(data.get("synthetic", False)),
            batch_sizes=tuple(int(size) for size in data.get("batch_sizes") or ()),
            target_accuracy=_optional_float(data.get("target_accuracy")),
            repeats=int(data.get("repeats") or 1),
        )

    def to_dict(self) -> dict[str, Any]:
        """Returns the whole request as JSON-ready plain data, `backend` included (for the run store)."""
        return {**self.to_worker_dict(), "backend": self.backend}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        """Builds a request from `to_dict` output, `backend` included.

        Args:
            data: Plain data as written by `to_dict`.

        Returns:
            The request; `backend` is None when `data` has none.
        """
        backend = data.get("backend")
        return replace(cls.from_worker_dict(data), backend=None if backend is None else str(backend))


@dataclass(frozen=True)
class JobRecord:
    """One job as the run store keeps it, so that a restarted server can re-queue it (the durable queue).

    Times are `time.time()` seconds since the epoch.
    """

    job_id: str  # the runner's job id, 12 hex digits
    seq: int  # submission order; 0 lets `RunStore.save_job` assign the next number
    submitted_at: float  # when the job was accepted
    state: JobState  # see JobState
    client: str  # who asked: the browser's address, else the owner (serving order is fair between clients)
    owners: tuple[str, ...]  # browser sessions the job serves, the submitter first
    preset: str | None  # preset name the spec came from, if any
    request: JobRequest  # what was asked for, backend included
    started_at: float | None = None  # when its worker was started
    finished_at: float | None = None  # when it reached a final state
    error: str = ""  # readable reason when the job did not finish


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of one job's state, taken under the runner's lock.

    Times are `time.time()` seconds since the epoch; durations are seconds.
    """

    id: str  # the job's id: 12 random hex digits, shown only to the sessions that own the job
    owner: str  # the session this snapshot was taken for (the submitter when taken for no one in particular)
    state: JobState  # see JobState
    position: int  # 1-based place among queued jobs; 0 once running or final
    request: JobRequest  # what was asked for
    preset: str | None  # preset name the spec came from, if any
    submitted_at: float  # when the job was accepted
    started_at: float | None  # when its worker was started
    finished_at: float | None  # when it reached a final state
    estimated_start_s: float | None  # seconds from now until it should start (0 when running, None when final)
    estimated_duration_s: float  # expected run time of the job, from past runs of similar size
    progress: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # run key -> ProgressEvent
    results: tuple[DeviceRun, ...] = ()  # one per run (`JobRequest.points`), in training order (set when final)
    error: str = ""  # readable reason when the job failed, was cancelled or timed out
    pid: int | None = None  # process id of the worker while it runs
    worker: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # "started"/"warm"/"ready" events
    stop_requested: bool = False  # a cancel, time limit or shutdown asked the running worker to stop
    requesters: int = 1  # browser sessions this one run serves (identical requests join one job)
    name: str = ""  # the job's anonymous name on the class board, e.g. "Owl 7"
    hardware: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # where it runs or ran

    @property
    def is_final(self) -> bool:
        """True once the job is done, failed, cancelled or timed out."""
        return self.state in FINAL_STATES

    def latest_progress(self, key: str) -> ProgressEvent | None:
        """Returns the newest progress event of one run (`RunPoint.key`: its device, in a sweep or a repeat more)."""
        return self.progress.get(key)


@dataclass(frozen=True)
class BoardEntry:
    """One job as the class board shows it to everyone: what it asks for, never who asked or its id."""

    name: str  # anonymous name derived from the first session that asked, e.g. "Owl 7"
    state: JobState  # QUEUED or RUNNING
    position: int  # 1-based place in serving order; 0 while running
    preset: str | None  # preset name the spec came from, if any
    dataset: str  # dataset name, "fashion_mnist"
    hidden_units: tuple[int, ...]  # units per hidden layer
    hidden_activation: str  # activation of the hidden layers
    batch_size: int  # samples per training step
    epochs: int  # epochs asked for
    samples: int  # training samples per epoch
    synthetic: bool  # generated data instead of the real dataset
    devices: tuple[str, ...]  # devices, trained one after the other
    requesters: int  # browser sessions this one run serves
    estimated_start_s: float | None  # seconds from now until it should start (0 while running)
    estimated_duration_s: float  # expected run time, seconds
    started_at: float | None = None  # `time.time()` when its worker started (None while queued)
    progress: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # run key -> ProgressEvent
    batch_sizes: tuple[int, ...] = ()  # a sweep's batch sizes (`lib.sweep`); empty for an ordinary job
    repeats: int = 1  # runs per device

    def points(self) -> tuple[RunPoint, ...]:
        """The job's runs, in training order (`run_points`); `progress` is keyed by their `key`."""
        return run_points(self.devices, self.batch_sizes, self.repeats)


@dataclass(frozen=True)
class BoardSnapshot:
    """What the class board shows everyone at one moment: the running jobs and the queue in serving order."""

    running: tuple[BoardEntry, ...]  # jobs training now, oldest first
    queued: tuple[BoardEntry, ...]  # jobs waiting, in the order they will be served
    taken_at: float  # `time.time()` when the snapshot was taken


def progress_event_from_dict(data: dict[str, Any]) -> ProgressEvent:
    """Builds a `ProgressEvent` from `ProgressEvent.to_dict` output, ignoring unknown keys."""
    known = {f.name for f in fields(ProgressEvent)}
    return ProgressEvent(**{k: v for k, v in data.items() if k in known})


def run_from_epoch_events(
    device: str,
    backend: str,
    *,
    synthetic: bool,
    num_train: int,
    epoch_events: Sequence[ProgressEvent],
    status: str,
    error: str = "",
    start_elapsed_s: float = 0.0,
    sweep_batch: int = 0,
    repeat: int = 0,
) -> DeviceRun:
    """Rebuilds the `DeviceRun` of a device whose worker ended before sending its result.

    The epochs that finished are kept: each epoch's time is the difference between the `elapsed_s` of
    consecutive "epoch" events (the first one counted from `start_elapsed_s`, the "device_start" event).

    Args:
        device: Normalised device name.
        backend: Keras backend of the worker.
        synthetic: Whether the data was generated.
        num_train: Training samples per epoch.
        epoch_events: The device's "epoch" progress events, in order.
        status: The run's status, e.g. "cancelled", "timed_out", "failed", "interrupted".
        error: The readable reason for the status.
        start_elapsed_s: `elapsed_s` of the device's "device_start" event.
        sweep_batch: A sweep point's batch size (0 in an ordinary job).
        repeat: A repeated run's number (0 when the job does not repeat).

    Returns:
        A run with the finished epochs' times, losses and accuracies; no test metrics.
    """
    marks = [start_elapsed_s, *(event.elapsed_s for event in epoch_events)]
    epoch_s = [max(later - earlier, 0.0) for earlier, later in zip(marks[:-1], marks[1:], strict=True)]
    run = DeviceRun(
        device=device,
        backend=backend,
        synthetic=synthetic,
        status=status,
        error=error,
        sweep_batch=sweep_batch,
        repeat=repeat,
    )
    run.num_train = num_train
    run.set_epoch_times(epoch_s)
    run.train_loss = [event.loss for event in epoch_events if event.loss is not None]
    run.train_accuracy = [event.accuracy for event in epoch_events if event.accuracy is not None]
    return run
