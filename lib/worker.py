"""One training job in its own process, so the Streamlit server never trains in its own threads.

`lib.runner.JobRunner` starts `python -m lib.worker` for every job, writes the job (a
`lib.jobs.JobRequest` as JSON) to its standard input and reads events back, one JSON object per line
on its standard output:

    {"type": "started", "pid": 123, "wall_time": 1700000000.0}           before the heavy imports
    {"type": "ready", "backend": "jax", "import_s": 2.1, "data_s": 0.4,   imports and data done
     "num_train": 300, "num_test": 100}
    {"type": "progress", "event": {...ProgressEvent.to_dict()}}           while training
    {"type": "result", "run": {...DeviceRun.to_dict()}}                   after each device
    {"type": "error", "message": "readable reason"}                       on failure (exit code 1)

The worker never writes the run store: the runner records every outcome, including runs of a worker
that was killed. Anything a library prints goes to standard error, so the event stream stays clean.
The Keras backend is the worker's `KERAS_BACKEND`. SIGTERM asks the worker to stop after the current
training step (the runner sends SIGKILL if it does not); the worker also exits when the server that started
it dies (its parent's id is in GPUX_WORKER_PARENT_PID).

Test hooks: when the environment has GPUX_WORKER_TEST_HOOKS=1 (never set on a real server), the worker
honours `spec.extra["worker_test_hook"]`, a dict with any of:
    "fake": true               skip Keras; each epoch waits "epoch_s" seconds (default 0.05)
    "sleep_before_s": float    wait before training starts
    "sleep_after_epoch_s": float   wait after each finished epoch
    "raise": "message"         raise RuntimeError(message) before training
    "crash_after_epoch": int   end the process with "crash_signal" (default "SIGKILL") after that epoch
    "ignore_sigterm": true     ignore SIGTERM, so only the runner's SIGKILL ends the worker
    "print": "text"            print text to standard output before training (it must reach stderr)

Run by hand: `echo '{"spec": {...}, "devices": ["cpu:0"], "synthetic": true, "sample_limit": 300}' |
python -m lib.worker`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import IO, Any

from lib.jobs import TEST_HOOK_KEY, WORKER_PARENT_ENV, WORKER_TEST_HOOKS_ENV, JobRequest, run_from_epoch_events
from lib.results import DeviceRun, ProgressEvent

PARENT_CHECK_S = 0.5  # how often the worker checks that the server that started it is still alive
SLEEP_STEP_S = 0.05  # granularity of the test hooks' stoppable waits
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


def read_test_hook(request: JobRequest, environ: Mapping[str, str]) -> dict[str, Any]:
    """Returns the job's test hook, or an empty dict unless test hooks are enabled in `environ`."""
    if environ.get(WORKER_TEST_HOOKS_ENV) != "1":
        return {}
    hook = request.spec.extra.get(TEST_HOOK_KEY)
    return dict(hook) if isinstance(hook, dict) else {}


def stoppable_sleep(seconds: float, stop: threading.Event) -> None:
    """Waits up to `seconds`, returning early once `stop` is set."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(min(SLEEP_STEP_S, max(deadline - time.monotonic(), 0.0)))


def readable_error(error: BaseException) -> str:
    """Returns a short message for the UI: the app's own errors as they are, others with their type name."""
    text = str(error).strip() or repr(error)
    if not type(error).__module__.startswith("lib."):
        text = f"{type(error).__name__}: {text.splitlines()[0]}"
    lowered = text.lower()
    if "resourceexhausted" in lowered or "out of memory" in lowered or isinstance(error, MemoryError):
        text += OUT_OF_MEMORY_HINT
    return text[:ERROR_MESSAGE_CHARS]


def load_job_data(request: JobRequest) -> Any:
    """Loads the job's dataset: generated at the requested size, or the real one from a local copy."""
    from lib.datasets import get_info, load_dataset, synthetic_dataset

    if request.synthetic:
        info = get_info(request.spec.dataset)
        num_train = min(request.sample_limit or info.num_train, info.num_train)
        num_test = min(request.test_limit or info.num_test, info.num_test)
        return synthetic_dataset(request.spec.dataset, num_train, num_test, seed=request.spec.seed)
    return load_dataset(request.spec.dataset)


def make_progress_callback(
    emitter: EventWriter, hook: dict[str, Any], stop: threading.Event
) -> Callable[[ProgressEvent], None]:
    """Returns the engine's progress callback: it forwards events and applies the per-epoch test hooks."""
    sleep_after_epoch_s = float(hook.get("sleep_after_epoch_s", 0.0))
    crash_after_epoch = hook.get("crash_after_epoch")
    crash_signal = signal.Signals[str(hook.get("crash_signal", "SIGKILL"))]

    def on_progress(event: ProgressEvent) -> None:
        emitter.emit({"type": "progress", "event": event.to_dict()})
        if event.kind != "epoch":
            return
        if crash_after_epoch is not None and event.epoch >= int(crash_after_epoch):
            os.kill(os.getpid(), crash_signal)
        if sleep_after_epoch_s:
            stoppable_sleep(sleep_after_epoch_s, stop)

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


