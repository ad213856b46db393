"""Jobs on a Ray cluster: each training job is a Ray Job, alone on one machine (GPUX_RAY_ADDRESS).

Imported only when the server's GPUX_RAY_ADDRESS names a Ray head (`lib.executor.cluster_executor`). The
app's `lib.runner.JobRunner` keeps the queue, its order and the store exactly as on one machine; this module
starts each job's worker through Ray's own job machinery (`ray.job_submission.JobSubmissionClient`):

- the entrypoint is the same worker, `python -m lib.worker`, its job in GPUX_JOB_REQUEST, the app's code
  uploaded as the job's working directory (Ray caches it by content, so every machine runs the app's version);
- every job asks for one unit of the custom resource `gpux_machine`, which each training machine offers
  exactly once (`ray start --resources '{"gpux_machine": 1}'`): at most one job per machine, so its timings
  are its own; a job that trains on a GPU asks for GPUs too (`entrypoint_num_gpus`), so it lands on a GPU
  machine, where its cpu:0 and gpu:0 are timed one after the other;
- the runner starts a job only when a machine that fits it is free (the cluster's nodes, looked at every
  second), so the app's first-come-first-served order is the cluster's order;
- the worker's JSON-lines events are read from the job's logs (`tail_job_logs`), `stop_job` cancels, and
  the job's final status tells a crash (exit code) from a machine lost mid-job (no exit code);
- a job's submission id is "gpux-" and the app's job id, so an app that restarts finds its jobs again
  (`reattach`) and replays their logs from the start.

An unreachable head is a state, not an error: `status().problem` says so in words, queued jobs wait, and a
running job's reader keeps trying until the head answers again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lib.executor import ClusterUnavailableError, ExecutorStatus, Machine, RunningJob, WorkerExit
from lib.jobs import JobRequest
from lib.worker import REQUEST_ENV
from lib.worker_pool import REPO_ROOT

MACHINE_RESOURCE = "gpux_machine"  # each training machine offers one; each job takes one
SUBMISSION_PREFIX = "gpux-"  # a job's Ray submission id is this and the app's job id
WORKER_ENTRYPOINT = "python -m lib.worker"
# Not uploaded with the app's code (Ray also leaves out what .gitignore names).
UPLOAD_EXCLUDES = (".git", ".venv", "data", "runs", "*.sqlite*", ".whl", ".gpurepo", ".gpudata", "benchmarks/results")
WATCH_S = 1.0  # how often the cluster's machines are looked at
REQUEST_TIMEOUT_S = 5.0  # the longest a look at the cluster may take
RETRY_S = 2.0  # how often a reader retries an unreachable head
PLACED_POLL_S = 0.1  # how often a submitted job's status is read until Ray has placed it (a local read, cheap)
OUTPUT_TAIL_LINES = 20  # the last lines besides events kept, for a crash's reason
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
EVENT_PREFIX = '{"type"'  # how each of the worker's event lines starts
# Ray's job client logs every packaging step of every submit at INFO (a dozen lines per job, 30 jobs a lesson);
# the app's log keeps Ray's warnings and errors. Its note that .git and .venv are left out is expected here.
QUIET_RAY_LOGGERS = {
    "ray._private.runtime_env.packaging": logging.WARNING,
    "ray.dashboard.modules.dashboard_sdk": logging.WARNING,
    "ray.dashboard.modules.job.sdk": logging.WARNING,
    "ray._private.runtime_env.working_dir": logging.ERROR,
}


def submission_id(job_id: str) -> str:
    """The Ray submission id of an app's job."""
    return f"{SUBMISSION_PREFIX}{job_id}"


def gpus_needed(request: JobRequest, most_gpus: int) -> int:
    """GPUs a job needs on its machine: up to the highest gpu:N it names; for gpu:all, the biggest machine's.

    Args:
        request: The job.
        most_gpus: The most GPUs one machine of the cluster has.
    """
    needed = 0
    for device in request.devices:
        kind, _, index = device.partition(":")
        if kind != "gpu":
            continue
        needed = max(needed, max(most_gpus, 1) if index == "all" else int(index) + 1)
    return needed


