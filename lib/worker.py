"""One training job in its own process, so the Streamlit server never trains in its own threads.

`lib.runner.JobRunner` starts a worker for every job (through `lib.worker_pool.WorkerPool`), writes the
job (a `lib.jobs.JobRequest` as JSON) to its standard input and reads events back, one JSON object per
line on its standard output:

    {"type": "started", "pid": 123, "wall_time": 1700000000.0}           before the heavy imports
    {"type": "warm", "wall_time": 1700000003.0, "import_s": 2.1,         a spare only: imports done
     "data_s": 0.3, "preloaded": ["fashion_mnist"], "priority": "idle"}
    {"type": "ready", "backend": "jax", "import_s": 2.1, "data_s": 0.4,   imports and data done
     "num_train": 300, "nice": 10, "idle_threads": 0,
     "hardware": {...describe_hardware()}, "versions": {...}}             the machine it runs on
    {"type": "progress", "event": {...ProgressEvent.to_dict()}}           while training
    {"type": "result", "run": {...DeviceRun.to_dict()}}                   after each device
    {"type": "error", "message": "readable reason"}                       on failure (exit code 1)
    {"type": "exit", "code": 0}                                           last, just before the process ends

The job comes on standard input, or in the environment variable GPUX_JOB_REQUEST where there is none (a
job on a Ray cluster, `lib.ray_executor`). The worker never writes the run store: the runner records every
outcome, including runs of a worker that was killed. Anything a library prints goes to standard error, so
the event stream stays clean.
The Keras backend is the worker's `KERAS_BACKEND`. SIGTERM asks the worker to stop after the current
training step (the runner sends SIGKILL if it does not); before the first device has started training
there is nothing to keep, so SIGTERM ends the worker at once. The worker also exits when the server that
started it dies (its parent's id is in GPUX_WORKER_PARENT_PID).

Progress events go out so that what a page shows of each device never goes backwards (`ProgressRelay`):
"device_start" counts the epoch about to train from 1, and a device that stopped inside an epoch says in its
"device_done" how far into that epoch it got. Once the job has ended the process leaves at once
(`exit_now`): Python's normal teardown with TensorFlow loaded takes about 1.5 s on a 2-core machine, and the
runner marks a job final only when its worker has ended, so a cancel would wait for it.

Priority: a worker trains `WORKER_NICE` nice levels below the server that started it (setting
GPUX_WORKER_NICE; 0 trains at the server's priority), so the web server still answers pages while a job
takes every core. On Linux the nice value belongs to each thread; the worker sets it for its threads before
anything else runs, so every thread that Keras and its backend start later inherits it.

Spare mode (`python -m lib.worker --spare`): the worker imports Keras, its backend and the engine, and
pre-reads small local datasets, before any job exists, in a thread at idle priority (Linux SCHED_IDLE, else
nice 19 for that thread), so it only takes CPU time that a running job leaves unused. Then it sends "warm"
and waits for its job on standard input. When the job arrives, every thread goes back to the training
priority ("ready" says in "idle_threads" how many the operating system kept at idle priority: leaving it
takes CAP_SYS_NICE) and the job runs as in a cold worker; its main thread never idles, nor do the threads
the training starts.
A spare whose standard input closes without a job exits with code 0. It does not touch any device before
its job, so it holds no GPU memory.

A job runs in two steps, `prepare_job` (imports, data, "ready") and `train_job`; `main(job=...)` runs another
job function in this same process and protocol (the tests' worker, tests/helpers/fake_worker.py, does).

Run by hand: `echo '{"spec": {...}, "devices": ["cpu:0"], "synthetic": true, "sample_limit": 300}' |
python -m lib.worker` (add `--spare` to see the warm-up first).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

from lib.device_run import ProgressEvent, is_out_of_memory
from lib.jobs import WORKER_PARENT_ENV, JobRequest, RunPoint

SPARE_ARG = "--spare"  # command-line switch: warm up first, then wait for the job
REQUEST_ENV = "GPUX_JOB_REQUEST"  # the job as JSON, for a worker with no standard input (a Ray job)
WORKER_NICE_ENV = "GPUX_WORKER_NICE"  # server setting: nice levels below the server that workers train at
WORKER_NICE = 10  # default of that setting: the server's threads win a busy core about 9 to 1 (weights 1024:110)
MAX_NICE = 19  # the lowest priority of a Unix nice value
PRELOAD_MAX_BYTES = 64 * 2**20  # a spare pre-reads a local dataset only when its images are this small
PARENT_CHECK_S = 0.5  # how often the worker checks that the server that started it is still alive
ERROR_MESSAGE_CHARS = 1000  # longest error message sent back
OUT_OF_MEMORY_HINT = (
    " The model, batch or data did not fit in the device's memory: use fewer or smaller hidden layers, a smaller "
    "batch size or fewer samples."
)


class EventWriter:
    """Writes events as JSON lines to a stream, one complete line per event, from any thread."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        """Writes one event and flushes it, so the runner sees it at once."""
        line = json.dumps(event, default=_json_default)  # NaN (a missing metric) is read back by json.loads
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def _json_default(value: Any) -> Any:
    # numpy scalars (losses, times) arrive here; float() covers them all.
    return float(value)


def claim_stdout() -> IO[str]:
    """Keeps the real standard output for events and sends everything else printed there to standard error."""
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return events


def watch_parent(parent_pid: int) -> None:
    """Ends this process once `parent_pid` is no longer its parent: the server that started it is gone.

    The runner passes its process id in GPUX_WORKER_PARENT_PID, so a server that died before the worker
    started is noticed too.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@dataclass
