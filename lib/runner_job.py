"""One job as the job runner holds it, and what it turns into: events, a final state, runs, snapshots.

`RunnerJob` is the mutable state of one job inside `lib.runner.JobRunner`, only touched with the runner's
lock held. Its methods are the job's own logic, with no threads or processes: taking in a worker's event
(`apply_event`), deciding how the job ended from why it was stopped, its events and its worker's exit status
(`final_state`, `runs_at_end`), and the immutable copies handed out (`snapshot`, `board_entry`, `record`).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from lib.datasets import get_info
from lib.device_run import DeviceRun, ProgressEvent
from lib.job_records import RunLabels
from lib.jobs import (
    FINAL_STATES,
    BoardEntry,
    JobRecord,
    JobRequest,
    JobSnapshot,
    JobState,
    progress_event_from_dict,
    run_from_epoch_events,
)

if TYPE_CHECKING:  # lib.executor imports this module
    from lib.executor import Execution, WorkerExit

STDERR_TAIL_CHARS = 2000  # how much of a crashed worker's standard error is read for the reason
WORKER_INFO_EVENTS = ("started", "warm", "ready")  # the worker's events about itself, kept in `worker`
NAME_ANIMALS = (
    "Owl", "Fox", "Otter", "Heron", "Lynx", "Badger", "Falcon", "Panda", "Koala", "Tiger", "Whale", "Raven",
    "Gecko", "Bison", "Crane", "Hare", "Moose", "Newt", "Puffin", "Seal", "Swan", "Wolf", "Yak", "Zebra",
    "Bear", "Camel", "Dingo", "Eagle", "Ferret", "Gull", "Ibis", "Jaguar",
)  # fmt: skip
NAME_NUMBERS = 99  # anonymous names run from "Owl 1" to "Owl 99"


@dataclass
class RunnerJob:
    """A job's mutable state inside the runner."""

    id: str  # 12 random hex digits
    owners: list[str]  # sessions the job serves, the submitter first
    client: str  # who asked (a browser address): what the fair queue is fair between
    name: str  # anonymous name on the class board (`anonymous_name` of the submitter)
    request: JobRequest
    preset: str | None
    num_train: int  # training samples per epoch
    params: int  # trainable parameters
    backend: str  # Keras backend the worker runs on
    key: str  # what makes two requests the same run (`request_key`)
    estimated_duration_s: float
    submitted_at: float  # `time.time()` when it was accepted
    state: JobState = JobState.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    execution: Execution | None = None  # its worker, while it runs (`lib.executor`)
    machine: dict[str, Any] = field(default_factory=dict)  # where it ran: the cluster's node, once known
    stop_reason: JobState | None = None  # set when the runner asked the worker to stop
    stop_message: str = ""
    worker: dict[str, dict[str, Any]] = field(default_factory=dict)  # the worker's WORKER_INFO_EVENTS
    # Keyed by run (`RunPoint.key`): the device, or in a sweep the device and its batch size.
    progress: dict[str, ProgressEvent] = field(default_factory=dict)  # run -> latest event
    device_start: dict[str, float] = field(default_factory=dict)  # run -> elapsed_s of "device_start"
    epoch_events: dict[str, list[ProgressEvent]] = field(default_factory=dict)  # run -> "epoch" events
    results: dict[str, DeviceRun] = field(default_factory=dict)  # run -> result sent by the worker
    worker_error: str = ""  # message of the worker's "error" event
    detached: bool = False  # the server shut down and left it running on the cluster
    final_runs: tuple[DeviceRun, ...] = ()
    error: str = ""
    timers: list[threading.Timer] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state not in FINAL_STATES

    @property
    def labels(self) -> RunLabels:
        """What each of its stored runs carries besides the result."""
        return RunLabels(self.id, self.request.spec, self.preset, self.params, self.started_at)

    def apply_event(self, line: str) -> None:
        """Takes in one line of the worker's standard output; a line that is not an event is ignored."""
        try:
            event = json.loads(line)
        except ValueError:
            return  # not an event (the worker sends stray output to stderr, so this is rare)
        kind = event.get("type") if isinstance(event, dict) else None
        if kind in WORKER_INFO_EVENTS:
            self.worker[kind] = event
            self.backend = event.get("backend", self.backend)
            self.num_train = int(event.get("num_train", self.num_train))
        elif kind == "progress":
            self._apply_progress(progress_event_from_dict(event["event"]))
        elif kind == "result":
            run = DeviceRun.from_dict(event["run"])
            self.results[run.key] = run
        elif kind == "error":
            self.worker_error = str(event.get("message", "The worker reported an error."))

    def final_state(self, end: WorkerExit) -> tuple[JobState, str]:
        """Decides how the job ended from why it was stopped, its events and how its worker ended.

        Returns:
            The final state and its readable reason ("" when done).
        """
        if self.stop_reason is not None:
            return self.stop_reason, self.stop_message
        if self.worker_error:
            return JobState.FAILED, self.worker_error
        if end.lost:
            return JobState.FAILED, end.lost
        if end.stopped_elsewhere:
            return JobState.CANCELLED, "Stopped on the cluster (not from this app), before it finished."
        returncode, stderr_tail = end.returncode, end.output_tail
        if returncode is not None and returncode < 0:
            return JobState.FAILED, signal_reason(-returncode)
        if returncode:
            last_line = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no error output"
            return JobState.FAILED, f"The worker process exited with code {returncode}: {last_line}"
        missing = [point.key for point in self.request.points() if point.key not in self.results]
        if missing:
            return JobState.FAILED, f"The worker ended without a result for {', '.join(missing)}."
        failed = [run for run in self.results.values() if run.status != "done"]
        if failed:
            return JobState.FAILED, failed[0].error or f"Training on {failed[0].device} ended as {failed[0].status}."
        return JobState.DONE, ""

    def runs_at_end(self, state: JobState, error: str) -> tuple[DeviceRun, ...]:
        """One run per requested run (`JobRequest.points`): the worker's result, else what its finished epochs show."""
        runs = []
        for point in self.request.points():
            run = self.results.get(point.key)
            if run is not None:
                runs.append(run if run.status == "done" else replace(run, status=state.value, error=run.error or error))
                continue
            run = run_from_epoch_events(
                point.device,
                self.backend,
                synthetic=self.request.synthetic,
                num_train=self.num_train,
                epoch_events=self.epoch_events.get(point.key, []),
                status=state.value,
                error=error,
                start_elapsed_s=self.device_start.get(point.key, 0.0),
                sweep_batch=point.sweep_batch,
                repeat=point.repeat,
            )
            runs.append(run)
        return tuple(runs)

    def unstarted_runs(self, status: str, message: str) -> tuple[DeviceRun, ...]:
        """One empty run per requested run with this status: rows for a job that is starting or never started."""
        return tuple(
            DeviceRun(
                device=point.device,
                backend=self.backend,
                synthetic=self.request.synthetic,
                status=status,
                error=message,
                num_train=self.num_train,
                sweep_batch=point.sweep_batch,
                repeat=point.repeat,
            )
            for point in self.request.points()
        )

    def snapshot(self, position: int, estimated_start_s: float | None, viewer: str | None) -> JobSnapshot:
        """An immutable copy for one session (`viewer`), or for no one in particular (None: the submitter)."""
        return JobSnapshot(
            id=self.id,
            owner=viewer if viewer is not None else self.owners[0],
            state=self.state,
            position=position,
            request=self.request,
            preset=self.preset,
            submitted_at=self.submitted_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            estimated_start_s=0.0 if self.state == JobState.RUNNING else estimated_start_s,
            estimated_duration_s=self.estimated_duration_s,
            progress=MappingProxyType(dict(self.progress)),
            results=tuple(DeviceRun.from_dict(run.to_dict()) for run in self.final_runs),
            error=self.error,
            pid=self.execution.pid if self.execution is not None else None,
            hardware=MappingProxyType(self.hardware()),
            worker=MappingProxyType({key: dict(value) for key, value in self.worker.items()}),
            stop_requested=self.stop_reason is not None,
            requesters=len(self.owners),
            name=self.name,
        )

    def board_entry(self, position: int, estimated_start_s: float) -> BoardEntry:
        """What the class board shows of this job: no id, no owners."""
        spec = self.request.spec
        return BoardEntry(
            name=self.name,
            state=self.state,
            position=position,
            preset=self.preset,
            dataset=spec.dataset,
            hidden_units=tuple(spec.hidden_units),
            hidden_activation=spec.hidden_activation,
            batch_size=spec.batch_size,
            epochs=spec.epochs,
            samples=self.num_train,
            synthetic=self.request.synthetic,
            devices=self.request.devices,
            requesters=len(self.owners),
            estimated_start_s=estimated_start_s,
            estimated_duration_s=self.estimated_duration_s,
            started_at=self.started_at,
            progress=MappingProxyType(dict(self.progress)),
            batch_sizes=self.request.batch_sizes,
            repeats=self.request.repeats,
        )

    def record(self) -> JobRecord:
        """The job as the run store's jobs table keeps it (the durable queue)."""
        return JobRecord(
            job_id=self.id,
            seq=0,  # the store numbers jobs in submission order
            submitted_at=self.submitted_at,
            state=self.state,
            client=self.client,
            owners=tuple(self.owners),
            preset=self.preset,
            request=self.request,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=self.error,
        )

    def hardware(self) -> dict[str, Any]:
        """The machine it ran on: the worker's own description ("ready") and the cluster's name for it."""
        if self.execution is not None:
            self.machine = self.execution.machine() or self.machine
        return {**self.worker.get("ready", {}).get("hardware", {}), **self.machine}

    def _apply_progress(self, event: ProgressEvent) -> None:
        self.progress[event.key] = event
        if event.kind == "device_start":
            self.device_start[event.key] = event.elapsed_s
            self.epoch_events[event.key] = []
        elif event.kind == "epoch":
            self.epoch_events.setdefault(event.key, []).append(event)


