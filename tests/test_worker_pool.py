"""WorkerPool with real worker processes: warm spares handed over and replaced, cold starts, priorities, close.

The pools start the tests' worker (tests/helpers/fake_worker.py: `lib.worker`'s process and protocol, with
hooks). Most jobs use its "fake" hook (training skipped), so the pool logic is exercised in seconds; the spares
still import Keras on JAX, at idle priority. One job trains for real, once in a spare and once cold, to show
that both send the same events.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from lib.device_run import DeviceRun
from lib.jobs import JobRequest
from lib.spec import ModelSpec
from lib.worker import MAX_NICE, WORKER_NICE, WORKER_NICE_ENV
from lib.worker_pool import WARM_WORKER_ENV, WorkerPool, WorkerProcess

from .conftest import REPO_ROOT, process_alive, wait_until
from .helpers.fake_worker import FAKE_WORKER_COMMAND, HOOK_KEY

BACKEND = "jax"  # the quickest backend to import, so spares warm up quickly
BACKEND_ENV = {"KERAS_BACKEND": BACKEND}
TEST_ENV = {
    **os.environ,
    WARM_WORKER_ENV: "1",  # tests/conftest.py turns spares off for every other test
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "JAX_PLATFORMS": "cpu",
}
WAIT_S = 300  # upper bound for a worker to end; only reached when something is broken
LONG_S = 60  # a wait that the test always cuts short


def fake_request(**hook) -> JobRequest:
    spec = ModelSpec(hidden_units=(8,), epochs=2, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.01, **hook}})
    return JobRequest(spec=spec, devices=("cpu:0",), sample_limit=100, synthetic=True)


def real_request() -> JobRequest:
    spec = ModelSpec(hidden_units=(8,), epochs=1, batch_size=32)
    return JobRequest(spec=spec, devices=("cpu:0",), sample_limit=128, test_limit=64, synthetic=True)


@pytest.fixture
def make_pool():
    pools = []

    def make(env: dict[str, str] | None = None, **kwargs) -> WorkerPool:
        pool = WorkerPool(FAKE_WORKER_COMMAND, env or TEST_ENV, cwd=REPO_ROOT, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def send_job(worker: WorkerProcess, request: JobRequest) -> None:
    worker.popen.stdin.write(json.dumps(request.to_worker_dict()))
    worker.popen.stdin.close()


def read_until(worker: WorkerProcess, kind: str) -> list[dict]:
    """Reads events until one of type `kind` (included) or the end of the stream."""
    events = []
    for line in worker.popen.stdout:
        events.append(json.loads(line))
        if events[-1]["type"] == kind:
            break
    return events


def run_to_end(worker: WorkerProcess, request: JobRequest) -> tuple[int, list[dict]]:
    send_job(worker, request)
    events = [json.loads(line) for line in worker.popen.stdout]
    code = worker.popen.wait(WAIT_S)
    worker.stderr.close()
    assert events[-1] == {"type": "exit", "code": code}, "the worker's last word is its exit code"
    return code, events[:-1]


def end(worker: WorkerProcess) -> None:
    os.killpg(worker.popen.pid, signal.SIGKILL)
    worker.popen.wait(WAIT_S)
    worker.stderr.close()


def job_events(events: list[dict]) -> list[str]:
    """The event types and progress kinds of a job, without throttled batch events or a spare's "warm"."""
    names = []
    for event in events:
        if event["type"] == "progress":
            if event["event"]["kind"] != "batch":
                names.append(event["event"]["kind"])
        elif event["type"] != "warm":
            names.append(event["type"])
    return names