class WorkerState:
    """What this worker process brings to its job."""

    nice: int  # the process's nice value while it trains
    idle_threads: int = 0  # threads the operating system kept at idle priority after a spare's warm-up
    datasets: dict[str, Any] = field(default_factory=dict)  # name -> lib.datasets.Dataset a spare pre-read


def worker_nice(environ: Mapping[str, str]) -> int:
    """Returns how many nice levels below the server workers train at: GPUX_WORKER_NICE, else WORKER_NICE.

    Raises:
        ValueError: The setting is not a whole number from 0 to 19.
    """
    text = environ.get(WORKER_NICE_ENV, "").strip()
    if not text:
        return WORKER_NICE
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= MAX_NICE:
        raise ValueError(
            f"Workers' CPU priority: {text!r} is not a nice value; use a whole number from 0 (the server's "
            f"priority) to {MAX_NICE} (the lowest) ({WORKER_NICE_ENV})."
        )
    return value


def lower_priority(levels: int) -> int:
    """Lowers this process's CPU priority by `levels` nice levels, for every thread.

    On Linux each thread has its own nice value: the calling thread's changes, threads it starts later inherit
    it, and the threads already running (numpy's BLAS threads start when it is imported) are set to it too.

    Returns:
        The calling thread's nice value afterwards.
    """
    nice = os.nice(max(levels, 0))
    for thread_id in _thread_ids():
        with contextlib.suppress(ProcessLookupError):
            if os.getpriority(os.PRIO_PROCESS, thread_id) < nice:
                os.setpriority(os.PRIO_PROCESS, thread_id, nice)  # lowering a priority is always allowed
    return nice