def run_job(request: JobRequest, emitter: EventWriter, stop: threading.Event, hook: dict[str, Any]) -> None:
    """Imports Keras, loads the data and trains on each device in turn, sending each result as it is ready.

    `lib.engine.train_on_devices` is called once per device, so a job killed on its second device has
    already sent the first device's result.
    """
    started = time.perf_counter()
    block_unused_tensorflow(os.environ)
    import keras

    from lib.devices import resolve_device
    from lib.engine import train_on_devices, whole_batch_samples

    imported = time.perf_counter()
    for name in request.devices:
        resolve_device(name)  # a missing device fails the job before any training
    dataset = load_job_data(request)
    loaded = time.perf_counter()
    num_train = min(request.sample_limit or len(dataset.x_train), len(dataset.x_train))
    emitter.emit(
        {
            "type": "ready",
            "backend": keras.backend.backend(),
            "import_s": imported - started,
            "data_s": loaded - imported,
            "num_train": whole_batch_samples(num_train, request.spec.batch_size),
        }
    )
    apply_start_hooks(hook, stop)
    on_progress = make_progress_callback(emitter, hook, stop)
    for device in request.devices:
        if stop.is_set():
            return
        runs = train_on_devices(
            request.spec,
            dataset,
            [device],
            sample_limit=request.sample_limit,
            test_limit=request.test_limit,
            progress=on_progress,
            should_stop=stop.is_set,
        )
        for run in runs:
            emitter.emit({"type": "result", "run": run.to_dict()})


def apply_start_hooks(hook: dict[str, Any], stop: threading.Event) -> None:
    """Applies the test hooks that act before training: a print, a wait, then a raised error."""
    if "print" in hook:
        print(hook["print"], flush=True)
    stoppable_sleep(float(hook.get("sleep_before_s", 0.0)), stop)
    if "raise" in hook:
        raise RuntimeError(str(hook["raise"]))


def run_fake_job(request: JobRequest, emitter: EventWriter, stop: threading.Event, hook: dict[str, Any]) -> None:
    """The "fake" test hook: the same events as a real job, with waits instead of Keras training."""
    backend = os.environ.get("KERAS_BACKEND", "none")
    num_train = request.sample_limit or 1
    emitter.emit({"type": "ready", "backend": backend, "import_s": 0.0, "data_s": 0.0, "num_train": num_train})
    apply_start_hooks(hook, stop)
    on_progress = make_progress_callback(emitter, hook, stop)
    epoch_s = float(hook.get("epoch_s", 0.05))
    for device in request.devices:
        if stop.is_set():
            return
        run = _fake_device_run(request, device, backend, num_train, epoch_s, on_progress, stop)
        emitter.emit({"type": "result", "run": run.to_dict()})


def _fake_device_run(
    request: JobRequest,
    device: str,
    backend: str,
    num_train: int,
    epoch_s: float,
    on_progress: Callable[[ProgressEvent], None],
    stop: threading.Event,
) -> DeviceRun:
    epochs = request.spec.epochs
    started = time.perf_counter()
    on_progress(ProgressEvent(kind="device_start", device=device, epochs=epochs))
    events = []
    for epoch in range(1, epochs + 1):
        stoppable_sleep(epoch_s, stop)
        if stop.is_set():
            break
        event = ProgressEvent(
            kind="epoch", device=device, epoch=epoch, epochs=epochs, elapsed_s=time.perf_counter() - started, loss=1.0
        )
        events.append(event)
        on_progress(event)
    status = "cancelled" if len(events) < epochs else "done"
    return run_from_epoch_events(
        device, backend, synthetic=True, num_train=num_train, epoch_events=events, status=status
    )


def main() -> int:
    """Reads one job on standard input, runs it, and reports events on standard output.

    Returns:
        0 when the job ran (or stopped when asked), 1 when it failed; the reason is sent as an "error" event.
    """
    emitter = EventWriter(claim_stdout())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watch_parent(int(os.environ.get(WORKER_PARENT_ENV, os.getppid())))
    emitter.emit({"type": "started", "pid": os.getpid(), "wall_time": time.time()})
    try:
        request = JobRequest.from_worker_dict(json.loads(sys.stdin.read()))
        hook = read_test_hook(request, os.environ)
        if hook.get("ignore_sigterm"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        job = run_fake_job if hook.get("fake") else run_job
        job(request, emitter, stop, hook)
    except Exception as error:  # every failure becomes a readable "error" event; the traceback goes to stderr
        traceback.print_exc()
        emitter.emit({"type": "error", "message": readable_error(error)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
