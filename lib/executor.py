"""Where a job's worker runs: processes on this machine (`LocalExecutor`) or a Ray cluster (`lib.ray_executor`).

`lib.runner.JobRunner` keeps the queue, the store, the estimates and every job's state; an executor only
starts a job's worker somewhere and hands back its output. Both run the same worker (`python -m lib.worker`)
with the same JSON-lines events, so everything the runner promises holds on either:

    executor = cluster_executor(os.environ) or LocalExecutor(default_backend="jax")  # Ray when GPUX_RAY_ADDRESS
    if executor.can_start(request, running):               # a free worker slot (here) or machine (a cluster)
        execution = executor.launch(job_id, request, backend)
        for line in execution.lines(): ...                 # the worker's standard output, a line at a time
        end = execution.wait()                             # exit code, output tail, or the machine lost
    execution.stop()                                       # a cancel: SIGTERM, the worker keeps finished epochs

With `GPUX_RAY_ADDRESS` unset nothing here imports Ray.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lib.hardware import usable_cores
from lib.jobs import JobRequest
from lib.runner_job import read_tail
from lib.worker_pool import DEFAULT_WORKER_COMMAND, REPO_ROOT, WorkerPool, WorkerProcess

RAY_ADDRESS_ENV = "GPUX_RAY_ADDRESS"  # server setting: the Ray head's dashboard address; unset runs jobs here
# On a server with this many cores the next spare imports while a job trains (its one import thread took no
# measurable time from a job on a 16-core host); on fewer, it waits until nothing trains: on 2 cores it slowed
# a running job by 20-26 % (BENCHMARKS.md, "Warm worker").
SPARE_BESIDE_JOB_MIN_CORES = 8


class ClusterUnavailableError(RuntimeError):
    """The cluster cannot take a job now (its head does not answer); the job waits in the queue."""


@dataclass(frozen=True)
class WorkerExit:
    """How a worker ended, as far as its executor can tell."""

    returncode: int | None  # the process's exit status (negative: the signal); None when unknown
    output_tail: str = ""  # the end of what it wrote besides events (standard error), for a crash's reason
    lost: str = ""  # not empty: the machine or the cluster was lost mid-job, in words (the job failed)
    stopped_elsewhere: bool = False  # the cluster stopped it, not this runner (e.g. `ray job stop`)


@dataclass(frozen=True)
class Machine:
    """One machine that takes jobs: this server, or a node of the Ray cluster."""

    name: str  # what people see: the node's name, else its address or host name
    node_id: str = ""  # the cluster's id of the node ("" here)
    address: str = ""  # its network address ("" here)
    gpus: int = 0  # GPUs the cluster counts on it


@dataclass(frozen=True)
class ExecutorStatus:
    """What the Train page and the CLI say about where jobs run."""

    kind: str  # "local" or "ray"
    address: str = ""  # the Ray head's address
    machines: tuple[Machine, ...] = ()
    problem: str = ""  # not empty: why no job can start now (the head does not answer), in words
    checked_at: float | None = None  # `time.time()` of the last look at the cluster


@dataclass(frozen=True)
class RunningJob:
    """What an executor needs to know of a job that is running, to decide whether the next one fits."""

    request: JobRequest
    machine: str = ""  # the node id it runs on, once known


class Execution(Protocol):
    """One started worker."""

    warm: bool  # it was a spare, its imports already done

    @property
    def pid(self) -> int | None:
        """Its process id on this machine; None on a cluster."""

    def lines(self) -> Iterator[str]:
        """Its standard output, a line at a time, from the start; ends when the worker has ended."""

    def wait(self) -> WorkerExit:
        """Blocks until the worker has ended and says how (call after `lines` has ended)."""

    def stop(self) -> None:
        """Asks the worker to stop (SIGTERM): it keeps the epochs that finished."""

    def kill(self) -> None:
        """Ends a worker that did not stop after `stop` (SIGKILL)."""

    def detach(self) -> None:
        """Stops following a worker that goes on without this server: `lines` ends soon after."""

    def machine(self) -> dict[str, Any]:
        """Where it runs, once known: {"name", "node_id", "address"} on a cluster; {} here."""


class Executor(Protocol):
    """Starts workers for the runner's jobs."""

    kind: str  # "local" or "ray"
    keeps_jobs: bool  # running jobs go on when the server stops, and the next server reattaches to them
    poll_s: float | None  # how often the runner asks `can_start` again by itself (None: only when told)

    def slots(self) -> int:
        """How many jobs can run at once (for waiting-time estimates): worker slots, or machines."""

    def can_start(self, request: JobRequest, running: Sequence[RunningJob]) -> bool:
        """Whether the next job in line can start now, beside the jobs already running."""

    def fits_any(self, request: JobRequest) -> bool:
        """Whether any machine, busy or not, could run the job (False: the jobs behind it may go first)."""

    def launch(self, job_id: str, request: JobRequest, backend: str) -> Execution:
        """Starts the job's worker.

        Raises:
            ClusterUnavailableError: The cluster cannot be reached; the job should wait.
            OSError: No worker could be started here.
        """

    def reattach(self, job_id: str) -> Execution | None:
        """The worker of a job an earlier server started, when it still runs or its output is still kept."""

    def devices(self) -> tuple[str, ...] | None:
        """Device names jobs may ask for, or None when unknown (the runner then takes any well-formed name)."""

    def job_started(self) -> None:
        """Called after a job started (a local executor may warm the next worker)."""

    def all_idle(self) -> None:
        """Called when no job is running (a local executor warms the next worker)."""

    def status(self) -> ExecutorStatus:
        """Where jobs run, for people."""

    def close(self) -> None:
        """Ends what the executor started for itself (spare workers, threads); running jobs are the runner's."""