def cluster_devices(machines: Sequence[Machine]) -> tuple[str, ...] | None:
    """Device names a job may ask for: cpu:0, the GPUs of the best-equipped machine, gpu:all when one has several.

    None when no machine is known yet (the runner then takes any well-formed name, and the job waits).
    """
    if not machines:
        return None
    most = max(machine.gpus for machine in machines)
    return ("cpu:0", *(f"gpu:{index}" for index in range(most)), *(("gpu:all",) if most > 1 else ()))


def unreachable_message(address: str, error: BaseException) -> str:
    """What the Train page and the CLI say while the head does not answer."""
    text = str(error).strip()
    reason = text.splitlines()[0].split(". ")[0].rstrip(".")[:200] if text else type(error).__name__
    return (
        f"The Ray cluster at {address} does not answer ({reason}). Queued jobs are kept and start when it "
        "answers again; running jobs go on on their machines. Check that the head is running (`ray status`)."
    )


def _machine_of(node: Any) -> Machine:
    resources = getattr(node, "resources_total", None) or {}
    name = getattr(node, "node_name", "") or getattr(node, "node_ip", "") or node.node_id[:8]
    gpus = int(resources.get("GPU", 0))
    return Machine(name=name, node_id=node.node_id, address=getattr(node, "node_ip", ""), gpus=gpus)


