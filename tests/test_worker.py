"""The worker process on its own: its event protocol on stdout, errors, spare mode, priorities.

Jobs that need no Keras run in the tests' worker (tests/helpers/fake_worker.py: lib.worker's protocol, faked
training); the others in `python -m lib.worker` itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import lib.worker
from lib.backend import backend_name
from lib.class_board import progress_fraction
from lib.datasets import DatasetUnavailableError, synthetic_dataset
from lib.device_run import DeviceRun, ProgressEvent
from lib.jobs import JobRequest, progress_event_from_dict, run_from_epoch_events
from lib.presets import PRESETS
from lib.spec import ModelSpec
from lib.worker import (
    SPARE_ARG,
    WORKER_NICE,
    WORKER_NICE_ENV,
    idle_this_thread,
    load_job_data,
    preload_datasets,
    readable_error,
    restore_thread_priorities,
    worker_nice,
)
from lib.worker_pool import DEFAULT_WORKER_COMMAND

from .conftest import REPO_ROOT, process_alive
from .helpers.fake_worker import FAKE_WORKER_COMMAND, HOOK_KEY


def fake_request(**hook) -> JobRequest:
    spec = ModelSpec(hidden_units=(8,), epochs=2, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.01, **hook}})
    return JobRequest(spec=spec, devices=("cpu:0",), sample_limit=100, synthetic=True)


def run_worker(
    request: JobRequest, env: dict[str, str] | None = None, command: tuple[str, ...] = DEFAULT_WORKER_COMMAND
) -> tuple[int, list[dict], str]:
    completed = subprocess.run(
        command,
        input=json.dumps(request.to_worker_dict()),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        timeout=300,
    )
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    assert events[-1] == {"type": "exit", "code": completed.returncode}, "the worker's last word is its exit code"
    return completed.returncode, events[:-1], completed.stderr


def test_worker_sends_started_ready_progress_and_result_events():
    code, events, _ = run_worker(fake_request(), command=FAKE_WORKER_COMMAND)

    assert code == 0
    assert [event["type"] for event in events[:2]] == ["started", "ready"]
    kinds = [event["event"]["kind"] for event in events if event["type"] == "progress"]
    assert kinds == ["device_start", "epoch", "epoch"]
    result = DeviceRun.from_dict(events[-1]["run"])
    assert events[-1]["type"] == "result"
    assert result.device == "cpu:0" and result.status == "done" and len(result.epoch_s) == 2


def start_worker(request: JobRequest, backend: str | None = None) -> subprocess.Popen:
    """A cold worker of `backend` (the active Keras backend when None) that has its job on standard input."""
    backend = backend or backend_name()
    worker = subprocess.Popen(
        DEFAULT_WORKER_COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    worker.stdin.write(json.dumps(request.to_worker_dict()))
    worker.stdin.close()
    return worker


def test_a_real_training_stopped_by_sigterm_keeps_its_progress():
    # How soon the worker leaves (no interpreter teardown) is measured by benchmarks/cancel_latency.py.
    spec = PRESETS["fashion-seed"].spec.with_changes(epochs=50)  # 128 steps an epoch: stopped inside one
    worker = start_worker(JobRequest(spec=spec, devices=("cpu:0",), sample_limit=4096, test_limit=64, synthetic=True))
    events, batch_events = [], 0
    for line in worker.stdout:
        events.append(json.loads(line))
        if events[-1]["type"] == "progress" and events[-1]["event"]["kind"] == "batch":
            batch_events += 1
            if batch_events == 3:
                worker.send_signal(signal.SIGTERM)
    code = worker.wait(60)
    worker.stdout.close()

    assert code == 0
    progress = [progress_event_from_dict(event["event"]) for event in events if event["type"] == "progress"]
    fractions = [progress_fraction(event) for event in progress]
    assert fractions == sorted(fractions), [(event.kind, event.epoch, event.batch) for event in progress]
    assert progress[0].kind == "device_start" and progress[0].epoch == 1
    assert progress[-1].kind == "device_done" and 0 < fractions[-1] < 1
    assert events[-1] == {"type": "exit", "code": 0}  # stopped as asked: not a failure
    assert DeviceRun.from_dict(events[-2]["run"]).status == "cancelled"


def test_sigterm_before_any_training_ends_the_worker_without_training():
    worker = start_worker(JobRequest(spec=ModelSpec(hidden_units=(8,), epochs=1), devices=("cpu:0",), synthetic=True))
    assert json.loads(worker.stdout.readline())["type"] == "started"
    time.sleep(0.3)  # the worker reads its job and starts importing TensorFlow, which takes seconds

    worker.send_signal(signal.SIGTERM)
    code = worker.wait(60)

    assert code in (0, -signal.SIGTERM)  # 0 once it had its job; SIGTERM's default before
    assert [json.loads(line)["type"] for line in worker.stdout] in ([], ["ready"])
    worker.stdout.close()


def test_printed_text_goes_to_stderr_not_the_event_stream():
    code, events, stderr = run_worker(fake_request(print="a library printing to stdout"), command=FAKE_WORKER_COMMAND)

    assert code == 0 and events[-1]["type"] == "result"
    assert "a library printing to stdout" in stderr


def test_worker_error_becomes_an_error_event_and_exit_code_1():
    code, events, stderr = run_worker(fake_request(**{"raise": "broken on purpose"}), command=FAKE_WORKER_COMMAND)

    assert code == 1
    assert events[-1] == {"type": "error", "message": "RuntimeError: broken on purpose"}
    assert "Traceback" in stderr


def test_a_real_data_result_sends_its_confusion_matrix_and_sample_predictions():
    spec = ModelSpec(hidden_units=(16,), batch_size=64, epochs=1)
    request = JobRequest(spec=spec, devices=("cpu:0",), sample_limit=256, test_limit=40)

    code, events, stderr = run_worker(request, {"KERAS_BACKEND": "jax"})

    assert code == 0, stderr[-2000:]
    result = DeviceRun.from_dict(events[-1]["run"])  # as the runner reads it
    assert result.status == "done" and result.synthetic is False
    assert sum(map(sum, result.confusion)) == 40 and len(result.confusion) == 10
    assert len(result.sample_predictions) == 12
    assert {"index", "true", "predicted"} == set(result.sample_predictions[0])


def test_missing_real_dataset_is_a_readable_error(tmp_path):
    request = JobRequest(spec=ModelSpec(dataset="cifar10", hidden_units=(8,), epochs=1), devices=("cpu:0",))
    env = {"KERAS_BACKEND": "jax", "KERAS_HOME": str(tmp_path / "keras"), "GPUX_DATA_DIR": str(tmp_path / "data")}

    code, events, _ = run_worker(request, env)

    assert code == 1
    assert events[-1]["type"] == "error"
    assert events[-1]["message"].startswith("CIFAR-10 is not available offline")


def test_worker_exits_when_the_server_that_started_it_dies():
    job = json.dumps(fake_request(sleep_before_s=60).to_worker_dict())
    output = subprocess.run(
        [sys.executable, "-m", "tests.helpers.orphan_worker"], input=job, capture_output=True, text=True, cwd=REPO_ROOT
    )
    worker_pid = int(output.stdout)

    deadline = time.monotonic() + 30
    while process_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(worker_pid)


def test_jax_worker_does_not_import_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    command = [sys.executable, "-m", "tests.helpers.tensorflow_blocked_report"]
    output = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env)

    assert output.stdout.split() == ["True", "False"], output.stderr


def test_request_round_trips_through_worker_json():
    request = JobRequest(
        spec=ModelSpec(hidden_units=(4, 2), epochs=3), devices=("cpu:0", "gpu:0"), sample_limit=10, test_limit=5
    )

    again = JobRequest.from_worker_dict(json.loads(json.dumps(request.to_worker_dict())))

    assert again == request


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DatasetUnavailableError("CIFAR-10 is not available offline. Put it in data/."), "CIFAR-10 is not available"),
        (ValueError("bad value\nlong details"), "ValueError: bad value"),
        (MemoryError(), "did not fit in the device's memory"),
    ],
)
def test_readable_error(error, expected):
    message = readable_error(error)

    assert message.startswith(expected) or expected in message
    assert "long details" not in message


def test_run_from_epoch_events_keeps_finished_epochs():
    events = [
        ProgressEvent(kind="epoch", device="cpu:0", epoch=1, elapsed_s=3.0, loss=2.0, accuracy=0.2),
        ProgressEvent(kind="epoch", device="cpu:0", epoch=2, elapsed_s=4.0, loss=1.5, accuracy=0.4),
        ProgressEvent(kind="epoch", device="cpu:0", epoch=3, elapsed_s=5.5, loss=1.0, accuracy=0.6),
    ]

    run = run_from_epoch_events(
        "cpu:0", "jax", synthetic=True, num_train=300, epoch_events=events, status="cancelled", start_elapsed_s=0.5
    )

    assert run.epoch_s == pytest.approx([2.5, 1.0, 1.5])
    assert run.first_epoch_s == pytest.approx(2.5) and run.steady_epoch_s == pytest.approx(1.25)
    assert run.total_s == pytest.approx(5.0) and run.samples_per_s == pytest.approx(240.0)
    assert run.train_loss == [2.0, 1.5, 1.0] and run.status == "cancelled"


def start_spare(env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*DEFAULT_WORKER_COMMAND, SPARE_ARG],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "KERAS_BACKEND": "jax", **(env or {})},
    )


def test_a_spare_whose_stdin_closes_without_a_job_exits_quietly():
    spare = start_spare()

    stdout, _ = spare.communicate("", timeout=300)

    events = [json.loads(line) for line in stdout.splitlines()]
    assert spare.returncode == 0
    assert events[0]["type"] == "started" and {event["type"] for event in events} <= {"started", "warm"}


def test_sigterm_ends_a_spare_that_has_no_job_yet():
    spare = start_spare()
    assert json.loads(spare.stdout.readline())["type"] == "started"

    spare.terminate()

    assert spare.wait(300) == -signal.SIGTERM
    spare.stdin.close()
    spare.stdout.close()


@pytest.mark.parametrize(("setting", "expected"), [(None, WORKER_NICE), ("0", 0), ("19", 19), (" 5 ", 5)])
def test_worker_nice_setting(setting, expected):
    assert worker_nice({} if setting is None else {WORKER_NICE_ENV: setting}) == expected


@pytest.mark.parametrize("setting", ["-1", "20", "low", "2.5"])
def test_a_bad_worker_nice_setting_is_a_readable_error(setting):
    with pytest.raises(ValueError, match=r"from 0 .* to 19 .*GPUX_WORKER_NICE"):
        worker_nice({WORKER_NICE_ENV: setting})


def test_idle_this_thread_lowers_only_the_calling_thread():
    seen = {}

    def lower():
        seen["priority"] = idle_this_thread()
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=lower)
    thread.start()
    thread.join()

    assert seen == {"priority": "idle", "policy": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) != os.SCHED_IDLE


class FakeScheduler:
    """Thread priorities as the OS keeps them: it refuses any change to `refused` threads; `gone` ones ended."""

    def __init__(self, threads: dict[int, tuple[int, int]], refused: set[int], gone: set[int]):
        self.threads = dict(threads)  # thread id -> (policy, nice)
        self.refused = refused
        self.gone = gone

    def check(self, thread_id: int) -> None:
        if thread_id in self.gone:
            raise ProcessLookupError(thread_id)
        if thread_id in self.refused:
            raise PermissionError(thread_id)

    def sched_getscheduler(self, thread_id):
        if thread_id in self.gone:
            raise ProcessLookupError(thread_id)
        return self.threads[thread_id][0]

    def sched_setscheduler(self, thread_id, policy, param):
        self.check(thread_id)
        self.threads[thread_id] = (policy, self.threads[thread_id][1])

    def getpriority(self, which, thread_id):
        return self.threads[thread_id][1]

    def setpriority(self, which, thread_id, nice):
        self.check(thread_id)
        self.threads[thread_id] = (self.threads[thread_id][0], nice)


def test_restore_thread_priorities_brings_idle_and_lower_threads_back(monkeypatch):
    idle, other = os.SCHED_IDLE, os.SCHED_OTHER
    fake = FakeScheduler(
        {1: (other, 10), 2: (idle, 10), 3: (other, 19), 4: (idle, 10), 5: (other, 0), 6: (idle, 10)},
        refused={4},
        gone={6},
    )
    monkeypatch.setattr(lib.worker, "_thread_ids", lambda: sorted(fake.threads))
    for name in ("sched_getscheduler", "sched_setscheduler", "getpriority", "setpriority"):
        monkeypatch.setattr(os, name, getattr(fake, name))

    still_lower = restore_thread_priorities(10)

    assert still_lower == 1
    assert fake.threads == {
        1: (other, 10),
        2: (other, 10),
        3: (other, 10),
        4: (idle, 10),  # the operating system refused
        5: (other, 0),  # already above the training priority: left alone
        6: (idle, 10),  # ended meanwhile
    }


def test_a_job_uses_the_dataset_a_spare_preloaded_unless_it_asks_for_generated_data():
    preloaded = {"fashion_mnist": synthetic_dataset("fashion_mnist", 64, 16, seed=3)}
    real = JobRequest(spec=ModelSpec(hidden_units=(8,)), devices=("cpu:0",))
    generated = dataclasses.replace(real, synthetic=True, sample_limit=32, test_limit=8)

    assert load_job_data(real, preloaded) is preloaded["fashion_mnist"]
    assert len(load_job_data(generated, preloaded).x_train) == 32


def test_preload_reads_only_small_local_datasets(tmp_path, monkeypatch, keras_home):
    monkeypatch.setenv("GPUX_DATA_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("GPUX_FASHION_MNIST_DIR", str(tmp_path / "none"))

    assert preload_datasets() == {}  # no local copy of anything
    assert preload_datasets(max_bytes=0) == {}