# --- this machine ---


@dataclass
class LocalExecution:
    """A worker process on this machine, its job written to its standard input."""

    process: WorkerProcess
    request_json: str
    warm: bool = False

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.popen.pid

    def lines(self) -> Iterator[str]:
        """Writes the job to the worker's standard input, then yields its standard output's lines."""
        popen = self.process.popen
        try:
            popen.stdin.write(self.request_json)
            popen.stdin.close()
        except OSError:
            pass  # the worker died before reading its job; its exit status tells why
        yield from popen.stdout

    def wait(self) -> WorkerExit:
        """Waits for the process; its exit status and the tail of its standard error."""
        returncode = self.process.popen.wait()
        return WorkerExit(returncode=returncode, output_tail=read_tail(self.process.stderr))

    def stop(self) -> None:
        """SIGTERM to the worker's process group."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the worker's process group."""
        self._signal(signal.SIGKILL)

    def machine(self) -> dict[str, Any]:
        """Nothing to add: the worker's own "ready" event describes this machine."""
        return {}

    def detach(self) -> None:
        """Never needed here: a local worker is stopped with its server, never left behind."""
        pass  # a worker here is stopped, never left behind

    def _signal(self, signum: signal.Signals) -> None:
        popen = self.process.popen
        if popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signum)  # the worker and anything it started


class LocalExecutor:
    """Runs each job in a worker process on this machine, `max_concurrent` at a time, with a warm spare.

    Args:
        max_concurrent: Jobs running at once; keep 1 so that timings stay honest.
        worker_command: The command that starts a worker; `python -m lib.worker` when None.
        env: The workers' environment (the server's, with the runner's extras).
        default_backend: The backend whose spare is kept warm.
        warm_workers: Keep a spare worker with Keras imported for the next job.
    """

    kind = "local"
    keeps_jobs = False
    poll_s = None

    def __init__(
        self,
        max_concurrent: int = 1,
        worker_command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        default_backend: str,
        warm_workers: bool = True,
    ):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1.")
        self.max_concurrent = max_concurrent
        self._default_backend = default_backend
        command = list(worker_command or DEFAULT_WORKER_COMMAND)
        self._pool = WorkerPool(command, dict(env or os.environ), cwd=REPO_ROOT, warm=warm_workers)

    def slots(self) -> int:
        """`max_concurrent`."""
        return self.max_concurrent

    def can_start(self, request: JobRequest, running: Sequence[RunningJob]) -> bool:
        """True while fewer than `max_concurrent` jobs run."""
        return len(running) < self.max_concurrent

    def fits_any(self, request: JobRequest) -> bool:
        """True: the request check already refused what this server's devices cannot run."""
        return True

    def launch(self, job_id: str, request: JobRequest, backend: str) -> LocalExecution:
        """A warm spare of the backend when one waits, else a new worker process."""
        process = self._pool.launch(backend, {"KERAS_BACKEND": backend})
        return LocalExecution(process, json.dumps(request.to_worker_dict()), warm=process.warm)

    def reattach(self, job_id: str) -> Execution | None:
        """None: a worker here ends with the server that started it."""
        return None  # a worker here ends with the server that started it

    def devices(self) -> tuple[str, ...] | None:
        """None: the server passes the runner its own device list."""
        return None  # the server passes its own list to the runner

    def job_started(self) -> None:
        """Starts the next spare at once on a server with many cores."""
        if usable_cores() >= SPARE_BESIDE_JOB_MIN_CORES:
            self.start_spare()

    def all_idle(self) -> None:
        """Starts the next spare, now that nothing trains."""
        self.start_spare()

    def start_spare(self) -> int | None:
        """Starts a warm spare of the server's backend unless one is waiting; returns its process id."""
        backend = self._default_backend
        return self._pool.start_spare(backend, {"KERAS_BACKEND": backend})

    def spare_pid(self, backend: str) -> int | None:
        """The process id of this backend's waiting spare, or None."""
        return self._pool.spare_pid(backend)

    def status(self) -> ExecutorStatus:
        """This server, the one machine."""
        import platform

        return ExecutorStatus(kind=self.kind, machines=(Machine(name=platform.node() or "this server"),))

    def close(self) -> None:
        """Ends the spare workers."""
        self._pool.close()


# --- choosing one ---


def ray_address(environ: Mapping[str, str]) -> str:
    """The Ray head's address from GPUX_RAY_ADDRESS ("" when unset), e.g. "http://10.0.0.5:8265"."""
    address = environ.get(RAY_ADDRESS_ENV, "").strip()
    if address and "://" not in address:
        address = f"http://{address}"
    return address


def cluster_executor(environ: Mapping[str, str], worker_env: Mapping[str, str] | None = None) -> Executor | None:
    """The Ray cluster the server's settings name (GPUX_RAY_ADDRESS), or None to run jobs on this machine.

    Ray is imported only when GPUX_RAY_ADDRESS is set.

    Args:
        environ: The server's environment.
        worker_env: Extra environment variables for every worker.
    """
    address = ray_address(environ)
    if not address:
        return None
    from lib.ray_executor import RayExecutor

    return RayExecutor(address, worker_env=worker_env)