class RayExecutor:
    """Starts jobs as Ray Jobs on the cluster whose head's dashboard is at `address`.

    Args:
        address: The head's dashboard address, "http://HOST:8265".
        worker_env: Extra environment variables for every worker (on top of its backend and job).
        entrypoint: The command a machine runs for a job (the tests' worker in tests).
        working_dir: The code uploaded for the job (the app's checkout).
        watch_s: How often the cluster's machines are looked at.
    """

    kind = "ray"
    keeps_jobs = True  # a job goes on on its machine when the app stops; the next app reattaches
    poll_s = WATCH_S

    def __init__(
        self,
        address: str,
        *,
        worker_env: Mapping[str, str] | None = None,
        entrypoint: str = WORKER_ENTRYPOINT,
        working_dir: str | None = None,
        watch_s: float = WATCH_S,
    ):
        self.address = address
        self.entrypoint = entrypoint
        self._worker_env = dict(worker_env or {})
        self._working_dir = str(working_dir or REPO_ROOT)
        self._watch_s = watch_s
        self._lock = threading.Lock()
        self._client: Any = None  # JobSubmissionClient, made when the head first answers
        self._machines: tuple[Machine, ...] = ()
        self._problem = ""
        self._checked_at: float | None = None
        self._closed = threading.Event()
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="ray-cluster-watch", daemon=True)
        self._watcher.start()

    # --- the cluster's machines ---

    def refresh(self) -> ExecutorStatus:
        """Looks at the cluster's machines now (the watcher does every `watch_s`); returns the status."""
        try:
            from ray.util.state import list_nodes

            nodes = list_nodes(
                address=self.address,
                filters=[("state", "=", "ALIVE")],
                detail=True,
                timeout=int(REQUEST_TIMEOUT_S),
                raise_on_missing_output=False,
            )
            machines = tuple(
                sorted(
                    (_machine_of(node) for node in nodes if (node.resources_total or {}).get(MACHINE_RESOURCE, 0) >= 1),
                    key=lambda machine: machine.name,
                )
            )
            problem = ""
        except Exception as error:  # any failure to look is the same for people: the head does not answer
            machines, problem = self._machines, unreachable_message(self.address, error)
        with self._lock:
            self._machines, self._problem, self._checked_at = machines, problem, time.time()
        return self.status()

    def _watch(self) -> None:
        while not self._closed.wait(self._watch_s):
            self.refresh()

    def status(self) -> ExecutorStatus:
        """The cluster's training machines as last seen, and why no job can start (the head is silent)."""
        with self._lock:
            return ExecutorStatus(
                kind=self.kind,
                address=self.address,
                machines=self._machines,
                problem=self._problem,
                checked_at=self._checked_at,
            )

    def slots(self) -> int:
        """The training machines (at least 1, so waiting times stay finite while none is known)."""
        with self._lock:
            return max(len(self._machines), 1)

    def devices(self) -> tuple[str, ...] | None:
        """The devices some machine of the cluster has (`cluster_devices`); None while none is known."""
        with self._lock:
            return cluster_devices(self._machines)

    def can_start(self, request: JobRequest, running: Sequence[RunningJob]) -> bool:
        """True when the head answers and a free machine fits the job (a GPU machine, for a GPU job).

        A running job whose machine is not known yet counts as taking a GPU machine, so a GPU job never waits
        in Ray's own queue behind a job the app believes elsewhere.
        """
        with self._lock:
            machines, problem = self._machines, self._problem
        if problem or len(running) >= len(machines):
            return False
        gpus = gpus_needed(request, max((machine.gpus for machine in machines), default=0))
        if not gpus:
            return True
        fitting = {machine.node_id for machine in machines if machine.gpus >= gpus}
        taken = sum(1 for job in running if not job.machine or job.machine in fitting)
        return len(fitting) > taken

    def fits_any(self, request: JobRequest) -> bool:
        """Whether some machine of the cluster (busy or not) could run the job; True while none is known."""
        with self._lock:
            machines = self._machines
        if not machines:
            return True
        most = max(machine.gpus for machine in machines)
        needed = gpus_needed(request, most)
        return any(machine.gpus >= needed for machine in machines)

    def machine_named(self, node_id: str) -> Machine | None:
        """The machine with this node id, as last seen."""
        with self._lock:
            return next((machine for machine in self._machines if machine.node_id == node_id), None)

    # --- jobs ---

    def launch(self, job_id: str, request: JobRequest, backend: str) -> RayExecution:
        """Submits the job to the cluster as a Ray Job on a machine of its own.

        Raises:
            ClusterUnavailableError: The head does not answer (the job waits in the app's queue).
        """
        client = self._client_or_raise()
        most = max((machine.gpus for machine in self.status().machines), default=0)
        gpus = gpus_needed(request, most)
        env = {**self._worker_env, "KERAS_BACKEND": backend, REQUEST_ENV: json.dumps(request.to_worker_dict())}
        sid = submission_id(job_id)
        try:
            client.submit_job(
                entrypoint=self.entrypoint,
                submission_id=sid,
                runtime_env={"working_dir": self._working_dir, "excludes": list(UPLOAD_EXCLUDES), "env_vars": env},
                entrypoint_resources={MACHINE_RESOURCE: 1},
                entrypoint_num_gpus=gpus or None,
                metadata={"app": "gpux", "job_id": job_id},
            )
        except OSError as error:  # requests' connection errors are OSErrors
            self._mark_unreachable(error)
            raise ClusterUnavailableError(unreachable_message(self.address, error)) from error
        except RuntimeError as error:
            if "already exists" not in str(error):  # a submit that got through before its answer was lost
                raise ClusterUnavailableError(f"The Ray cluster refused the job: {error}") from error
        return RayExecution(self, client, sid)

    def reattach(self, job_id: str) -> RayExecution | None:
        """The job an earlier app submitted, when the cluster still knows it; None when it does not.

        Raises:
            ClusterUnavailableError: The head does not answer (try again later).
        """
        client = self._client_or_raise()
        sid = submission_id(job_id)
        try:
            client.get_job_info(sid)
        except OSError as error:
            self._mark_unreachable(error)
            raise ClusterUnavailableError(unreachable_message(self.address, error)) from error
        except RuntimeError:
            return None  # "does not exist": the head restarted, or the job was deleted
        return RayExecution(self, client, sid)

    def job_started(self) -> None:
        """Nothing to warm: each machine starts its job's worker."""

    def all_idle(self) -> None:
        """Nothing to warm: each machine starts its job's worker."""

    def close(self) -> None:
        """Stops looking at the cluster; jobs on it go on (`keeps_jobs`)."""
        self._closed.set()

    def _client_or_raise(self) -> Any:
        with self._lock:
            client = self._client
        if client is not None:
            return client
        from ray.job_submission import JobSubmissionClient

        for name, level in QUIET_RAY_LOGGERS.items():
            logging.getLogger(name).setLevel(level)
        try:
            client = JobSubmissionClient(self.address)
        except (OSError, RuntimeError) as error:  # ConnectionError; a dashboard that is not Ray's
            self._mark_unreachable(error)
            raise ClusterUnavailableError(unreachable_message(self.address, error)) from error
        with self._lock:
            self._client = client
        return client

    def _mark_unreachable(self, error: BaseException) -> None:
        with self._lock:
            self._problem = unreachable_message(self.address, error)
            self._checked_at = time.time()


