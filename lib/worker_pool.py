"""Starting worker processes, with a warm spare per Keras backend so a job need not wait for the imports.

Every training job runs in its own `python -m lib.worker` process (see `lib.worker`), so the memory it
took, GPU memory included, goes when it ends. Starting one costs seconds, mostly importing Keras and its
backend. A `WorkerPool` keeps one spare worker per backend that has already done that
(`python -m lib.worker --spare`, importing at idle CPU priority) and hands it to the next job.

Spares start only when the caller asks (`start_spare`): the job runner asks when no job is training. On a
2-core server a spare importing beside a training job slowed that job's epochs by 20-26 % even at idle
priority (BENCHMARKS.md, "Warm worker"), and a job's timings must be its own.

    pool = WorkerPool(DEFAULT_WORKER_COMMAND, os.environ, cwd=REPO_ROOT)
    worker = pool.launch("jax", {"KERAS_BACKEND": "jax"})
    worker.popen.stdin.write(json.dumps(request.to_worker_dict()))
    worker.popen.stdin.close()
    for line in worker.popen.stdout: ...   # "started", a spare's "warm", "ready", "progress", "result"
    pool.close()                            # ends the spares

Settings (in the environment the pool is given): GPUX_WARM_WORKER=0 starts no spares;
GPUX_WORKER_NICE sets how many nice levels below the server workers train (`lib.worker.WORKER_NICE`).
The pool is thread-safe.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from lib.jobs import WORKER_PARENT_ENV
from lib.worker import SPARE_ARG, WORKER_NICE_ENV, worker_nice

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_WORKER_COMMAND = (sys.executable, "-m", "lib.worker")  # run from the repository root
WARM_WORKER_ENV = "GPUX_WARM_WORKER"  # server setting: "0" starts every worker cold (no spares)
CLOSE_GRACE_S = 2.0  # after SIGTERM, seconds a spare gets to end before SIGKILL


@dataclass
class WorkerProcess:
    """One started worker: the caller writes its job to stdin and reads its events from stdout."""

    popen: subprocess.Popen[str]  # stdin/stdout text pipes (utf-8), its own process group (start_new_session)
    stderr: IO[bytes]  # a temporary file holding its standard error (the caller reads the tail and closes it)
    warm: bool  # True when it was a spare that started before its job was asked for


@dataclass
class _Spare:
    worker: WorkerProcess
    extra_env: dict[str, str]  # the environment it was started with, on top of the pool's


class WorkerPool:
    """Starts worker processes for jobs, each job in a fresh process, from a warm spare when one is ready.

    Args:
        command: The command that starts a worker (`DEFAULT_WORKER_COMMAND`); a spare gets `--spare` added.
        env: The environment of every worker; its GPUX_WARM_WORKER and GPUX_WORKER_NICE are read as settings.
        cwd: The folder workers start in (the repository root, for `python -m lib.worker`).
        warm: False starts no spare, whatever the settings.
        nice: Nice levels below this process that workers train at; None reads GPUX_WORKER_NICE from `env`.

    Raises:
        ValueError: The nice value (or GPUX_WORKER_NICE) is not a whole number from 0 to 19.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: pathlib.Path,
        warm: bool = True,
        nice: int | None = None,
    ):
        self._command = list(command)
        self._cwd = cwd
        self._nice = worker_nice(env if nice is None else {WORKER_NICE_ENV: str(nice)})
        self._env = {**env, WORKER_NICE_ENV: str(self._nice)}
        self.warm = warm and env.get(WARM_WORKER_ENV, "1").strip() != "0"
        self._spares: dict[str, _Spare] = {}
        self._lock = threading.Lock()
        self._closed = False

    def launch(self, backend: str, extra_env: Mapping[str, str]) -> WorkerProcess:
        """A worker for one job: the live warm spare of that backend, else a cold start.

        No new spare starts here: call `start_spare` once no job is training.

        Args:
            backend: The Keras backend of the job; a spare only serves jobs of its own backend.
            extra_env: Environment on top of the pool's, e.g. KERAS_BACKEND; a spare started with other
                values does not serve this job.

        Raises:
            OSError: No worker process could be started.
        """
        extra = dict(extra_env)
        with self._lock:
            spare = self._spares.pop(backend, None)
            if spare is not None and spare.extra_env == extra and spare.worker.popen.poll() is None:
                worker = spare.worker
            else:
                if spare is not None:
                    _end(spare.worker)  # dead, or started for other settings
                worker = self._start(extra, spare=False)
            return worker

    def start_spare(self, backend: str, extra_env: Mapping[str, str]) -> int | None:
        """Starts a spare of this backend unless a live one is waiting: when the server starts, and after each job.

        Returns:
            The spare's process id, or None when spares are off, the pool is closed or it could not start.
        """
        extra = dict(extra_env)
        with self._lock:
            spare = self._spares.get(backend)
            if spare is None or spare.extra_env != extra or spare.worker.popen.poll() is not None:
                if spare is not None:
                    _end(self._spares.pop(backend).worker)
                if self.warm and not self._closed:
                    self._start_spare(backend, extra)
            return self._live_pid(backend)

    def spare_pid(self, backend: str) -> int | None:
        """Returns the process id of this backend's live spare, or None when it has none."""
        with self._lock:
            return self._live_pid(backend)

    def close(self) -> None:
        """Ends every spare (SIGTERM, then SIGKILL) and starts no more; workers already handed out are the caller's."""
        with self._lock:
            self._closed = True
            spares = list(self._spares.values())
            self._spares.clear()
        for spare in spares:
            _end(spare.worker)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _live_pid(self, backend: str) -> int | None:
        spare = self._spares.get(backend)
        if spare is None or spare.worker.popen.poll() is not None:
            return None
        return spare.worker.popen.pid

    def _start_spare(self, backend: str, extra_env: dict[str, str]) -> None:
        with contextlib.suppress(OSError):  # the job still runs; the next one starts cold and tries again
            self._spares[backend] = _Spare(self._start(extra_env, spare=True), extra_env)

    def _start(self, extra_env: Mapping[str, str], *, spare: bool) -> WorkerProcess:
        env = {**self._env, **extra_env, WORKER_PARENT_ENV: str(os.getpid())}
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (the caller, or _end, closes it)
        try:
            popen = subprocess.Popen(
                [*self._command, SPARE_ARG] if spare else self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self._cwd,
                env=env,
                start_new_session=True,  # its own process group, so a cancel ends the worker and its children
                text=True,
                encoding="utf-8",
            )
        except OSError:
            stderr.close()
            raise
        return WorkerProcess(popen=popen, stderr=stderr, warm=spare)


def _end(worker: WorkerProcess) -> None:
    """Ends a worker's process group (SIGTERM, then SIGKILL after a grace period) and closes its files."""
    popen = worker.popen
    if popen.poll() is None:
        _signal_group(popen.pid, signal.SIGTERM)
        try:
            popen.wait(CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
    for stream in (popen.stdin, popen.stdout, worker.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)
