"""A worker for tests: `lib.worker`'s process and event protocol, with hooks each job's spec can set.

Tests give `FAKE_WORKER_COMMAND` (`python -m tests.helpers.fake_worker`, `--spare` added for a spare) to a
`lib.runner.JobRunner` or `lib.worker_pool.WorkerPool` as their worker command. A job's
`spec.extra[HOOK_KEY]` is a dict with any of:
    "fake": true               skip Keras; each epoch waits "epoch_s" seconds (default 0.05)
    "test_accuracy": float     the fake run's test accuracy (default: none, as if the test was skipped)
    "sleep_before_s": float    wait before training starts
    "sleep_after_epoch_s": float   wait after each finished epoch
    "raise": "message"         raise RuntimeError(message) before training
    "crash_after_epoch": int   end the process with "crash_signal" (default "SIGKILL") after that epoch
    "ignore_sigterm": true     ignore SIGTERM, so only the runner's SIGKILL ends the worker
    "print": "text"            print text to standard output before training (it must reach stderr)
    "fail_batch": int          a sweep's point at that batch size fails (as a batch too large for memory does)
Without "fake" the job trains for real, exactly as `lib.worker` trains it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from lib import worker
from lib.device_run import DeviceRun, ProgressEvent
from lib.jobs import JobRequest, run_from_epoch_events

HOOK_KEY = "worker_test_hook"  # the spec.extra entry this worker reads
FAKE_WORKER_COMMAND = (sys.executable, "-m", "tests.helpers.fake_worker")  # run from the repository root
FAKE_WORKER_ENTRYPOINT = "python -m tests.helpers.fake_worker"  # the same on a Ray cluster's machine (its own Python)
SLEEP_STEP_S = 0.05  # granularity of the hooks' stoppable waits


def read_hook(request: JobRequest) -> dict[str, Any]:
    """The job's hooks; an empty dict when it has none."""
    hook = request.spec.extra.get(HOOK_KEY)
    return dict(hook) if isinstance(hook, dict) else {}


def stoppable_sleep(seconds: float, stop: threading.Event) -> None:
    """Waits up to `seconds`, returning early once `stop` is set."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(min(SLEEP_STEP_S, max(deadline - time.monotonic(), 0.0)))


def apply_start_hooks(hook: dict[str, Any], stop: threading.Event) -> None:
    """Applies the hooks that act before training: a print, a wait, then a raised error."""
    if "print" in hook:
        print(hook["print"], flush=True)
    stoppable_sleep(float(hook.get("sleep_before_s", 0.0)), stop)
    if "raise" in hook:
        raise RuntimeError(str(hook["raise"]))


def hooked_progress(
    on_progress: Callable[[ProgressEvent], None], hook: dict[str, Any], stop: threading.Event
) -> Callable[[ProgressEvent], None]:
    """Wraps the worker's progress callback with the per-epoch hooks: a crash, then a wait."""
    sleep_after_epoch_s = float(hook.get("sleep_after_epoch_s", 0.0))
    crash_after_epoch = hook.get("crash_after_epoch")
    crash_signal = signal.Signals[str(hook.get("crash_signal", "SIGKILL"))]

    def hooked(event: ProgressEvent) -> None:
        on_progress(event)
        if event.kind != "epoch":
            return
        if crash_after_epoch is not None and event.epoch >= int(crash_after_epoch):
            os.kill(os.getpid(), crash_signal)
        if sleep_after_epoch_s:
            stoppable_sleep(sleep_after_epoch_s, stop)

    return hooked


def hooked_job(
    request: JobRequest, emitter: worker.EventWriter, stop: worker.JobStop, state: worker.WorkerState
) -> None:
    """Runs the job as `lib.worker.run_job` does, with its hooks applied (or faked, with "fake")."""
    hook = read_hook(request)
    if hook.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    on_progress = hooked_progress(worker.make_progress_callback(emitter, stop), hook, stop)
    if hook.get("fake"):
        run_fake_job(request, emitter, stop, hook, state, on_progress)
        return
    dataset = worker.prepare_job(request, emitter, state)
    apply_start_hooks(hook, stop)
    worker.train_job(request, emitter, stop, dataset, on_progress)


def run_fake_job(
    request: JobRequest,
    emitter: worker.EventWriter,
    stop: worker.JobStop,
    hook: dict[str, Any],
    state: worker.WorkerState,
    on_progress: Callable[[ProgressEvent], None],
) -> None:
    """The same events as a real job, with waits instead of Keras training."""
    backend = os.environ.get("KERAS_BACKEND", "none")
    num_train = request.sample_limit or 1
    emitter.emit(
        {
            "type": "ready",
            "backend": backend,
            "import_s": 0.0,
            "data_s": 0.0,
            "num_train": num_train,
            "nice": state.nice,
            "idle_threads": state.idle_threads,
            **worker.machine_facts(),
        }
    )
    apply_start_hooks(hook, stop)
    epoch_s = float(hook.get("epoch_s", 0.05))
    for point in request.points():
        if stop.is_set():
            return
        point_progress = worker.point_progress(on_progress, point)
        if point.sweep_batch and point.sweep_batch == hook.get("fail_batch"):
            run = failed_run(request, point.device, backend, num_train)
        else:
            run = fake_device_run(request, hook, point.device, backend, num_train, epoch_s, point_progress, stop)
        run.sweep_batch, run.repeat = point.sweep_batch, point.repeat
        emitter.emit({"type": "result", "run": run.to_dict()})


def fake_device_run(
    request: JobRequest,
    hook: dict[str, Any],
    device: str,
    backend: str,
    num_train: int,
    epoch_s: float,
    on_progress: Callable[[ProgressEvent], None],
    stop: threading.Event,
) -> DeviceRun:
    """One device's run: `epochs` waits of `epoch_s` seconds, each sent as an epoch with loss 1.0."""
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
    run = run_from_epoch_events(
        device, backend, synthetic=request.synthetic, num_train=num_train, epoch_events=events, status=status
    )
    if status == "done" and "test_accuracy" in hook:
        run.test_accuracy = float(hook["test_accuracy"])
    return run


def failed_run(request: JobRequest, device: str, backend: str, num_train: int) -> DeviceRun:
    """A run that failed before its first epoch ended, with the engine's words for a batch too large."""
    run = run_from_epoch_events(
        device, backend, synthetic=request.synthetic, num_train=num_train, epoch_events=[], status="failed"
    )
    run.error = f"Out of memory on {device}: this batch does not fit. Try a smaller batch size."
    return run


if __name__ == "__main__":
    worker.exit_now(worker.main(job=hooked_job))