class RayExecution:
    """One job on the cluster: its logs read as the worker's output, its status as its exit."""

    warm = False  # every job starts its worker cold on its machine

    def __init__(self, executor: RayExecutor, client: Any, sid: str):
        self._executor = executor
        self._client = client
        self.submission_id = sid
        self._machine: dict[str, Any] = {}
        self._tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._detached = threading.Event()
        self._stop_asked = False
        self._stop_pending = False
        self._exit_code: int | None = None  # from the worker's last event, "exit"

    @property
    def pid(self) -> int | None:
        """None: the worker runs on another machine."""
        return None

    def lines(self) -> Iterator[str]:
        """The job's log lines from its first, as they come; a dropped connection resumes where it was."""
        consumed = 0
        while not self._detached.is_set():
            self._deliver_pending_stop()
            for index, line in enumerate(self._log_lines(), start=1):
                if index > consumed:
                    consumed = index
                    self._keep_tail(line)
                    yield line
                    if self._note_exit(line):  # the worker's last word: no need to wait for Ray's own status
                        return
                if self._detached.is_set():
                    return
            info, unknown = self._look()
            if info is not None and str(info.status) in TERMINAL:
                for index, line in enumerate(self._full_log_lines(), start=1):
                    if index > consumed:  # the last lines, should the stream have closed before them
                        consumed = index
                        self._keep_tail(line)
                        yield line
                return
            if unknown:
                return
            self._detached.wait(RETRY_S)

    def wait(self) -> WorkerExit:
        """Says how the job ended: the worker's own "exit" event when it sent one, else Ray's final status."""
        if self._exit_code is not None:
            return WorkerExit(returncode=self._exit_code, output_tail="\n".join(self._tail))
        while True:
            try:
                info = self._client.get_job_info(self.submission_id)
            except OSError:
                if self._detached.wait(RETRY_S):
                    return WorkerExit(returncode=None)
                continue
            except RuntimeError:
                return WorkerExit(
                    returncode=None,
                    lost="The cluster no longer knows this job (its head may have restarted); it did not finish.",
                )
            status = str(info.status)
            if status in TERMINAL:
                self._note_machine(info)
                return self._exit(status, info)
            time.sleep(RETRY_S / 4)

    def stop(self) -> None:
        """Asks Ray to stop the job (SIGTERM to the worker, SIGKILL a few seconds later if it goes on)."""
        self._stop_asked = True
        try:
            self._client.stop_job(self.submission_id)
            self._stop_pending = False
        except (OSError, RuntimeError):
            self._stop_pending = True  # the reader delivers it once the head answers

    def kill(self) -> None:
        """Ray kills a job that does not stop after `stop` by itself; asks again in case the first was lost."""
        self.stop()

    def detach(self) -> None:
        """Stops reading the job: the app is shutting down and the job goes on."""
        self._detached.set()

    def machine(self) -> dict[str, Any]:
        """The node the job runs on, once Ray has placed it: {"node", "node_id", "node_address"}."""
        return dict(self._machine)

    # --- helpers ---

    def _log_lines(self) -> Iterator[str]:
        """The job's log as complete lines, from its first, until the job ends or the stream drops."""
        chunks: queue.Queue[str | None] = queue.Queue()

        async def follow() -> None:
            try:
                async for chunk in self._client.tail_job_logs(self.submission_id):
                    chunks.put(chunk)
            finally:
                chunks.put(None)

        def run() -> None:
            with contextlib.suppress(Exception):  # a dropped stream ends here; `lines` resumes it
                asyncio.run(follow())
            chunks.put(None)

        if not self._wait_until_placed():
            return
        threading.Thread(target=run, name=f"logs-{self.submission_id}", daemon=True).start()
        buffer = ""
        while not self._detached.is_set():
            try:
                chunk = chunks.get(timeout=RETRY_S)
            except queue.Empty:
                continue
            if chunk is None:
                break
            buffer += chunk
            *complete, buffer = buffer.split("\n")
            yield from complete

    def _wait_until_placed(self) -> bool:
        """Waits while Ray holds the job pending; notes its machine. False when detached or the job is unknown."""
        while not self._detached.is_set():
            info, unknown = self._look()
            if unknown:
                return False
            if info is not None and str(info.status) != "PENDING":
                self._note_machine(info)
                return True
            self._detached.wait(PLACED_POLL_S)
        return False

    def _full_log_lines(self) -> list[str]:
        try:
            return self._client.get_job_logs(self.submission_id).split("\n")[:-1]
        except (OSError, RuntimeError):  # the machine that kept them is gone
            return []

    def _look(self) -> tuple[Any, bool]:
        """The job's info (None when the head does not answer), and whether the head says it has no such job."""
        try:
            return self._client.get_job_info(self.submission_id), False
        except RuntimeError:  # the head answered: no such job
            return None, True
        except OSError:  # the head does not answer: try again later
            return None, False

    def _note_machine(self, info: Any) -> None:
        node_id = getattr(info, "driver_node_id", None) or ""
        if not node_id or self._machine.get("node_id") == node_id:
            return
        machine = self._executor.machine_named(node_id)
        self._machine = {
            "node": machine.name if machine else node_id[:8],
            "node_id": node_id,
            "node_address": machine.address if machine else "",
        }

    def _note_exit(self, line: str) -> bool:
        """True when `line` is the worker's "exit" event (its code is kept for `wait`)."""
        if not line.startswith('{"type": "exit"'):
            return False
        with contextlib.suppress(ValueError, TypeError, KeyError):
            self._exit_code = int(json.loads(line)["code"])
        return self._exit_code is not None

    def _keep_tail(self, line: str) -> None:
        if line.strip() and not line.startswith(EVENT_PREFIX):
            self._tail.append(line)

    def _deliver_pending_stop(self) -> None:
        if self._stop_pending:
            self.stop()

    def _exit(self, status: str, info: Any) -> WorkerExit:
        tail = "\n".join(self._tail)
        if status == "SUCCEEDED":
            return WorkerExit(returncode=0, output_tail=tail)
        if status == "STOPPED":
            return WorkerExit(returncode=None, output_tail=tail, stopped_elsewhere=not self._stop_asked)
        code = getattr(info, "driver_exit_code", None)
        if code is not None:
            return WorkerExit(returncode=int(code), output_tail=tail)
        return WorkerExit(returncode=None, output_tail=tail, lost=self._lost_message(str(info.message or "")))

    def _lost_message(self, message: str) -> str:
        where = self._machine.get("node") or "its machine"
        first = message.strip().splitlines()[0] if message.strip() else "no reason given"
        if "node" in message.lower() and ("died" in message.lower() or "dead" in message.lower()):
            return (
                f"The machine running this job ({where}) stopped or left the cluster before the job ended "
                f"({first[:300]}). The epochs that finished before are kept."
            )
        return f"The cluster could not run this job on {where}: {first[:300]}"
