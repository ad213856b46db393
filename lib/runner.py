"""The shared-server job runner: a fair queue of training jobs, each run in its own worker process.

When a class shares one Streamlit server, every click on Train becomes a job here. `max_concurrent` jobs
(default 1, so timings stay honest) run at a time, each in its own `python -m lib.worker` process: the
server never trains in a script thread, a huge model can only take its own worker down, and the memory a
job took (GPU memory included) is freed when its worker ends. A warm spare worker, Keras already
imported, takes the next job (`lib.worker_pool`).

What a job goes through, and which module does it:
- `lib.requests.check_request` checks the request against the server limits before it is queued, so a
  crafted request cannot bypass the UI's sliders.
- A request equal to a queued or running job's (same spec, devices, samples, data choice and backend)
  joins that job: one run, stored once, serves every session that asked (`JobSnapshot.requesters`).
- `lib.job_queue.FairQueue` decides the serving order: round-robin across clients (a browser's address),
  so one person with many tabs delays each other person by at most one job.
- `lib.estimates.estimate_request` gives each job's expected duration, hence the queue's waiting times.
- `lib.job_records.JobRecords` writes the run store on one writer thread: the runs of every job and the
  jobs themselves (the durable queue). A new `JobRunner` on the same database re-queues the jobs that were
  waiting, in order, and marks the one that was running "interrupted".

Threads inside one `JobRunner`: the supervisor starts queued jobs when a slot is free; one reader per
running worker parses its events (progress, results, errors) and finishes the job; the store's writer.
Use one `JobRunner` per database and server process (the pages keep one in `st.cache_resource`); all
public methods are thread-safe and cheap enough for every rerun.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace

import pandas as pd

from lib.backend import BackendUnavailableError, backend_name
from lib.datasets import get_info
from lib.device_run import DeviceRun
from lib.devices import DeviceNotFoundError
from lib.estimates import estimate_request, median_overhead
from lib.executor import (
    ClusterUnavailableError,
    Execution,
    Executor,
    ExecutorStatus,
    LocalExecutor,
    RunningJob,
    WorkerExit,
)
from lib.formatting import format_seconds
from lib.job_queue import FairQueue
from lib.job_records import JobRecords, stored_results
from lib.jobs import (
    FINAL_STATES,
    BoardSnapshot,
    JobNotFoundError,
    JobRecord,
    JobRequest,
    JobSnapshot,
    JobState,
    LimitError,
    OwnerBusyError,
    QueueFullError,
    RunnerClosedError,
)
from lib.limits import ServerLimits
from lib.links import refused_spec_problems
from lib.requests import check_devices, check_limits, check_request
from lib.runner_job import RunnerJob, anonymous_name, request_key
from lib.spec import ModelSpec, SpecError, count_params
from lib.store import RunStore, StoreError

# After SIGTERM, seconds a worker gets to stop by itself before SIGKILL. A training worker stops in 0.3-0.9 s
# (2 cores, TensorFlow); a cancel must end within 2 s there, and a killed worker's finished epochs are kept.
CANCEL_GRACE_S = 1.0
JOIN_TIMEOUT_S = 10.0  # how long shutdown waits for running workers to end
KEEP_FINISHED_JOBS = 1000  # finished jobs kept in memory for `get`; older ones are only in the store
JOB_ID_HEX_DIGITS = 12  # job ids: this many random lowercase hex digits
JOB_ID_PATTERN = re.compile(rf"[0-9a-f]{{{JOB_ID_HEX_DIGITS}}}")
PROBE_JOB_ID = ""  # a place-holder job, never a real id, to see where a new job would be served
RESTART_MESSAGE = "The server restarted while this job was running; it did not finish."
LOST_ON_RESTART_MESSAGE = (
    "The app restarted while this job was running, and the cluster no longer knows the job (its head may have "
    "restarted too); it did not finish."
)
CLUSTER_RETRY_S = 2.0  # how often a job waiting for an unreachable cluster head tries again
SHUTDOWN_MESSAGE = "The server shut down before this job finished."
NOT_FOUND_MESSAGE = "This job is not one of this session's jobs on this server; it may have ended before a restart."


class JobRunner:
    """Runs training jobs from many browser sessions in worker processes, fairly and durably.

    Args:
        store: Where every outcome (and the queue itself) is recorded.
        limits: The server limits every request is checked against.
        max_concurrent: Jobs running at once; keep 1 so that timings stay honest.
        worker_command: The command that starts a worker; `python -m lib.worker` when None.
        env: Extra environment variables for every worker (on top of this process's environment).
        max_jobs_per_owner: Jobs one browser session may have queued or running at once (joined ones count).
        available_devices: Normalised device names jobs may ask for, or a function returning them (the
            server's list becomes exact once the backend has been imported); any well-formed name when None
            (the worker then reports a missing device as a failure).
        cancel_grace_s: Seconds a worker gets to stop after SIGTERM before it is killed.
        warm_workers: Keep a spare worker with Keras imported for the next job; off starts each job cold.
        executor: Where workers run (`lib.executor`): a Ray cluster's `lib.ray_executor.RayExecutor`; this
            machine when None (`LocalExecutor` with `max_concurrent`, `worker_command`, `env`, `warm_workers`).
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
        available_devices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
        warm_workers: bool = True,
        executor: Executor | None = None,
    ):
        if max_concurrent < 1 or max_jobs_per_owner < 1:
            raise ValueError("max_concurrent and max_jobs_per_owner must be at least 1.")
        self.store = store
        self.limits = limits
        self.max_jobs_per_owner = max_jobs_per_owner
        self.cancel_grace_s = cancel_grace_s
        self._worker_env = {**os.environ, **(env or {})}
        # A KERAS_BACKEND given for the workers wins over this process's own (fixed once it imported Keras).
        self._default_backend = (env or {}).get("KERAS_BACKEND") or backend_name()
        self._available_devices = available_devices
        self.executor: Executor = executor or LocalExecutor(
            max_concurrent,
            worker_command,
            self._worker_env,
            default_backend=self._default_backend,
            warm_workers=warm_workers,
        )
        self._cond = threading.Condition()
        self._jobs: dict[str, RunnerJob] = {}
        self._queue = FairQueue()
        self._closed = False
        self._overheads: dict[str, list[float]] = {}  # backend -> measured overhead seconds of this runner's jobs
        self._records = JobRecords(store)
        self._finished_runs: pd.DataFrame = self._records.finished_runs().result()
        with self._cond:
            self.interrupted_at_start = self._restore()
        self.executor.all_idle()  # the first job finds a warm worker
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
        client: str | None = None,
        batch_sizes: Sequence[int] = (),
        target_accuracy: float | None = None,
        repeats: int = 1,
    ) -> JobSnapshot:
        """Checks a training request against the server limits and queues it, or joins an identical one.

        Args:
            owner: The browser session asking (one job at a time per owner by default).
            spec: What to train.
            devices: Devices to train on, one after the other ("cpu:0", "gpu:0", "gpu:all").
            sample_limit: Training samples to use; None means the whole training set.
            test_limit: Test samples to evaluate (0 skips the test); None means the whole test set.
            synthetic: Train on generated data of the dataset's shape instead of the real data.
            preset: The preset name the spec came from, stored with the runs.
            backend: Keras backend of the worker; None uses the server's (`KERAS_BACKEND`).
            client: Who is asking, for the fair queue: the browser's address; None means the owner.
            batch_sizes: A sweep (`lib.sweep`): each device trains at each of these batch sizes, in this order;
                empty for an ordinary job.
            target_accuracy: Time to accuracy (`lib.time_to_target`): each device stops once its test accuracy
                reaches this; None trains every epoch.
            repeats: Runs per device (each with its own seed): the results show their median and spread.

        Returns:
            A snapshot of the job for this owner: its id, position, estimated start and requesters.

        Raises:
            SpecError: The spec is invalid or over a limit (parameters, layers, units, epochs, batch size).
            LimitError: Too many training samples, a bad sample count, or a batch that does not split.
            DeviceNotFoundError: No devices, a malformed or repeated device name, or one this server lacks.
            BackendUnavailableError: The backend is unknown or not installed.
            OwnerBusyError: This owner already has a job queued or running.
            QueueFullError: The queue holds `limits.queue` jobs, or this client its `limits.jobs_per_client`.
            RunnerClosedError: The runner has been shut down.
        """
        available = self._device_list()
        request = JobRequest(
            spec=spec,
            devices=check_devices(devices, available),
            sample_limit=sample_limit,
            test_limit=test_limit,
            synthetic=bool(synthetic),
            backend=backend,
            batch_sizes=tuple(batch_sizes),
            target_accuracy=target_accuracy,
            repeats=repeats,
        )
        num_train = check_request(request, self.limits, available)
        backend = self._backend_of(request)
        estimated_duration_s = self._estimate(request, num_train, backend)  # outside the lock: it reads many runs
        with self._cond:
            self._check_open()
            self._check_owner_free(owner)
            job = self._joinable(request_key(request, num_train, backend))
            if job is not None:
                job.owners.append(owner)
                written = self._records.update_job(job.id, owners=tuple(job.owners))
            else:
                self._check_capacity(client or owner)
                record = JobRecord(
                    job_id=_new_job_id(),
                    seq=0,  # the store numbers jobs in submission order
                    submitted_at=time.time(),
                    state=JobState.QUEUED,
                    client=client or owner,
                    owners=(owner,),
                    preset=preset,
                    request=request,
                )
                job = self._job_of(record, num_train, estimated_duration_s)
                self._add_to_queue(job)
                written = self._records.save_job(job.record())
            snapshot = self._snapshot(job, owner)
        _wait_quietly(written)  # the job is in the store before the page hears it was accepted
        return snapshot

    def cancel(self, job_id: str, owner: str | None = None) -> JobSnapshot:
        """Cancels an owner's request: the job stops only when no other session still wants it.

        A job several sessions asked for drops `owner` and keeps running for the others; the last owner's
        cancel (or `owner=None`) cancels the job itself: a queued one leaves the queue, a running one's
        worker is ended, and its runs are stored as "cancelled" with the epochs that finished. Cancelling
        a job that already ended changes nothing.

        Args:
            job_id: The job to cancel.
            owner: The session asking; None (the server, tests) cancels for everyone.

        Returns:
            A snapshot after the request, for `owner`. When other sessions still own the job, it is not
            final and `owner` no longer owns it (its `requesters` counts the others); a cancelled queued job
            is final at once; a running one becomes final once its worker has ended (see `wait`).

        Raises:
            JobNotFoundError: No such job, or `owner` does not own it.
        """
        with self._cond:
            job = self._find(job_id, owner)
            if owner is not None and job.active and len(job.owners) > 1:
                job.owners.remove(owner)
                written = self._records.update_job(job.id, owners=tuple(job.owners))
                snapshot = self._snapshot(job, owner)
            else:
                written = self._cancel_for_everyone(job)
                snapshot = None
        _wait_quietly(written)
        return snapshot or self.get(job_id)

    def get(self, job_id: str, owner: str | None = None) -> JobSnapshot:
        """Returns an immutable snapshot of one job.

        Args:
            job_id: The job.
            owner: When given, only a job this session owns is returned.

        Raises:
            JobNotFoundError: No job has this id, or `owner` does not own it.
        """
        with self._cond:
            job = self._find(job_id, owner)
            return self._snapshot(job, owner)

    def adopt(self, job_id: str, owner: str) -> JobSnapshot:
        """Makes a session an owner of a job it has the id of (its link after a reload or a server restart).

        A job that ended before this server started is read back from the store, with its results.

        Args:
            job_id: The job's id, from the session's link.
            owner: The session.

        Returns:
            A snapshot of the job for `owner`.

        Raises:
            JobNotFoundError: No job has this id (here or in the store).
            OwnerBusyError: The job is still active and `owner` already has another active job.
        """
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
            raise JobNotFoundError(NOT_FOUND_MESSAGE)
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            job = self._job_from_store(job_id)
        with self._cond:
            job = self._jobs.setdefault(job.id, job)
            written = None
            if owner not in job.owners:
                if job.active:
                    self._check_owner_free(owner)
                job.owners.append(owner)
                written = self._records.update_job(job.id, owners=tuple(job.owners))
            snapshot = self._snapshot(job, owner)
        _wait_quietly(written)
        return snapshot

    def jobs(self, owner: str | None = None) -> list[JobSnapshot]:
        """Returns snapshots of all jobs this runner knows (or those one session owns), oldest first."""
        with self._cond:
            view = self._queue_view(time.time())
            return [
                self._snapshot(job, owner, view) for job in self._jobs.values() if owner is None or owner in job.owners
            ]

    def board(self) -> BoardSnapshot:
        """Returns what the class board shows everyone: running jobs and the queue, without ids or owners."""
        with self._cond:
            now = time.time()
            view = self._queue_view(now)
            running = [job for job in self._jobs.values() if job.state == JobState.RUNNING]
            return BoardSnapshot(
                running=tuple(job.board_entry(0, 0.0) for job in sorted(running, key=lambda job: job.started_at)),
                queued=tuple(self._jobs[job_id].board_entry(*place) for job_id, place in view.items()),
                taken_at=now,
            )

    def queue_length(self) -> int:
        """Returns how many jobs are queued or running: what `limits.queue` bounds."""
        with self._cond:
            return len(self._queue) + self._running_count()

    def estimated_wait_s(self, client: str | None = None) -> float:
        """Returns how long a new job would wait before it starts, in seconds.

        Args:
            client: Who would submit it; its place in the fair queue depends on who waits already. None
                assumes it would be served last.
        """
        with self._cond:
            if client is None:
                ahead = self._queue.order()
            else:
                queue = self._queue.copy()
                queue.push(PROBE_JOB_ID, client)
                order = queue.order()
                ahead = order[: order.index(PROBE_JOB_ID)]
            durations = [self._jobs[job_id].estimated_duration_s for job_id in ahead]
            return _next_free_slot(self._slot_free_times(time.time()), durations)

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobSnapshot:
        """Blocks until a job is final (or the timeout passes) and returns its snapshot.

        Raises:
            JobNotFoundError: No job has this id.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            job = self._find(job_id, None)
            while job.active:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._snapshot(job, None)

    def shutdown(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """Stops accepting jobs, ends every worker and records running jobs as interrupted.

        Queued jobs stay queued in the store: the next `JobRunner` on the same database runs them. On a
        cluster (`executor.keeps_jobs`) running jobs go on there, and the next `JobRunner` reattaches to them.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            running = [job for job in self._jobs.values() if job.state == JobState.RUNNING]
            for job in running:
                if self.executor.keeps_jobs:
                    self._detach(job)
                else:
                    self._stop(job, JobState.INTERRUPTED, SHUTDOWN_MESSAGE)
            self._cond.notify_all()
        for job in running:
            if job.reader is not None:
                job.reader.join(timeout_s)
        self._supervisor.join(timeout_s)
        self.executor.close()
        self._records.close()

    def executor_status(self) -> ExecutorStatus:
        """Where jobs run: this server, or the cluster's machines (and why none can start, when it says)."""
        return self.executor.status()

    # --- checks ---

    def _device_list(self) -> tuple[str, ...] | None:
        if self._available_devices is None:
            return self.executor.devices()
        devices = self._available_devices() if callable(self._available_devices) else self._available_devices
        return None if devices is None else tuple(devices)

    def _backend_of(self, request: JobRequest) -> str:
        return request.backend or self._default_backend

    def _check_open(self) -> None:
        if self._closed:
            raise RunnerClosedError("The server is shutting down and accepts no new jobs; try again after it restarts.")

    def _check_owner_free(self, owner: str) -> None:
        owned = [job for job in self._jobs.values() if job.active and owner in job.owners]
        if len(owned) >= self.max_jobs_per_owner:
            raise OwnerBusyError(
                f"You already have a job {owned[0].state.value}. Wait for it to finish or cancel it before "
                "starting another."
            )

    def _check_capacity(self, client: str) -> None:
        now = time.time()
        waiting = len(self._queue) + self._running_count()
        if waiting >= self.limits.queue:
            first_free = min(self._slot_free_times(now), default=0.0)
            raise QueueFullError(
                f"The queue is full: {waiting:,} jobs are waiting or running, the most this server takes. A place "
                f"should free up {_in_about(first_free)}; try again then."
            )
        cap = self.limits.jobs_per_client
        mine = [job for job in self._jobs.values() if job.active and job.client == client]
        if cap and len(mine) >= cap:
            first_done = min(self._finish_times(now)[job.id] for job in mine)
            raise QueueFullError(
                f"Your network address already has {len(mine):,} job{'s' if len(mine) != 1 else ''} waiting or "
                f"running, the most this server allows per address. Try again when one has finished, "
                f"{_in_about(first_done)}."
            )

    def _joinable(self, key: str) -> RunnerJob | None:
        """An active job asking for exactly this run, that nobody has asked to stop."""
        return next(
            (job for job in self._jobs.values() if job.active and job.key == key and job.stop_reason is None), None
        )

    # --- jobs in memory ---

    def _job_of(self, record: JobRecord, num_train: int, estimated_duration_s: float) -> RunnerJob:
        """The runner's job for a stored (or about to be stored) job record."""
        backend = self._backend_of(record.request)
        return RunnerJob(
            id=record.job_id,
            owners=list(record.owners),
            client=record.client,
            name=anonymous_name(record.owners[0]),
            request=record.request,
            preset=record.preset,
            num_train=num_train,
            params=count_params(record.request.spec),
            backend=backend,
            key=request_key(record.request, num_train, backend),
            estimated_duration_s=estimated_duration_s,
            submitted_at=record.submitted_at,
            state=record.state,
            started_at=record.started_at,
            finished_at=record.finished_at,
            error=record.error,
        )

    def _add_to_queue(self, job: RunnerJob) -> None:
        self._jobs[job.id] = job
        self._queue.push(job.id, job.client)
        self._cond.notify_all()

    def _cancel_for_everyone(self, job: RunnerJob) -> Future | None:
        """Cancels a queued or running job; returns the pending store write of a queued one."""
        if job.state == JobState.QUEUED:
            self._queue.remove(job.id)
            message = "Cancelled before it started."
            runs = job.unstarted_runs("cancelled", message)
            self._set_final(job, JobState.CANCELLED, message, runs, time.time())
            self._records.update_job(job.id, state=job.state, finished_at=job.finished_at, error=message)
            return self._records.runs_ended(job.labels, runs)
        if job.state == JobState.RUNNING:
            self._stop(job, JobState.CANCELLED, "Cancelled while running.")
        return None

    def _find(self, job_id: str, owner: str | None) -> RunnerJob:
        job = self._jobs.get(job_id)
        if job is None or (owner is not None and owner not in job.owners):
            raise JobNotFoundError(NOT_FOUND_MESSAGE)
        return job

    # --- the durable queue ---

    def _restore(self) -> int:
        """Takes over the jobs a previous server left: re-queues the waiting ones, interrupts the running ones.

        Returns:
            How many stored runs were marked interrupted.
        """
        records = self._records.call(self.store.unfinished_jobs).result()
        now = time.time()
        reattach = [record for record in records if record.state == JobState.RUNNING and self.executor.keeps_jobs]
        for record in records:
            if record.state == JobState.RUNNING and record not in reattach:
                self._records.update_job(
                    record.job_id, state=JobState.INTERRUPTED, finished_at=now, error=RESTART_MESSAGE
                )
        keep = tuple(record.job_id for record in reattach)
        interrupted = self._records.call(lambda: self.store.interrupt_running(RESTART_MESSAGE, keep_jobs=keep)).result()
        for record in records:
            try:
                if record in reattach:
                    self._reattach(record)
                elif record.state == JobState.RUNNING:
                    record = replace(record, state=JobState.INTERRUPTED, finished_at=now, error=RESTART_MESSAGE)
                    self._jobs[record.job_id] = self._ended_job(record, *stored_results(self.store, record.job_id))
                else:
                    self._requeue(record)
            except Exception as error:  # one unreadable job must not keep the server from starting
                message = f"This job could not be taken over after a server restart: {error}"
                self._records.update_job(record.job_id, state=JobState.FAILED, finished_at=now, error=message)
        return interrupted

    def _reattach(self, record: JobRecord) -> None:
        """Takes back a job an earlier server started on the cluster: its reader finds its worker there."""
        info = get_info(record.request.spec.dataset)
        num_train = min(record.request.sample_limit or info.num_train, info.num_train)
        estimated_duration_s = self._estimate(record.request, num_train, self._backend_of(record.request))
        job = self._job_of(record, num_train, estimated_duration_s)
        self._jobs[job.id] = job
        job.reader = threading.Thread(target=self._run_reattached, args=(job,), name=f"job-{job.id}", daemon=True)
        job.reader.start()
        self._start_time_limit(job, self.limits.job_seconds - (time.time() - (job.started_at or time.time())))

    def _requeue(self, record: JobRecord) -> None:
        try:
            num_train = check_limits(record.request, self.limits)
        except SpecError:  # its texts name fields and variables: say it in the pages' words
            self._refuse_after_restart(record, " ".join(refused_spec_problems(record.request.spec, self.limits)))
            return
        except (LimitError, DeviceNotFoundError, BackendUnavailableError) as error:
            self._refuse_after_restart(record, str(error))
            return
        estimated_duration_s = self._estimate(record.request, num_train, self._backend_of(record.request))
        self._add_to_queue(self._job_of(record, num_train, estimated_duration_s))

    def _refuse_after_restart(self, record: JobRecord, why: str) -> None:
        """Ends a job that waited through a restart and that the server's limits now refuse, saying why."""
        message = f"This job waited through a server restart, and the server's limits now refuse it: {why}"
        failed = replace(record, state=JobState.FAILED, finished_at=time.time(), error=message)
        self._records.update_job(failed.job_id, state=failed.state, finished_at=failed.finished_at, error=message)
        self._jobs[record.job_id] = self._ended_job(failed, ())

    def _job_from_store(self, job_id: str) -> RunnerJob:
        """A job that ended before this runner started, read back from the store."""
        try:
            record = self.store.job(job_id)
            results, hardware = ((), {}) if record is None else stored_results(self.store, job_id)
        except StoreError as error:
            raise JobNotFoundError(f"{NOT_FOUND_MESSAGE} ({error})") from error
        if record is None or record.state not in FINAL_STATES:
            raise JobNotFoundError(NOT_FOUND_MESSAGE)
        return self._ended_job(record, results, hardware)

    def _ended_job(self, record: JobRecord, results: tuple[DeviceRun, ...], hardware: dict | None = None) -> RunnerJob:
        """A final job from its record (and its stored runs' machine); its "estimate" is how long it took."""
        info = get_info(record.request.spec.dataset)
        num_train = min(record.request.sample_limit or info.num_train, info.num_train)
        took_s = (record.finished_at or 0.0) - (record.started_at or record.finished_at or 0.0)
        job = self._job_of(record, num_train, max(took_s, 0.0))
        job.final_runs = results
        job.machine = dict(hardware or {})
        return job

    # --- supervisor: start queued jobs in serving order ---

    def _supervise(self) -> None:
        with self._cond:
            while not self._closed:
                job_id = self._next_to_start()
                while job_id is not None:
                    self._queue.take(job_id)
                    self._start(self._jobs[job_id])
                    job_id = self._next_to_start()
                self._cond.wait(self.executor.poll_s)  # a cluster is looked at again: a machine may have joined

    def _next_to_start(self) -> str | None:
        """The job to start now, if any: the first in line when a free slot (or machine) fits it.

        A job waits for a machine that fits it, and the jobs behind it wait too: nobody is overtaken. Only a
        job that no machine of the cluster could run at all (a GPU job on a cluster without GPUs) lets the
        ones behind it go first, until such a machine joins.
        """
        running = self._running_jobs()
        for job_id in self._queue.order():
            request = self._jobs[job_id].request
            if self.executor.can_start(request, running):
                return job_id
            if self.executor.fits_any(request):
                return None
        return None

    def _running_jobs(self) -> list[RunningJob]:
        return [
            RunningJob(job.request, job.hardware().get("node_id", ""))
            for job in self._jobs.values()
            if job.state == JobState.RUNNING
        ]

    def _running_count(self) -> int:
        return sum(1 for job in self._jobs.values() if job.state == JobState.RUNNING)

    def _start(self, job: RunnerJob) -> None:
        """Marks a job running and hands it to its reader thread, which starts its worker (outside the lock)."""
        job.state = JobState.RUNNING
        job.started_at = time.time()
        self._records.update_job(job.id, state=JobState.RUNNING, started_at=job.started_at)
        job.reader = threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True)
        job.reader.start()
        self._start_time_limit(job, self.limits.job_seconds)

    def _start_time_limit(self, job: RunnerJob, seconds: float) -> None:
        timer = threading.Timer(max(seconds, 0.0), self._on_time_limit, args=(job,))
        timer.daemon = True
        timer.start()
        job.timers.append(timer)

    def _on_time_limit(self, job: RunnerJob) -> None:
        with self._cond:
            if job.state == JobState.RUNNING:
                self._stop(
                    job,
                    JobState.TIMED_OUT,
                    f"Stopped at the server's time limit of {format_seconds(self.limits.job_seconds)} per job; "
                    "use fewer epochs or samples, or a smaller model.",
                )

    def _stop(self, job: RunnerJob, reason: JobState, message: str) -> None:
        """Asks a running worker to stop (SIGTERM), and kills it if it has not ended after the grace period."""
        if job.stop_reason is not None:
            return
        job.stop_reason = reason
        job.stop_message = message
        if job.execution is not None:  # else its reader stops it as soon as it has started
            self._stop_execution(job)

    def _stop_execution(self, job: RunnerJob) -> None:
        job.execution.stop()
        timer = threading.Timer(self.cancel_grace_s, self._kill, args=(job,))
        timer.daemon = True
        timer.start()
        job.timers.append(timer)

    def _kill(self, job: RunnerJob) -> None:
        with self._cond:
            if job.execution is not None and job.state == JobState.RUNNING:
                job.execution.kill()

    def _detach(self, job: RunnerJob) -> None:
        """Leaves a running job to the cluster at shutdown: its reader stops reading, nothing is recorded."""
        job.detached = True
        for timer in job.timers:
            timer.cancel()
        if job.execution is not None:
            job.execution.detach()

    # --- reader: one thread per running job ---

    def _run(self, job: RunnerJob) -> None:
        """Starts the job's worker, then reads it to the end; a cluster that does not answer puts it back in line."""
        try:
            execution = self.executor.launch(job.id, job.request, job.backend)
        except ClusterUnavailableError:
            self._put_back(job)
            return
        except OSError as error:
            job.worker_error = f"The worker process could not be started ({error}); check the server's Python."
            with self._cond:
                row_ids = self._records.runs_started(job.labels, job.unstarted_runs("running", ""))
            self._finish(job, row_ids, WorkerExit(returncode=None))
            return
        with self._cond:
            job.execution = execution
            row_ids = self._records.runs_started(job.labels, job.unstarted_runs("running", ""))
            if job.stop_reason is not None:  # cancelled while its worker was starting
                self._stop_execution(job)
            self.executor.job_started()
        self._read(job, execution, row_ids)

    def _put_back(self, job: RunnerJob) -> None:
        """A job whose cluster could not be reached goes back to the front of the queue, as it was."""
        with self._cond:
            for timer in job.timers:
                timer.cancel()
            job.timers.clear()
            job.started_at = None
            if job.stop_reason is not None or self._closed:  # cancelled meanwhile: it never started
                message = job.stop_message or SHUTDOWN_MESSAGE
                job.state = JobState.QUEUED if self._closed else job.stop_reason
                if not self._closed:
                    runs = job.unstarted_runs("cancelled", message)
                    self._set_final(job, job.state, message, runs, time.time())
                    self._records.update_job(job.id, state=job.state, finished_at=job.finished_at, error=message)
                    self._records.runs_ended(job.labels, runs)
                else:
                    self._records.update_job(job.id, state=JobState.QUEUED, started_at=None)
                return
            job.state = JobState.QUEUED
            self._records.update_job(job.id, state=JobState.QUEUED, started_at=None)
            self._queue.put_back(job.id, job.client)
            self._cond.notify_all()

    def _run_reattached(self, job: RunnerJob) -> None:
        """Finds the worker of a job an earlier server started, and reads it from its first line."""
        execution = None
        while execution is None:
            try:
                execution = self.executor.reattach(job.id)
            except ClusterUnavailableError:
                with self._cond:
                    if self._closed:
                        return
                    self._cond.wait(CLUSTER_RETRY_S)
                continue
            if execution is None:
                job.stop_reason, job.stop_message = JobState.INTERRUPTED, LOST_ON_RESTART_MESSAGE
                self._finish(job, self._stored_row_ids(job.id), WorkerExit(returncode=None))
                return
        with self._cond:
            job.execution = execution
            if job.stop_reason is not None:
                self._stop_execution(job)
        self._read(job, execution, self._stored_row_ids(job.id))

    def _stored_row_ids(self, job_id: str) -> Future:
        """The store's "running" rows of a job an earlier server started: run key (`DeviceRun.key`) -> row id."""

        def read() -> dict[str, int]:
            frame = self.store.runs(job_id=job_id, status="running")
            keys = (DeviceRun.from_dict(result).key for result in frame["result"])
            return dict(zip(keys, (int(run_id) for run_id in frame["id"]), strict=True))

        return self._records.call(read)

    def _read(self, job: RunnerJob, execution: Execution, row_ids: Future) -> None:
        for line in execution.lines():
            self._on_line(job, line)
        if job.detached:
            return  # the server shut down; the job goes on on the cluster and the next server reattaches
        self._finish(job, row_ids, execution.wait())

    def _on_line(self, job: RunnerJob, line: str) -> None:
        with self._cond:
            job.apply_event(line)
            self._cond.notify_all()

    def _finish(self, job: RunnerJob, row_ids: Future, end: WorkerExit) -> None:
        with self._cond:
            for timer in job.timers:
                timer.cancel()
            state, error = job.final_state(end)
            runs = job.runs_at_end(state, error)
            hardware, versions = job.hardware(), job.worker.get("ready", {}).get("versions")
        finished_at = time.time()
        try:
            self._records.runs_ended(job.labels, runs, row_ids, hardware=hardware, versions=versions).result()
        except Exception as store_error:  # the job still ends; say why its result is missing
            error = f"{error} The result could not be saved: {store_error}".strip()
        _wait_quietly(self._records.update_job(job.id, state=state, finished_at=finished_at, error=error))
        with self._cond:
            self._set_final(job, state, error, runs, finished_at)
            self._note_overhead(job)
            if not self._closed:
                self._records.finished_runs().add_done_callback(self._on_finished_runs)
                if self._running_count() == 0:  # with few cores a spare imports only while nothing trains
                    self.executor.all_idle()

    def _set_final(
        self, job: RunnerJob, state: JobState, error: str, runs: tuple[DeviceRun, ...], finished_at: float
    ) -> None:
        """Marks a job final in memory (the caller writes the store first, or right after under the lock)."""
        job.state = state
        job.error = error
        job.final_runs = runs
        job.finished_at = finished_at
        job.execution = None
        self._forget_old_jobs()
        self._cond.notify_all()

    def _forget_old_jobs(self) -> None:
        # A server runs for weeks: keep only the newest finished jobs in memory (all of them are in the store).
        finished = [job_id for job_id, job in self._jobs.items() if not job.active]
        for job_id in finished[: max(len(finished) - KEEP_FINISHED_JOBS, 0)]:
            del self._jobs[job_id]

    # --- estimates ---

    def _note_overhead(self, job: RunnerJob) -> None:
        # Wall time of the job minus the training the worker timed: process start, imports, data, model build.
        trained = sum(run.total_s or 0.0 for run in job.final_runs)
        if job.state == JobState.DONE and job.started_at is not None:
            overhead = max(job.finished_at - job.started_at - trained, 0.0)
            self._overheads.setdefault(job.backend, []).append(overhead)

    def _on_finished_runs(self, future: Future) -> None:
        if future.exception() is None:
            with self._cond:
                self._finished_runs = future.result()

    def expected_overhead_s(self, backend: str | None = None) -> float:
        """Seconds a job of this backend spends outside training (worker, imports, data), as measured here.

        Args:
            backend: The Keras backend; the server's when None. Other backends' jobs count when it has none.
        """
        backend = backend or self._default_backend
        with self._cond:
            overheads = list(self._overheads.get(backend) or [x for values in self._overheads.values() for x in values])
        return median_overhead(overheads)

    def _estimate(self, request: JobRequest, num_train: int, backend: str) -> float:
        """Expected seconds for a job: the one estimator's training time plus this backend's measured overhead."""
        overhead_s = self.expected_overhead_s(backend)
        with self._cond:
            finished_runs = self._finished_runs
        return estimate_request(request, num_train, finished_runs, overhead_s=overhead_s, backend=backend).total_s

    def _slot_free_times(self, now: float) -> list[float]:
        """Seconds from now until each worker slot is free, from the running jobs' estimates."""
        running = [job for job in self._jobs.values() if job.state == JobState.RUNNING]
        times = [max(job.estimated_duration_s - (now - job.started_at), 0.0) for job in running]
        return times + [0.0] * max(self.executor.slots() - len(times), 0)

    def _queue_view(self, now: float) -> dict[str, tuple[int, float]]:
        """Each queued job's place in serving order (1-based) and seconds from now until it should start."""
        free = self._slot_free_times(now)
        heapq.heapify(free)
        view = {}
        for position, job_id in enumerate(self._queue.order(), start=1):
            start = heapq.heappop(free)
            view[job_id] = (position, start)
            heapq.heappush(free, start + self._jobs[job_id].estimated_duration_s)
        return view

    def _finish_times(self, now: float) -> dict[str, float]:
        """Seconds from now until each active job should end."""
        queued = self._queue_view(now).items()
        times = {job_id: start + self._jobs[job_id].estimated_duration_s for job_id, (_, start) in queued}
        for job in self._jobs.values():
            if job.state == JobState.RUNNING:
                times[job.id] = max(job.estimated_duration_s - (now - job.started_at), 0.0)
        return times

    # --- snapshots ---

    def _snapshot(
        self, job: RunnerJob, viewer: str | None, view: dict[str, tuple[int, float]] | None = None
    ) -> JobSnapshot:
        """A job's snapshot; the queue view (every queued job's place and start) is built only for a queued job."""
        if view is None:
            view = self._queue_view(time.time()) if job.state == JobState.QUEUED else {}
        position, estimated_start_s = view.get(job.id, (0, None))
        return job.snapshot(position, estimated_start_s, viewer)


# --- helpers ---


def _new_job_id() -> str:
    return secrets.token_hex(JOB_ID_HEX_DIGITS // 2)


def _wait_quietly(written: Future | None) -> None:
    """Waits for a store write; a failed one does not undo what the runner already did in memory."""
    if written is not None:
        with contextlib.suppress(Exception):
            written.result()


def _in_about(seconds: float) -> str:
    if seconds < 60:
        return "within a minute"
    minutes = math.ceil(seconds / 60)
    return f"in about {minutes} minute{'s' if minutes != 1 else ''}"


def _next_free_slot(free_times: list[float], queued_durations: list[float]) -> float:
    """Seconds until a job added after the queued ones would start."""
    heapq.heapify(free_times)
    for duration in queued_durations:
        heapq.heappush(free_times, heapq.heappop(free_times) + duration)
    return free_times[0] if free_times else 0.0