def request_key(request: JobRequest, num_train: int, backend: str) -> str:
    """What makes two requests the same measurement: spec, devices, sweep, target, samples, data and backend.

    The sample counts are the ones trained and tested (no limit and a limit of the whole set are the same).
    """
    info = get_info(request.spec.dataset)
    num_test = info.num_test if request.test_limit is None else min(request.test_limit, info.num_test)
    return json.dumps(
        {
            "spec": request.spec.to_dict(),
            "devices": list(request.devices),
            "batch_sizes": list(request.batch_sizes),
            "target_accuracy": request.target_accuracy,
            "repeats": request.repeats,
            "num_train": num_train,
            "num_test": num_test,
            "synthetic": request.synthetic,
            "backend": backend,
        },
        sort_keys=True,
        default=str,
    )


def anonymous_name(owner: str) -> str:
    """The name a session's jobs have on the class board, e.g. "Owl 7": stable, and it reveals nothing of the id."""
    digest = hashlib.sha256(owner.encode("utf-8")).digest()
    animal = NAME_ANIMALS[int.from_bytes(digest[:4], "big") % len(NAME_ANIMALS)]
    return f"{animal} {int.from_bytes(digest[4:8], 'big') % NAME_NUMBERS + 1}"


def signal_reason(signum: int) -> str:
    """Why a worker ended by a signal, in words for the person who ran the job."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGKILL:
        return (
            "The worker process was killed (SIGKILL), most often because the machine ran out of memory; "
            "try a smaller model, batch size or sample count."
        )
    if signum == signal.SIGSEGV:
        return (
            "The worker process crashed (SIGSEGV, a segmentation fault in native code); "
            "try again, or use another backend."
        )
    return f"The worker process was ended by {name}."


def read_tail(stream: IO[bytes] | None) -> str:
    """The last `STDERR_TAIL_CHARS` of a worker's standard error file, which is then closed."""
    if stream is None:
        return ""
    try:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(stream.tell() - STDERR_TAIL_CHARS, 0))
        return stream.read().decode("utf-8", errors="replace")
    finally:
        stream.close()
