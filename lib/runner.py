"""The shared-server job runner: a FIFO queue of training jobs, each run in a fresh worker process.

When a class shares one Streamlit server, every click on Train becomes a job here. Jobs wait in a FIFO
queue and `max_concurrent` of them (default 1, so timings stay honest) run at a time, each in its own
`python -m lib.worker` process: the server never trains in a script thread, a huge model can only take
its own worker down, and the memory a job took (GPU memory included) is freed when its worker ends.

Threads inside one `JobRunner`:
- the supervisor starts queued jobs in order when a slot is free;
- one reader per running worker parses its events (progress, results, errors) and finishes the job;
- one writer owns every write to the run store, so results have a single writer; each job's rows are
  recorded as "running" when it starts and updated with the outcome when it ends, so a server that dies
  mid-job leaves rows that the next `JobRunner` on the same database marks "interrupted".

Every request is checked against the server limits (`lib.limits`) before it is queued, so a crafted
request cannot bypass the UI's sliders. Use one `JobRunner` per database and server process (the pages
keep one in `st.cache_resource`); all public methods are thread-safe and cheap enough for every rerun.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib.util
import json
import math
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

from lib.backend import BACKEND_PACKAGES, KNOWN_BACKENDS, BackendUnavailableError, backend_name, library_versions
from lib.datasets import get_info
from lib.devices import DeviceNotFoundError, normalize_device_name
from lib.hardware import describe_hardware
from lib.jobs import (
    FINAL_STATES,
    WORKER_PARENT_ENV,
    JobNotFoundError,
    JobRequest,
    JobSnapshot,
    JobState,
    LimitError,
    OwnerBusyError,
    QueueFullError,
    RunnerClosedError,
    progress_event_from_dict,
    run_from_epoch_events,
)
from lib.limits import LIMIT_ENV_VARS, ServerLimits
from lib.parallel import canonical_name, is_data_parallel
from lib.results import DeviceRun, ProgressEvent
from lib.spec import ModelSpec, count_params, validate_spec
from lib.store import RunStore

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_WORKER_COMMAND = (sys.executable, "-m", "lib.worker")  # run from the repository root
CANCEL_GRACE_S = 3.0  # after SIGTERM, seconds a worker gets to stop by itself before SIGKILL
DEFAULT_JOB_OVERHEAD_S = 8.0  # worker start, imports and data load, until this runner has timed some jobs
FALLBACK_S_PER_PARAM_SAMPLE = 1.5e-10  # training seconds per parameter x sample x epoch with no past runs
NEAREST_RUNS = 5  # past runs of the closest size used for a duration estimate
STDERR_TAIL_CHARS = 2000  # how much of a crashed worker's standard error is read for the reason
JOIN_TIMEOUT_S = 10.0  # how long shutdown waits for running workers to end
KEEP_FINISHED_JOBS = 1000  # finished jobs kept in memory for `get`; older ones are only in the store
PAST_RUNS_READ = 1000  # most recent finished runs read from the store for duration estimates


@dataclass
class _Job:
    """A job's mutable state; only touched with the runner's lock held."""

    id: str
    owner: str
    request: JobRequest
    preset: str | None
    num_train: int  # training samples per epoch
    params: int  # trainable parameters
    estimated_duration_s: float
    submitted_at: float
    state: JobState = JobState.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    process: subprocess.Popen | None = None
    stderr: IO[bytes] | None = None
    stop_reason: JobState | None = None  # set when the runner asked the worker to stop
    stop_message: str = ""
    backend: str = ""  # Keras backend the worker runs on
    worker: dict[str, Any] = field(default_factory=dict)  # the worker's "started" and "ready" events
    progress: dict[str, ProgressEvent] = field(default_factory=dict)  # device -> latest event
    device_start: dict[str, float] = field(default_factory=dict)  # device -> elapsed_s of "device_start"
    epoch_events: dict[str, list[ProgressEvent]] = field(default_factory=dict)  # device -> "epoch" events
    results: dict[str, DeviceRun] = field(default_factory=dict)  # device -> result sent by the worker
    worker_error: str = ""  # message of the worker's "error" event
    final_runs: tuple[DeviceRun, ...] = ()
    error: str = ""
    timers: list[threading.Timer] = field(default_factory=list)
    reader: threading.Thread | None = None


@dataclass(frozen=True)
class _PastRun:
    """One finished run of the store, reduced to what a duration estimate needs."""

    device: str
    backend: str
    log_size: float  # log of parameters x samples x epochs
    seconds_per_unit: float  # total_s / (parameters x samples x epochs)


class JobRunner:
    """Runs training jobs from many browser sessions one after the other in worker processes.

    Args:
        store: Where every outcome is recorded.
        limits: The server limits every request is checked against.
        max_concurrent: Jobs running at once; keep 1 so that timings stay honest.
        max_jobs_per_owner: Jobs one browser session may have queued or running at once.
        worker_command: The command that starts a worker; `python -m lib.worker` when None.
        env: Extra environment variables for every worker (on top of this process's environment).
        available_devices: Normalised device names jobs may ask for; any well-formed name when None
            (the worker then reports a missing device as a failure).
        cancel_grace_s: Seconds a worker gets to stop after SIGTERM before it is killed.
    """

    def __init__(
        self,
        store: RunStore,
        limits: ServerLimits,
        max_concurrent: int = 1,
        worker_command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        max_jobs_per_owner: int = 1,
        available_devices: Sequence[str] | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ):
        if max_concurrent < 1 or max_jobs_per_owner < 1:
            raise ValueError("max_concurrent and max_jobs_per_owner must be at least 1.")
        self.store = store
        self.limits = limits
        self.max_concurrent = max_concurrent
        self.max_jobs_per_owner = max_jobs_per_owner
        self.cancel_grace_s = cancel_grace_s
        self._worker_command = list(worker_command or DEFAULT_WORKER_COMMAND)
        self._worker_env = {**os.environ, **(env or {})}
        self._available_devices = None if available_devices is None else tuple(available_devices)
        self._hardware = describe_hardware()
        self._versions = library_versions()
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._closed = False
        self._overheads: dict[str, list[float]] = {}  # backend -> measured overhead seconds of this runner's jobs
        self._past_runs: tuple[_PastRun, ...] = ()
        self.interrupted_at_start = store.interrupt_running(
            "The server restarted while this job was running; it did not finish."
        )
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store-writer")
        self._writer.submit(self._refresh_past_runs).result()
        self._supervisor = threading.Thread(target=self._supervise, name="job-supervisor", daemon=True)
        self._supervisor.start()

    # --- public API ---

    def submit(
        self,
        owner: str,
        spec: ModelSpec,
        devices: Sequence[str],
        *,
        sample_limit: int | None = None,
        test_limit: int | None = None,
        synthetic: bool = False,
        preset: str | None = None,
        backend: str | None = None,
    ) -> JobSnapshot:
        """Checks a training request against the server limits and queues it.

        Args:
            owner: The browser session asking (one job at a time per owner by default).
            spec: What to train.
            devices: Devices to train on, one after the other ("cpu:0", "gpu:0").
            sample_limit: Training samples to use; None means the whole training set.
            test_limit: Test samples to evaluate; None means the whole test set.
            synthetic: Train on generated data of the dataset's shape instead of the real data.
            preset: The preset name the spec came from, stored with the runs.
            backend: Keras backend of the worker; None uses the server's (`KERAS_BACKEND`).

        Returns:
            A snapshot of the queued job (its id, position and estimated start).

        Raises:
            SpecError: The spec is invalid or over a limit (parameters, layers, units, epochs, batch size).
            LimitError: Too many training samples, or a bad sample count.
            DeviceNotFoundError: No devices, a malformed or repeated device name, or one this server lacks.
            BackendUnavailableError: The backend is unknown or not installed.
            OwnerBusyError: This owner already has a job queued or running.
            QueueFullError: The queue holds `limits.queue` jobs.
            RunnerClosedError: The runner has been shut down.
        """
        request = JobRequest(
            spec=spec,
            devices=self._check_devices(devices),
            sample_limit=sample_limit,
            test_limit=test_limit,
            synthetic=bool(synthetic),
            backend=backend,
        )
        num_train = check_request(request, self.limits)
        params = count_params(spec)
        job_backend = backend or backend_name(self._worker_env)
        with self._cond:
            self._check_capacity(owner)
            job = _Job(
                id=uuid.uuid4().hex[:12],
                owner=owner,
                request=request,
                preset=preset,
                num_train=num_train,
                params=params,
                estimated_duration_s=self._estimate_duration(request, params, num_train, job_backend),
                submitted_at=time.time(),
                backend=job_backend,
            )
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._cond.notify_all()
            return self._snapshot(job, self._eta_table(time.time()))

    def cancel(self, job_id: str, owner: str | None = None) -> JobSnapshot:
        """Cancels a job: a queued one leaves the queue, a running one's worker is ended.

        The job's runs are stored as "cancelled" with the epochs that finished. Cancelling a job that
        already ended changes nothing.

        Args:
            job_id: The job to cancel.
            owner: When given, only this owner's job can be cancelled.

        Returns:
            A snapshot after the request: final for a queued job; a running job becomes final once its
            worker has ended (see `wait`).

        Raises:
            JobNotFoundError: No such job (or it belongs to another owner).
        """
        with self._cond:
            job = self._find(job_id, owner)
            if job.state == JobState.QUEUED:
                self._queue.remove(job.id)
                message = "Cancelled before it started."
                self._set_final(job, JobState.CANCELLED, message, self._unstarted_runs(job, "cancelled", message))
                pending = True
            else:
                pending = False
                if job.state == JobState.RUNNING:
                    self._stop(job, JobState.CANCELLED, "Cancelled while running.")
        if pending:
            self._writer.submit(self._record_new, job).result()
        return self.get(job_id)

    def get(self, job_id: str) -> JobSnapshot:
        """Returns an immutable snapshot of one job.

        Raises:
            JobNotFoundError: No job has this id.
        """
        with self._cond:
            job = self._find(job_id, None)
            return self._snapshot(job, self._eta_table(time.time()))

    def jobs(self, owner: str | None = None) -> list[JobSnapshot]:
        """Returns snapshots of all jobs this runner knows (or one owner's), oldest first."""
        with self._cond:
            etas = self._eta_table(time.time())
            return [self._snapshot(job, etas) for job in self._jobs.values() if owner is None or job.owner == owner]

    def queue_length(self) -> int:
        """Returns how many jobs are queued or running: what `limits.queue` bounds."""
        with self._cond:
            return len(self._queue) + self._running_count()

    def estimated_wait_s(self) -> float:
        """Returns how long a job submitted now would wait before it starts, in seconds."""
        with self._cond:
            now = time.time()
            return _next_free_slot(self._slot_free_times(now), list(self._queued_durations()))

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobSnapshot:
        """Blocks until a job is final (or the timeout passes) and returns its snapshot.

        Raises:
            JobNotFoundError: No job has this id.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            job = self._find(job_id, None)
            while job.state not in FINAL_STATES:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._snapshot(job, self._eta_table(time.time()))

    def shutdown(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """Stops accepting jobs, records queued and running ones as interrupted, and ends every worker."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            message = "The server shut down before this job finished."
            queued = [self._jobs[job_id] for job_id in self._queue]
            self._queue.clear()
            for job in queued:
                self._set_final(job, JobState.INTERRUPTED, message, self._unstarted_runs(job, "interrupted", message))
            running = [job for job in self._jobs.values() if job.state == JobState.RUNNING]
            for job in running:
                self._stop(job, JobState.INTERRUPTED, message)
            self._cond.notify_all()
        for job in queued:
            self._writer.submit(self._record_new, job).result()
        for job in running:
            if job.reader is not None:
                job.reader.join(timeout_s)
        self._supervisor.join(timeout_s)
        self._writer.shutdown(wait=True)

    # --- checks ---

    def _check_devices(self, devices: Sequence[str]) -> tuple[str, ...]:
        if isinstance(devices, str) or not devices:
            raise DeviceNotFoundError("Choose at least one device to train on, e.g. ['cpu:0'].")
        names = []
        for device in devices:
            name = canonical_name(device) if is_data_parallel(device) else normalize_device_name(str(device))
            if name is None:
                raise DeviceNotFoundError(f"Device {device!r} is not a device name; use names such as 'cpu:0'.")
            if self._available_devices is not None and name not in self._available_devices:
                present = ", ".join(self._available_devices)
                raise DeviceNotFoundError(f"Device {device!r} is not present on this server. Choose from: {present}.")
            if name in names:
                raise DeviceNotFoundError(f"Device {name!r} is listed twice; list each device once.")
            names.append(name)
        return tuple(names)

    def _check_capacity(self, owner: str) -> None:
        if self._closed:
            raise RunnerClosedError("The server is shutting down and accepts no new jobs; try again after it restarts.")
        owned = [job for job in self._jobs.values() if job.owner == owner and job.state not in FINAL_STATES]
        if len(owned) >= self.max_jobs_per_owner:
            raise OwnerBusyError(
                f"You already have a job {owned[0].state.value} (job {owned[0].id}). "
                "Wait for it to finish or cancel it before starting another."
            )
        waiting = len(self._queue) + self._running_count()
        if waiting >= self.limits.queue:
            minutes = math.ceil(_next_free_slot(self._slot_free_times(time.time()), []) / 60)
            raise QueueFullError(
                f"The server's queue is full ({waiting} jobs; limit {self.limits.queue}, {LIMIT_ENV_VARS['queue']}). "
                f"Try again in about {minutes} minute{'s' if minutes != 1 else ''}."
            )

    # --- supervisor: start queued jobs in order ---

    def _supervise(self) -> None:
        with self._cond:
            while not self._closed:
                while self._queue and self._running_count() < self.max_concurrent:
                    self._start(self._jobs[self._queue.popleft()])
                self._cond.wait()

    def _running_count(self) -> int:
        return sum(1 for job in self._jobs.values() if job.state == JobState.RUNNING)

    def _start(self, job: _Job) -> None:
        job.state = JobState.RUNNING
        job.started_at = time.time()
        row_ids = self._writer.submit(self._record_running, job)
        env = {**self._worker_env, WORKER_PARENT_ENV: str(os.getpid())}
        if job.request.backend:
            env["KERAS_BACKEND"] = job.request.backend
        job.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _read_tail when the job ends)
        try:
            job.process = subprocess.Popen(
                self._worker_command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=job.stderr,
                cwd=REPO_ROOT,
                env=env,
                start_new_session=True,  # its own process group, so a cancel ends the worker and its children
                text=True,
                encoding="utf-8",
            )
        except OSError as error:
            job.worker_error = f"The worker process could not be started ({error}); check the server's Python."
            job.reader = threading.Thread(target=self._finish, args=(job, row_ids), daemon=True)
            job.reader.start()
            return
        job.reader = threading.Thread(target=self._read_worker, args=(job, row_ids), name=f"job-{job.id}", daemon=True)
        job.reader.start()
        timer = threading.Timer(self.limits.job_seconds, self._on_time_limit, args=(job,))
        timer.daemon = True
        timer.start()
        job.timers.append(timer)

    def _on_time_limit(self, job: _Job) -> None:
        with self._cond:
            if job.state == JobState.RUNNING:
                self._stop(
                    job,
                    JobState.TIMED_OUT,
                    f"Stopped at the server's time limit of {self.limits.job_seconds} s per job "
                    f"({LIMIT_ENV_VARS['job_seconds']}); use fewer epochs or samples, or a smaller model.",
                )

    def _stop(self, job: _Job, reason: JobState, message: str) -> None:
        """Asks a running worker to stop (SIGTERM), and kills it if it has not ended after the grace period."""
        if job.stop_reason is not None:
            return
        job.stop_reason = reason
        job.stop_message = message
        self._signal(job, signal.SIGTERM)
        timer = threading.Timer(self.cancel_grace_s, self._kill, args=(job,))
        timer.daemon = True
        timer.start()
        job.timers.append(timer)

    def _kill(self, job: _Job) -> None:
        with self._cond:
            self._signal(job, signal.SIGKILL)

    def _signal(self, job: _Job, signum: signal.Signals) -> None:
        process = job.process
        if process is None or process.returncode is not None or job.state != JobState.RUNNING:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    # --- reader: one thread per running worker ---

    def _read_worker(self, job: _Job, row_ids: Any) -> None:
        process = job.process
        try:
            process.stdin.write(json.dumps(job.request.to_worker_dict()))
            process.stdin.close()
        except OSError:
            pass  # the worker died before reading its job; its exit status tells why
        for line in process.stdout:
            self._on_line(job, line)
        process.wait()
        self._finish(job, row_ids)

    def _on_line(self, job: _Job, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # not an event (the worker sends stray output to stderr, so this is rare)
        kind = event.get("type") if isinstance(event, dict) else None
        with self._cond:
            if kind in ("started", "ready"):
                job.worker[kind] = event
                job.backend = event.get("backend", job.backend)
                job.num_train = int(event.get("num_train", job.num_train))
            elif kind == "progress":
                self._on_progress(job, progress_event_from_dict(event["event"]))
            elif kind == "result":
                run = DeviceRun.from_dict(event["run"])
                job.results[run.device] = run
            elif kind == "error":
                job.worker_error = str(event.get("message", "The worker reported an error."))
            self._cond.notify_all()

    @staticmethod
    def _on_progress(job: _Job, event: ProgressEvent) -> None:
        job.progress[event.device] = event
        if event.kind == "device_start":
            job.device_start[event.device] = event.elapsed_s
            job.epoch_events[event.device] = []
        elif event.kind == "epoch":
            job.epoch_events.setdefault(event.device, []).append(event)

    def _finish(self, job: _Job, row_ids: Any) -> None:
        stderr_tail = _read_tail(job.stderr)
        with self._cond:
            for timer in job.timers:
                timer.cancel()
            returncode = job.process.returncode if job.process is not None else None
            state, error = _final_state(job, returncode, stderr_tail)
            runs = self._final_runs(job, state, error)
        try:
            self._writer.submit(self._record_outcome, job, runs, row_ids).result()
        except Exception as store_error:  # the job still ends; say why its result is missing
            error = f"{error} The result could not be saved: {store_error}".strip()
        with self._cond:
            self._set_final(job, state, error, runs)
            self._note_overhead(job)
            if not self._closed:
                self._writer.submit(self._refresh_past_runs)

    def _final_runs(self, job: _Job, state: JobState, error: str) -> tuple[DeviceRun, ...]:
        """One run per requested device: the worker's result, else what its finished epochs show."""
        runs = []
        for device in job.request.devices:
            run = job.results.get(device)
            if run is not None:
                runs.append(run if run.status == "done" else replace(run, status=state.value, error=run.error or error))
                continue
            run = run_from_epoch_events(
                device,
                job.backend,
                synthetic=job.request.synthetic,
                num_train=job.num_train,
                epoch_events=job.epoch_events.get(device, []),
                status=state.value,
                error=error,
                start_elapsed_s=job.device_start.get(device, 0.0),
            )
            runs.append(run)
        return tuple(runs)

    def _unstarted_runs(self, job: _Job, status: str, message: str) -> tuple[DeviceRun, ...]:
        return tuple(
            DeviceRun(
                device=device,
                backend=job.backend,
                synthetic=job.request.synthetic,
                status=status,
                error=message,
                num_train=job.num_train,
            )
            for device in job.request.devices
        )

    def _set_final(self, job: _Job, state: JobState, error: str, runs: tuple[DeviceRun, ...]) -> None:
        job.state = state
        job.error = error
        job.final_runs = runs
        job.finished_at = time.time()
        job.process = None
        self._forget_old_jobs()
        self._cond.notify_all()

    def _forget_old_jobs(self) -> None:
        # A server runs for weeks: keep only the newest finished jobs in memory (all of them are in the store).
        finished = [job_id for job_id, job in self._jobs.items() if job.state in FINAL_STATES]
        for job_id in finished[: max(len(finished) - KEEP_FINISHED_JOBS, 0)]:
            del self._jobs[job_id]

    def _note_overhead(self, job: _Job) -> None:
        # Wall time of the job minus the training the worker timed: process start, imports, data, model build.
        trained = sum(run.total_s or 0.0 for run in job.final_runs)
        if job.state == JobState.DONE and job.started_at is not None:
            overhead = max(job.finished_at - job.started_at - trained, 0.0)
            self._overheads.setdefault(job.backend, []).append(overhead)

    # --- writer: the only thread that writes the store ---

    def _record_running(self, job: _Job) -> dict[str, int]:
        runs = self._unstarted_runs(job, "running", "")
        return {run.device: self._record(job, run) for run in runs}

    def _record_new(self, job: _Job) -> None:
        for run in job.final_runs:
            self._record(job, run)

    def _record_outcome(self, job: _Job, runs: tuple[DeviceRun, ...], row_ids: Any) -> None:
        ids = row_ids.result()
        for run in runs:
            run_id = ids.get(run.device)
            if run_id is None:
                self._record(job, run)
            else:
                self.store.update_status(run_id, run.status, error=run.error, run=run)

    def _record(self, job: _Job, run: DeviceRun) -> int:
        return self.store.record(
            job.request.spec,
            run,
            preset=job.preset,
            job_id=job.id,
            started_at=None if job.started_at is None else _utc(job.started_at),
            hardware=self._hardware,
            versions=self._versions,
            params=job.params,
        )

    def _refresh_past_runs(self) -> None:
        frame = self.store.runs(status="done", limit=PAST_RUNS_READ)
        past = []
        for row in frame.itertuples(index=False):
            size = _job_size(row.params, row.num_train, row.epochs)
            if size > 0 and row.total_s and row.total_s > 0 and len(row.epoch_s or []) == row.epochs:
                past.append(_PastRun(row.device, row.backend, math.log(size), row.total_s / size))
        with self._cond:
            self._past_runs = tuple(past)

    # --- estimates ---

    def _estimate_duration(self, request: JobRequest, params: int, num_train: int, backend: str) -> float:
        """Expected seconds for a job: this backend's measured overhead plus training scaled from past runs."""
        size = _job_size(params, num_train, request.spec.epochs)
        overheads = self._overheads.get(backend) or [x for values in self._overheads.values() for x in values]
        overhead = statistics.median(overheads[-20:]) if overheads else DEFAULT_JOB_OVERHEAD_S
        training = sum(size * self._seconds_per_unit(device, backend, size) for device in request.devices)
        return overhead + training

    def _seconds_per_unit(self, device: str, backend: str, size: float) -> float:
        same_device = [run for run in self._past_runs if run.device == device]
        same_backend = [run for run in same_device if run.backend == backend]
        candidates = same_backend or same_device or list(self._past_runs)
        if not candidates or size <= 0:
            return FALLBACK_S_PER_PARAM_SAMPLE
        log_size = math.log(size)
        nearest = sorted(candidates, key=lambda run: abs(run.log_size - log_size))[:NEAREST_RUNS]
        return statistics.median(run.seconds_per_unit for run in nearest)

    def _slot_free_times(self, now: float) -> list[float]:
        """Seconds from now until each worker slot is free, from the running jobs' estimates."""
        running = [job for job in self._jobs.values() if job.state == JobState.RUNNING]
        times = [max(job.estimated_duration_s - (now - job.started_at), 0.0) for job in running]
        return times + [0.0] * max(self.max_concurrent - len(times), 0)

    def _queued_durations(self) -> list[float]:
        return [self._jobs[job_id].estimated_duration_s for job_id in self._queue]

    def _eta_table(self, now: float) -> dict[str, float]:
        """Seconds from now until each queued job should start, slot by slot in FIFO order."""
        free = self._slot_free_times(now)
        heapq.heapify(free)
        etas = {}
        for job_id in self._queue:
            start = heapq.heappop(free)
            etas[job_id] = start
            heapq.heappush(free, start + self._jobs[job_id].estimated_duration_s)
        return etas

    # --- snapshots ---

    def _find(self, job_id: str, owner: str | None) -> _Job:
        job = self._jobs.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            raise JobNotFoundError(f"No job {job_id!r} for this session; it may belong to an earlier server run.")
        return job

    def _snapshot(self, job: _Job, etas: dict[str, float]) -> JobSnapshot:
        position = self._queue.index(job.id) + 1 if job.state == JobState.QUEUED else 0
        if job.state == JobState.QUEUED:
            estimated_start_s = etas.get(job.id)
        else:
            estimated_start_s = 0.0 if job.state == JobState.RUNNING else None
        return JobSnapshot(
            id=job.id,
            owner=job.owner,
            state=job.state,
            position=position,
            request=job.request,
            preset=job.preset,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            estimated_start_s=estimated_start_s,
            estimated_duration_s=job.estimated_duration_s,
            progress=MappingProxyType(dict(job.progress)),
            results=tuple(_copy_run(run) for run in job.final_runs),
            error=job.error,
            pid=job.process.pid if job.process is not None else None,
            worker=MappingProxyType({key: dict(value) for key, value in job.worker.items()}),
            stop_requested=job.stop_reason is not None,
        )


def check_request(request: JobRequest, limits: ServerLimits) -> int:
    """Checks a request against the server limits, as the server does before queueing it.

    Args:
        request: The request.
        limits: The limits in force.

    Returns:
        The training samples per epoch the job will use.

    Raises:
        SpecError: The spec is invalid or over a limit.
        LimitError: Bad or too many samples.
        BackendUnavailableError: The backend is unknown or not installed.
    """
    validate_spec(request.spec, limits)
    info = get_info(request.spec.dataset)
    for name, value in (("sample_limit", request.sample_limit), ("test_limit", request.test_limit)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise LimitError(f"{name}: {value!r} must be a whole number of 1 or more, or None for the whole set.")
    num_train = min(request.sample_limit or info.num_train, info.num_train)
    if num_train > limits.samples:
        raise LimitError(
            f"sample_limit: {num_train:,} training samples is over this server's limit of {limits.samples:,} "
            f"({LIMIT_ENV_VARS['samples']}); choose at most {limits.samples:,} samples."
        )
    check_backend(request.backend)
    return num_train


def check_backend(backend: str | None) -> None:
    """Checks that a requested Keras backend is known and installed (None: the server's default).

    Raises:
        BackendUnavailableError: The backend is unknown or its library is not installed.
    """
    if backend is None:
        return
    if backend not in KNOWN_BACKENDS:
        raise BackendUnavailableError(f"Unknown Keras backend {backend!r}; choose one of {', '.join(KNOWN_BACKENDS)}.")
    if importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
        raise BackendUnavailableError(
            f"The Keras backend {backend!r} is not installed on this server; install the "
            f"{BACKEND_PACKAGES[backend]!r} package or choose another backend."
        )


def _final_state(job: _Job, returncode: int | None, stderr_tail: str) -> tuple[JobState, str]:
    """Decides how a job ended from why it was stopped, its events and its worker's exit status."""
    if job.stop_reason is not None:
        return job.stop_reason, job.stop_message
    if job.worker_error:
        return JobState.FAILED, job.worker_error
    if returncode is not None and returncode < 0:
        return JobState.FAILED, _signal_reason(-returncode)
    if returncode:
        last_line = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no error output"
        return JobState.FAILED, f"The worker process exited with code {returncode}: {last_line}"
    missing = [device for device in job.request.devices if device not in job.results]
    if missing:
        return JobState.FAILED, f"The worker ended without a result for {', '.join(missing)}."
    failed = [run for run in job.results.values() if run.status != "done"]
    if failed:
        return JobState.FAILED, failed[0].error or f"Training on {failed[0].device} ended as {failed[0].status}."
    return JobState.DONE, ""


def _signal_reason(signum: int) -> str:
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


def _next_free_slot(free_times: list[float], queued_durations: list[float]) -> float:
    """Seconds until a job added after the queued ones would start."""
    heapq.heapify(free_times)
    for duration in queued_durations:
        heapq.heappush(free_times, heapq.heappop(free_times) + duration)
    return free_times[0] if free_times else 0.0


def _job_size(params: Any, num_train: Any, epochs: Any) -> float:
    try:
        size = float(params) * float(num_train) * float(epochs)
    except (TypeError, ValueError):
        return 0.0
    return size if math.isfinite(size) else 0.0


def _read_tail(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    try:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(stream.tell() - STDERR_TAIL_CHARS, 0))
        return stream.read().decode("utf-8", errors="replace")
    finally:
        stream.close()


def _copy_run(run: DeviceRun) -> DeviceRun:
    return DeviceRun.from_dict(run.to_dict())


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