def thread_priorities(pid: int) -> list[tuple[int, int]]:
    """The (scheduling policy, nice value) of each of a process's threads, from /proc."""
    pairs = []
    for thread_id in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{thread_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # fields 3.. of proc(5), after the command name
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended after it was listed (its stat file then answers ENOENT or ESRCH)
        pairs.append((int(fields[38]), int(fields[16])))  # field 41 policy, field 19 nice
    return pairs


def test_spare_warms_up_then_runs_a_real_job_with_the_same_events_as_a_cold_worker(make_pool):
    cold_code, cold_events = run_to_end(make_pool(warm=False).launch(BACKEND, BACKEND_ENV), real_request())
    pool = make_pool()
    pool.start_spare(BACKEND, BACKEND_ENV)

    spare = pool.launch(BACKEND, BACKEND_ENV)
    code, events = run_to_end(spare, real_request())

    assert spare.warm
    assert (code, cold_code) == (0, 0)
    types = [event["type"] for event in events]
    assert types[:2] == ["started", "warm"] and types.index("warm") < types.index("ready")
    warm = events[1]
    assert warm["priority"] == "idle" and warm["import_s"] > 0
    assert job_events(events) == job_events(cold_events)
    assert job_events(events) == ["started", "ready", "device_start", "epoch", "device_done", "result"]
    ready = next(event for event in events if event["type"] == "ready")
    assert ready["backend"] == BACKEND and ready["num_train"] == 128
    run = DeviceRun.from_dict(events[-1]["run"])
    assert run.status == "done" and len(run.epoch_s) == 1 and run.num_test == 64


def test_launch_hands_over_the_spare_and_only_start_spare_starts_another(make_pool):
    pool = make_pool()

    first = pool.launch(BACKEND, BACKEND_ENV)
    assert not first.warm and pool.spare_pid(BACKEND) is None  # no spare imports beside a job
    spare_pid = pool.start_spare(BACKEND, BACKEND_ENV)
    second = pool.launch(BACKEND, BACKEND_ENV)

    assert spare_pid is not None and spare_pid != first.popen.pid
    assert second.warm and second.popen.pid == spare_pid
    assert pool.spare_pid(BACKEND) is None
    next_spare = pool.start_spare(BACKEND, BACKEND_ENV)
    assert next_spare is not None and next_spare not in (first.popen.pid, spare_pid)
    for worker in (first, second):
        code, events = run_to_end(worker, fake_request())
        assert code == 0 and events[-1]["type"] == "result"


def test_a_dead_spare_is_replaced_by_a_cold_start(make_pool):
    pool = make_pool()
    dead_pid = pool.start_spare(BACKEND, BACKEND_ENV)
    os.killpg(dead_pid, signal.SIGKILL)
    wait_until(lambda: pool.spare_pid(BACKEND) is None, WAIT_S, "the killed spare to be noticed")

    worker = pool.launch(BACKEND, BACKEND_ENV)
    code, events = run_to_end(worker, fake_request())

    assert not worker.warm and worker.popen.pid != dead_pid
    assert code == 0 and events[-1]["type"] == "result"
    assert pool.start_spare(BACKEND, BACKEND_ENV) not in (None, dead_pid)


def test_a_spare_started_with_other_settings_does_not_serve_the_job(make_pool):
    pool = make_pool()
    old_pid = pool.start_spare(BACKEND, BACKEND_ENV)

    worker = pool.launch(BACKEND, {**BACKEND_ENV, "GPUX_EXTRA": "1"})

    assert not worker.warm and not process_alive(old_pid)
    end(worker)


def test_close_ends_every_spare_and_starts_no_more(make_pool):
    pool = make_pool()
    worker = pool.launch(BACKEND, BACKEND_ENV)
    spare_pids = [pool.start_spare(BACKEND, BACKEND_ENV), pool.start_spare("torch", {"KERAS_BACKEND": "torch"})]

    pool.close()
    later = pool.launch(BACKEND, BACKEND_ENV)

    assert None not in spare_pids
    assert [process_alive(pid) for pid in spare_pids] == [False, False]
    assert pool.spare_pid(BACKEND) is None and pool.start_spare(BACKEND, BACKEND_ENV) is None
    for handed_out in (worker, later):
        code, _ = run_to_end(handed_out, fake_request())
        assert code == 0


@pytest.mark.parametrize(
    ("env", "warm"),
    [(TEST_ENV, False), ({**TEST_ENV, WARM_WORKER_ENV: "0"}, True)],
    ids=["warm-false", "setting-off"],
)
def test_spares_off_never_start_a_spare(make_pool, env, warm):
    pool = make_pool(env, warm=warm)

    workers = [pool.launch(BACKEND, BACKEND_ENV) for _ in range(2)]

    assert not pool.warm
    assert [worker.warm for worker in workers] == [False, False]
    assert pool.spare_pid(BACKEND) is None and pool.start_spare(BACKEND, BACKEND_ENV) is None
    for worker in workers:
        end(worker)


@pytest.mark.parametrize("spare", [False, True], ids=["cold", "spare"])
@pytest.mark.parametrize("setting", [None, "0"], ids=["default", "off"])
def test_worker_trains_at_the_worker_nice_value(make_pool, spare, setting):
    env = TEST_ENV if setting is None else {**TEST_ENV, WORKER_NICE_ENV: setting}
    pool = make_pool(env)
    if spare:
        pool.start_spare(BACKEND, BACKEND_ENV)
    worker = pool.launch(BACKEND, BACKEND_ENV)
    send_job(worker, fake_request(sleep_before_s=LONG_S))

    ready = read_until(worker, "ready")[-1]
    training = thread_priorities(worker.popen.pid)
    main_thread_policy = os.sched_getscheduler(worker.popen.pid)
    end(worker)

    own_nice = os.getpriority(os.PRIO_PROCESS, 0)
    expected = own_nice if setting == "0" else min(own_nice + WORKER_NICE, MAX_NICE)
    assert worker.warm == spare
    assert ready["nice"] == expected and {nice for _, nice in training} == {expected}  # every thread
    assert main_thread_policy == os.SCHED_OTHER  # a spare's main thread never idles, so neither does its job
    # A spare's import threads leave idle priority where the process may raise priorities (CAP_SYS_NICE);
    # elsewhere the worker says how many stayed.
    assert sum(policy == os.SCHED_IDLE for policy, _ in training) == ready["idle_threads"]


def test_a_bad_nice_setting_is_refused_when_the_pool_is_made():
    with pytest.raises(ValueError, match=WORKER_NICE_ENV):
        WorkerPool(FAKE_WORKER_COMMAND, {**TEST_ENV, WORKER_NICE_ENV: "-5"}, cwd=REPO_ROOT)