def idle_this_thread() -> str:
    """Moves the calling thread to the lowest CPU priority the operating system offers.

    Linux's SCHED_IDLE runs the thread only on a CPU that has nothing else to do. Where that is refused, the
    thread's own nice value goes to 19 (on Linux each thread has its own). Elsewhere nothing changes, since
    a nice value there would hold for the whole process, and for its job too.

    Returns:
        "idle" (SCHED_IDLE), "nice 19", or "unchanged".
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MAX_NICE)
    except OSError:
        return "unchanged"
    return f"nice {MAX_NICE}"


def restore_thread_priorities(nice: int) -> int:
    """Brings every thread of this process that runs below the training priority back to it.

    The training priority is SCHED_OTHER at nice value `nice`. Leaving SCHED_IDLE or lowering a nice value
    takes CAP_SYS_NICE (or a high enough RLIMIT_NICE), so the operating system may refuse.

    Returns:
        How many threads still run below the training priority.
    """
    still_lower = 0
    for thread_id in _thread_ids():
        try:
            if os.sched_getscheduler(thread_id) == os.SCHED_IDLE:
                os.sched_setscheduler(thread_id, os.SCHED_OTHER, os.sched_param(0))
            if os.getpriority(os.PRIO_PROCESS, thread_id) > nice:
                os.setpriority(os.PRIO_PROCESS, thread_id, nice)
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except PermissionError:
            still_lower += 1
    return still_lower


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except FileNotFoundError:  # not Linux: `idle_this_thread` lowered nothing there
        return []


def import_training_modules(environ: Mapping[str, str]) -> None:
    """Imports Keras, its backend and the app's engine and data modules: the slow part of a worker's start."""
    block_unused_tensorflow(environ)
    import keras  # noqa: F401

    import lib.datasets  # noqa: F401
    import lib.devices  # noqa: F401
    import lib.engine  # noqa: F401


def preload_datasets(max_bytes: int = PRELOAD_MAX_BYTES) -> dict[str, Any]:
    """Reads every dataset that has a local copy and whose images take at most `max_bytes` of memory.

    Returns:
        Dataset name -> `lib.datasets.Dataset`; a dataset without a local copy is left out.
    """
    from lib.datasets import DATASETS, DatasetUnavailableError, load_dataset

    loaded = {}
    for name, info in DATASETS.items():
        if (info.num_train + info.num_test) * info.input_size > max_bytes:
            continue
        try:
            loaded[name] = load_dataset(name)
        except DatasetUnavailableError:
            continue  # a job that asks for it gets the readable reason then
    return loaded


class SpareWarmUp:
    """A spare's warm-up: the heavy imports and the small local datasets, in a thread at idle priority."""

    def __init__(self, emitter: EventWriter, environ: Mapping[str, str]):
        self._emitter = emitter
        self._environ = environ
        self._datasets: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="spare-warm-up", daemon=True)

    def start(self) -> None:
        """Starts warming up; sends "warm" when done."""
        self._thread.start()

    def finish(self, nice: int) -> WorkerState:
        """For the job that arrived: brings every thread back to the training priority and waits for the warm-up.

        Args:
            nice: The training priority's nice value.
        """
        restore_thread_priorities(nice)  # the rest of a warm-up still under way runs at training priority
        self._thread.join()
        idle_threads = restore_thread_priorities(nice)  # and the threads its imports started meanwhile
        return WorkerState(nice=nice, idle_threads=idle_threads, datasets=self._datasets)

    def _run(self) -> None:
        priority = idle_this_thread()
        try:
            started = time.perf_counter()
            import_training_modules(self._environ)
            imported = time.perf_counter()
            self._datasets = preload_datasets()
            loaded = time.perf_counter()
        except Exception:  # the job meets the same failure and reports it readably; a warm-up only prepares
            traceback.print_exc()
            return
        self._emitter.emit(
            {
                "type": "warm",
                "wall_time": time.time(),
                "import_s": imported - started,
                "data_s": loaded - imported,
                "preloaded": sorted(self._datasets),
                "priority": priority,
            }
        )


class JobStop(threading.Event):
    """Set when the runner asks the job to stop (SIGTERM); `on_sigterm` is the signal's handler.

    Until the first device starts training, nothing the job did is worth sending back (the runner records
    the unstarted runs itself), so the handler ends the worker at once instead of waiting for the imports or
    the data load to finish. From then on it only sets the event, which training polls between steps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.training = False  # a device has started training: stop gracefully, keeping its finished epochs

    def on_sigterm(self, *_: Any) -> None:
        """Sets the event; ends the process at once while no device has started training."""
        self.set()
        if not self.training:
            exit_now(0)


def exit_now(code: int) -> None:
    """Ends the process with `code` after flushing its output, skipping Python's teardown.

    Every event was flushed when it was written. With TensorFlow loaded, the normal teardown takes about
    1.5 s on a 2-core machine, during which the runner cannot mark the job final.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def readable_error(error: BaseException) -> str:
    """Returns a short message for the UI: the app's own errors as they are, others with their type name."""
    text = str(error).strip() or repr(error)
    if not type(error).__module__.startswith("lib."):
        text = f"{type(error).__name__}: {text.splitlines()[0]}"
    if is_out_of_memory(error):
        text += OUT_OF_MEMORY_HINT
    return text[:ERROR_MESSAGE_CHARS]


def load_job_data(request: JobRequest, preloaded: Mapping[str, Any]) -> Any:
    """Loads the job's dataset: generated at the requested size, or the real one (pre-read, or from a local copy).

    Args:
        request: The job.
        preloaded: Datasets a spare already read, by name.
    """
    from lib.datasets import get_info, load_dataset, synthetic_dataset

    if request.synthetic:
        info = get_info(request.spec.dataset)
        num_train = min(request.sample_limit or info.num_train, info.num_train)
        num_test = min(request.test_limit or info.num_test, info.num_test)
        return synthetic_dataset(request.spec.dataset, num_train, num_test, seed=request.spec.seed)
    if request.spec.dataset in preloaded:
        return preloaded[request.spec.dataset]
    return load_dataset(request.spec.dataset)


class ProgressRelay:
    """Passes the engine's progress events on, so that each device's shown progress never goes backwards.

    The engine's "device_start" says epoch 0 (none trained yet); what trains next is epoch 1, and pages show
    the epoch in progress, so it goes out as epoch 1. Its "device_done" says how many epochs finished; a device
    stopped inside an epoch (a cancel) would then show less than its last batch event did, so the relay adds
    that epoch's dispatched batches from the last batch event (`lib.class_board.progress_fraction` counts them).
    """

    def __init__(self) -> None:
        self._last: dict[str, ProgressEvent] = {}  # run (`ProgressEvent.key`) -> the last event sent

    def __call__(self, event: ProgressEvent) -> ProgressEvent:
        """Returns the event to send for `event`."""
        last = self._last.get(event.key)
        if event.kind == "device_start":
            event = replace(event, epoch=max(event.epoch, 1))
        elif event.kind == "device_done" and last is not None and last.kind == "batch" and last.epoch > event.epoch:
            event = replace(event, batch=last.batch, batches=last.batches)
        self._last[event.key] = event
        return event


def make_progress_callback(emitter: EventWriter, stop: JobStop) -> Callable[[ProgressEvent], None]:
    """Returns the engine's progress callback: it relays events (`ProgressRelay`) as "progress" events."""
    relay = ProgressRelay()

    def on_progress(event: ProgressEvent) -> None:
        stop.training = True  # the first event is a device's "device_start": from now on a stop keeps epochs
        emitter.emit({"type": "progress", "event": relay(event).to_dict()})

    return on_progress


def block_unused_tensorflow(environ: Mapping[str, str]) -> bool:
    """Stops Keras from importing TensorFlow in a worker whose backend is JAX or PyTorch.

    When TensorFlow is installed, Keras imports it on any backend just to seed its random generator
    (`keras.utils.set_random_seed`), which costs a JAX or PyTorch job seconds of start-up for nothing.
    A `None` entry in `sys.modules` makes `import tensorflow` fail, and Keras then skips it.

    Returns:
        True when TensorFlow was blocked.
    """
    backend = environ.get("KERAS_BACKEND", "").strip()
    if backend not in ("jax", "torch") or "tensorflow" in sys.modules:
        return False
    sys.modules["tensorflow"] = None
    return True


def run_job(request: JobRequest, emitter: EventWriter, stop: JobStop, state: WorkerState) -> None:
    """Imports Keras, loads the data and trains on each device in turn, sending each result as it is ready."""
    dataset = prepare_job(request, emitter, state)
    train_job(request, emitter, stop, dataset, make_progress_callback(emitter, stop))


def machine_facts() -> dict[str, Any]:
    """What the "ready" event says of the machine: its hardware and library versions, stored with every run.

    On a cluster this is the only way the app learns what the machine that ran a job is.
    """
    from lib.backend import library_versions
    from lib.hardware import describe_hardware

    return {"hardware": describe_hardware(), "versions": library_versions()}


def prepare_job(request: JobRequest, emitter: EventWriter, state: WorkerState) -> Any:
    """Imports Keras, checks the devices and loads the data, then sends "ready"; returns the dataset.

    In a spare the imports are done and the data may be pre-read.
    """
    started = time.perf_counter()
    import_training_modules(os.environ)
    import keras

    from lib.devices import resolve_device
    from lib.estimates import trained_samples

    imported = time.perf_counter()
    for name in request.devices:
        resolve_device(name)  # a missing device fails the job before any training
    dataset = load_job_data(request, state.datasets)
    loaded = time.perf_counter()
    num_train = min(request.sample_limit or len(dataset.x_train), len(dataset.x_train))
    emitter.emit(
        {
            "type": "ready",
            "backend": keras.backend.backend(),
            "import_s": imported - started,
            "data_s": loaded - imported,
            "num_train": trained_samples(request.spec, num_train, keras.backend.backend()),
            "nice": state.nice,
            "idle_threads": state.idle_threads,
            **machine_facts(),
        }
    )
    return dataset


def train_job(
    request: JobRequest,
    emitter: EventWriter,
    stop: JobStop,
    dataset: Any,
    on_progress: Callable[[ProgressEvent], None],
) -> None:
    """Trains each of the job's runs in turn (`JobRequest.points`), sending each result as soon as it is ready.

    `lib.engine.train_on_devices` is called once per run, so a job killed on its second device has already
    sent the first device's result. A sweep's runs train the spec at their own batch size, a repeat with its
    own seed (`RunPoint.spec`), and their events and results say which run they are (`sweep_batch`, `repeat`).
    """
    from lib.engine import train_on_devices

    for point in request.points():
        if stop.is_set():
            return
        runs = train_on_devices(
            point.spec(request.spec),
            dataset,
            [point.device],
            sample_limit=request.sample_limit,
            test_limit=request.test_limit,
            progress=point_progress(on_progress, point),
            should_stop=stop.is_set,
            target_accuracy=request.target_accuracy,
        )
        for run in runs:
            run.sweep_batch, run.repeat = point.sweep_batch, point.repeat
            emitter.emit({"type": "result", "run": run.to_dict()})


def point_progress(on_progress: Callable[[ProgressEvent], None], point: RunPoint) -> Callable[[ProgressEvent], None]:
    """The progress callback of one run: in a sweep or a repeated job, its events say which run they are about."""
    if not point.sweep_batch and not point.repeat:
        return on_progress
    return lambda event: on_progress(replace(event, sweep_batch=point.sweep_batch, repeat=point.repeat))


JobFunction = Callable[[JobRequest, EventWriter, JobStop, WorkerState], None]  # runs one job, sending its events


def main(argv: Sequence[str] | None = None, job: JobFunction = run_job) -> int:
    """Reads one job on standard input, runs it, and reports events on standard output.

    Args:
        argv: Command-line arguments (`sys.argv[1:]` when None); `--spare` warms up before the job arrives.
        job: What runs the job once it has arrived (`run_job`: trains it).

    Returns:
        0 when the job ran (or stopped when asked), 1 when it failed; the reason is sent as an "error" event.
    """
    spare = SPARE_ARG in (sys.argv[1:] if argv is None else argv)
    emitter = EventWriter(claim_stdout())
    stop = JobStop()
    try:
        nice = lower_priority(worker_nice(os.environ))  # first, so that every thread started later inherits it
        watch_parent(int(os.environ.get(WORKER_PARENT_ENV, os.getppid())))
        emitter.emit({"type": "started", "pid": os.getpid(), "wall_time": time.time()})
        job_text, state = wait_as_spare(emitter, nice) if spare else (read_request_text(), WorkerState(nice=nice))
        signal.signal(signal.SIGTERM, stop.on_sigterm)
        job(JobRequest.from_worker_dict(json.loads(job_text)), emitter, stop, state)
    except Exception as error:  # every failure becomes a readable "error" event; the traceback goes to stderr
        traceback.print_exc()
        emitter.emit({"type": "error", "message": readable_error(error)})
        emitter.emit({"type": "exit", "code": 1})
        return 1
    emitter.emit({"type": "exit", "code": 0})
    return 0


def read_request_text(environ: Mapping[str, str] = os.environ) -> str:
    """The job's JSON: GPUX_JOB_REQUEST when set (a cluster's worker has no standard input), else standard input."""
    return environ.get(REQUEST_ENV) or sys.stdin.read()


def wait_as_spare(emitter: EventWriter, nice: int) -> tuple[str, WorkerState]:
    """Warms up at idle priority while waiting for the job on standard input.

    Until the job arrives SIGTERM keeps its default action, so a pool closing its spares ends them at once.
    A spare whose standard input closes without a job ends the process with code 0.

    Args:
        emitter: Where "warm" is sent.
        nice: The training priority's nice value, restored once the job arrives.

    Returns:
        The job's JSON text and what the warm-up prepared for it.
    """
    warm_up = SpareWarmUp(emitter, os.environ)
    warm_up.start()
    job_text = sys.stdin.read()
    if not job_text.strip():
        sys.stderr.flush()
        os._exit(0)  # no job came: nothing to report, and no half-done import worth waiting for
    return job_text, warm_up.finish(nice)


if __name__ == "__main__":
    exit_now(main())
