"""JobRunner with real worker processes: queue order, one job at a time, cancel, limits, crashes, persistence.

The runners start the tests' worker (tests/helpers/fake_worker.py: `lib.worker`'s process and protocol, with
hooks). Most jobs use its "fake" hook (the same events as training, with short waits instead of Keras), so the
queue logic is exercised in seconds; these runners start every worker cold (`warm_workers=False`), except the
test of the warm spare. Two jobs train for real: one on the active backend end to end, one on JAX cancelled
mid-run. The class-server behaviour (coalescing, the fair queue, the durable queue, the board) is in
tests/test_runner_class.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator

import pytest

from lib.backend import BackendUnavailableError, backend_name
from lib.class_board import progress_fraction, progress_text
from lib.device_run import DeviceRun
from lib.devices import DeviceNotFoundError
from lib.estimates import DEFAULT_OVERHEAD_S, estimate_job
from lib.jobs import (
    JobNotFoundError,
    JobState,
    LimitError,
    OwnerBusyError,
    QueueFullError,
    RunnerClosedError,
)
from lib.limits import ServerLimits
from lib.runner import JobRunner
from lib.spec import ModelSpec, SpecError
from lib.store import RunStore

from .conftest import REPO_ROOT, process_alive
from .conftest import wait_until as wait_for
from .helpers.fake_worker import FAKE_WORKER_COMMAND, HOOK_KEY

TEST_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
WAIT_S = 120  # upper bound for one job to end; only reached when something is broken
LONG_S = 60  # a wait that the test always cuts short


def fake_spec(epochs: int = 2, **hook) -> ModelSpec:
    """A tiny spec whose worker skips Keras and follows the test hook."""
    return ModelSpec(hidden_units=(8,), epochs=epochs, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.02, **hook}})


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite")


@contextlib.contextmanager
def runners(default_store: RunStore) -> Iterator:
    """Yields a function that makes test runners (the tests' worker, cold); shuts them all down after."""
    made = []

    def make(limits: ServerLimits | None = None, **kwargs) -> JobRunner:
        kwargs.setdefault("env", TEST_ENV)
        kwargs.setdefault("worker_command", FAKE_WORKER_COMMAND)
        kwargs.setdefault("warm_workers", False)
        runner = JobRunner(kwargs.pop("store", default_store), limits or ServerLimits(), **kwargs)
        made.append(runner)
        return runner

    try:
        yield make
    finally:
        for runner in made:
            runner.shutdown()


@pytest.fixture
def make_runner(store):
    with runners(store) as make:
        yield make


def submit_fake(runner: JobRunner, owner: str, client: str | None = None, **hook):
    """Submits a fake job; each owner's spec differs (its seed), so jobs of different owners never coalesce."""
    epochs = hook.pop("epochs", 2)
    spec = fake_spec(epochs, **hook).with_changes(seed=zlib.crc32(owner.encode()))
    return runner.submit(owner, spec, ["cpu:0"], sample_limit=100, synthetic=True, client=client)


def wait_until(condition, timeout_s: float = WAIT_S, what: str = "condition"):
    return wait_for(condition, timeout_s, what)


def wait_for_epoch(runner: JobRunner, job_id: str, epoch: int = 1) -> None:
    def reached():
        event = runner.get(job_id).latest_progress("cpu:0")
        return event is not None and event.epoch >= epoch and event.kind in ("epoch", "device_done")

    wait_until(reached, what=f"epoch {epoch} of job {job_id}")


def stored(store: RunStore, job_id: str):
    return store.runs(job_id=job_id)


def test_jobs_run_in_fifo_order_one_at_a_time(make_runner, store):
    runner = make_runner()
    submitted = [submit_fake(runner, f"student-{i}") for i in range(4)]

    finished = [runner.wait(job.id, WAIT_S) for job in submitted]

    assert [job.state for job in finished] == [JobState.DONE] * 4
    starts = [job.started_at for job in finished]
    assert starts == sorted(starts)
    for earlier, later in zip(finished, finished[1:], strict=False):
        assert later.started_at >= earlier.finished_at, "two jobs ran at the same time"
    for job in finished:
        rows = stored(store, job.id)
        assert list(rows["status"]) == ["done"]
        assert rows["epoch_s"].iloc[0] == pytest.approx(job.results[0].epoch_s)


def test_max_concurrent_two_overlaps_jobs(make_runner):
    runner = make_runner(max_concurrent=2)
    first = submit_fake(runner, "a", sleep_before_s=LONG_S)
    second = submit_fake(runner, "b", sleep_before_s=LONG_S)
    third = submit_fake(runner, "c")

    wait_until(lambda: runner.get(second.id).state == JobState.RUNNING, what="the second job to start")
    assert runner.get(first.id).state == JobState.RUNNING
    assert runner.get(third.id).position == 1
    runner.cancel(first.id)
    assert runner.wait(third.id, WAIT_S).state == JobState.DONE


def test_queue_positions_estimates_and_cancel_of_queued_job(make_runner, store):
    runner = make_runner()
    blocker = submit_fake(runner, "blocker", sleep_before_s=LONG_S)
    queued = [submit_fake(runner, f"q{i}") for i in range(3)]
    wait_until(lambda: runner.get(blocker.id).state == JobState.RUNNING, what="the first job to start")

    snapshots = runner.jobs()[1:]  # one consistent view: every estimate taken at the same moment
    assert [job.id for job in snapshots] == [job.id for job in queued]
    assert runner.get(blocker.id).position == 0
    assert [job.position for job in snapshots] == [1, 2, 3]
    estimates = [job.estimated_start_s for job in snapshots]
    assert estimates == sorted(estimates) and estimates[0] > 0
    assert estimates[2] - estimates[1] == pytest.approx(snapshots[1].estimated_duration_s)
    assert runner.queue_length() == 4

    cancelled = runner.cancel(queued[1].id, owner="q1")

    assert cancelled.state == JobState.CANCELLED and cancelled.position == 0
    assert [runner.get(queued[i].id).position for i in (0, 2)] == [1, 2]
    rows = stored(store, queued[1].id)
    assert list(rows["status"]) == ["cancelled"] and list(rows["epoch_s"].iloc[0]) == []
    with pytest.raises(JobNotFoundError):
        runner.cancel(queued[0].id, owner="someone-else")


def test_cancel_running_job_stores_finished_epochs(make_runner, store):
    runner = make_runner()
    job = submit_fake(runner, "a", epochs=5, sleep_after_epoch_s=LONG_S)
    next_job = submit_fake(runner, "b")
    wait_for_epoch(runner, job.id, 1)

    runner.cancel(job.id, owner="a")
    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.CANCELLED
    rows = stored(store, job.id)
    assert list(rows["status"]) == ["cancelled"]
    assert len(rows["epoch_s"].iloc[0]) == 1
    assert runner.wait(next_job.id, WAIT_S).state == JobState.DONE


def test_worker_ignoring_sigterm_is_killed_and_keeps_epochs(make_runner, store):
    runner = make_runner(cancel_grace_s=0.5)
    job = submit_fake(runner, "a", epochs=5, sleep_after_epoch_s=LONG_S, ignore_sigterm=True)
    wait_for_epoch(runner, job.id, 1)

    runner.cancel(job.id)
    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.CANCELLED
    assert len(final.results[0].epoch_s) == 1 and final.results[0].status == "cancelled"
    assert len(stored(store, job.id)["epoch_s"].iloc[0]) == 1


def test_a_worker_that_ignores_sigterm_is_killed_and_the_job_ends_cancelled(make_runner):
    # How long a cancel takes is measured by benchmarks/cancel_latency.py, not asserted here.
    runner = make_runner()  # the server's grace period (CANCEL_GRACE_S) before the kill
    job = submit_fake(runner, "a", epochs=5, sleep_after_epoch_s=LONG_S, ignore_sigterm=True)
    wait_for_epoch(runner, job.id, 1)

    assert runner.cancel(job.id).stop_requested
    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.CANCELLED
    assert not process_alive(final.worker["started"]["pid"])


def test_time_limit_stops_job(make_runner, store):
    runner = make_runner(ServerLimits(job_seconds=1))
    job = submit_fake(runner, "a", sleep_before_s=LONG_S)

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.TIMED_OUT
    assert "time limit of 1.00 s per job" in final.error and "GPUX_" not in final.error  # the owner's setting
    assert list(stored(store, job.id)["status"]) == ["timed_out"]


def test_worker_killed_with_sigkill_fails_readably_and_runner_carries_on(make_runner, store):
    runner = make_runner()
    job = submit_fake(runner, "a", epochs=4, sleep_after_epoch_s=LONG_S)
    next_job = submit_fake(runner, "b")
    wait_for_epoch(runner, job.id, 1)

    os.kill(runner.get(job.id).pid, signal.SIGKILL)
    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.FAILED
    assert "SIGKILL" in final.error and "memory" in final.error
    rows = stored(store, job.id)
    assert list(rows["status"]) == ["failed"] and len(rows["epoch_s"].iloc[0]) == 1
    assert runner.wait(next_job.id, WAIT_S).state == JobState.DONE


def test_worker_segfault_fails_readably(make_runner):
    runner = make_runner()
    job = submit_fake(runner, "a", crash_after_epoch=1, crash_signal="SIGSEGV")

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.FAILED
    assert "SIGSEGV" in final.error


def test_worker_that_raises_fails_with_its_message_and_runner_carries_on(make_runner, store):
    runner = make_runner()
    job = submit_fake(runner, "a", **{"raise": "the hook broke on purpose"})
    next_job = submit_fake(runner, "b")

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.FAILED
    assert final.error == "RuntimeError: the hook broke on purpose"
    assert list(stored(store, job.id)["error"]) == ["RuntimeError: the hook broke on purpose"]
    assert runner.wait(next_job.id, WAIT_S).state == JobState.DONE


def test_full_queue_refuses_new_jobs(make_runner):
    runner = make_runner(ServerLimits(queue=2))
    blocker = submit_fake(runner, "a", sleep_before_s=LONG_S)
    submit_fake(runner, "b")

    with pytest.raises(QueueFullError, match="The queue is full: 2 jobs") as refused:
        submit_fake(runner, "c")
    assert "try again" in str(refused.value) and "minute" in str(refused.value)
    assert "GPUX_" not in str(refused.value)  # where the limit is set is for the server's owner
    assert runner.queue_length() == 2

    runner.cancel(blocker.id)
    runner.wait(blocker.id, WAIT_S)
    assert submit_fake(runner, "c").state == JobState.QUEUED


def test_one_job_per_session(make_runner):
    runner = make_runner()
    first = submit_fake(runner, "same-tab", sleep_before_s=LONG_S)

    with pytest.raises(OwnerBusyError, match="cancel it"):
        submit_fake(runner, "same-tab")

    runner.cancel(first.id)
    runner.wait(first.id, WAIT_S)
    assert submit_fake(runner, "same-tab").owner == "same-tab"


@pytest.mark.parametrize(
    ("changes", "submit_args", "error"),
    [
        ({"epochs": 51}, {}, SpecError),
        ({"hidden_units": (4096, 4096, 4096)}, {}, SpecError),
        ({"batch_size": 100_000}, {}, SpecError),
        ({}, {"sample_limit": 60_001}, LimitError),
        ({}, {"sample_limit": None}, LimitError),
        ({}, {"sample_limit": 0}, LimitError),
        ({}, {"devices": []}, DeviceNotFoundError),
        ({}, {"devices": ["tpu:0"]}, DeviceNotFoundError),
        ({}, {"devices": ["gpu:0"]}, DeviceNotFoundError),
        ({}, {"devices": ["cpu:0", "CPU:0"]}, DeviceNotFoundError),
        ({}, {"backend": "theano"}, BackendUnavailableError),
    ],
)
def test_requests_over_limits_are_refused_before_queueing(make_runner, store, changes, submit_args, error):
    runner = make_runner(ServerLimits(epochs=50, params=10_000_000, samples=10_000), available_devices=["cpu:0"])
    args = {"devices": ["cpu:0"], "sample_limit": 500, **submit_args}

    with pytest.raises(error):
        runner.submit("a", fake_spec().with_changes(**changes), args.pop("devices"), **args)

    assert runner.queue_length() == 0 and runner.jobs() == []
    assert store.count() == 0 and store.jobs() == []


def test_results_survive_a_new_runner_on_the_same_database(make_runner, store):
    runner = make_runner()
    job = runner.wait(submit_fake(runner, "a").id, WAIT_S)
    runner.shutdown()

    reopened = RunStore(store.path)
    second = make_runner(store=reopened)

    rows = reopened.runs(job_id=job.id)
    assert list(rows["status"]) == ["done"]
    assert rows["epoch_s"].iloc[0] == pytest.approx(job.results[0].epoch_s)
    assert second.interrupted_at_start == 0
    assert second.wait(submit_fake(second, "b").id, WAIT_S).state == JobState.DONE
    assert reopened.count() == 2


def test_a_server_that_dies_leaves_its_running_job_interrupted_and_its_queue_for_the_next(tmp_path, make_runner):
    db = tmp_path / "runs.sqlite"
    command = [sys.executable, "-m", "tests.helpers.dying_server", str(db), str(LONG_S)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    job_id, worker_pid, *queued_ids = process.stdout.readline().split()
    store = RunStore(db)
    assert list(store.runs(job_id=job_id)["status"]) == ["running"]

    process.kill()
    process.wait()
    wait_until(lambda: not process_alive(int(worker_pid)), what="the orphaned worker to exit")
    runner = make_runner(store=store)

    assert runner.interrupted_at_start == 1
    rows = store.runs(job_id=job_id)
    assert list(rows["status"]) == ["interrupted"] and "restarted" in rows["error"].iloc[0]
    interrupted = runner.adopt(job_id, "a-after-reload")
    assert interrupted.state == JobState.INTERRUPTED and "restarted" in interrupted.error
    finals = [runner.wait(queued_id, WAIT_S) for queued_id in queued_ids]
    assert [job.state for job in finals] == [JobState.DONE, JobState.DONE]
    assert finals[0].started_at < finals[1].started_at
    assert [runner.get(queued_id, owner).id for queued_id, owner in zip(queued_ids, "bc", strict=True)] == queued_ids
    clients = {record.job_id: record.client for record in store.jobs()}
    assert [clients[queued_id] for queued_id in queued_ids] == ["10.0.0.b", "10.0.0.c"]


def test_shutdown_interrupts_the_running_job_and_keeps_the_queue_for_the_next_server(make_runner, store):
    runner = make_runner()
    running = submit_fake(runner, "a", sleep_before_s=LONG_S)
    queued = submit_fake(runner, "b")
    wait_until(lambda: runner.get(running.id).state == JobState.RUNNING, what="the first job to start")

    runner.shutdown()

    assert runner.get(running.id).state == JobState.INTERRUPTED
    assert list(store.runs()["status"]) == ["interrupted"]
    assert [(job.job_id, job.state) for job in store.unfinished_jobs()] == [(queued.id, JobState.QUEUED)]
    with pytest.raises(RunnerClosedError):
        submit_fake(runner, "c")


def test_twenty_jobs_from_twenty_threads_each_end_with_one_record(make_runner, store):
    runner = make_runner(ServerLimits(queue=30))
    barrier = threading.Barrier(20)
    job_ids: list[str] = []
    errors: list[BaseException] = []

    def click_train(index: int) -> None:
        barrier.wait()
        try:
            job_ids.append(submit_fake(runner, f"student-{index}", epochs=1).id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=click_train, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and len(set(job_ids)) == 20
    finals = [runner.wait(job_id, WAIT_S) for job_id in job_ids]
    assert {job.state for job in finals} == {JobState.DONE}
    counts = store.runs()["job_id"].value_counts()
    assert sorted(counts.index) == sorted(job_ids)
    assert set(counts) == {1}


def test_backend_is_chosen_per_job(make_runner):
    runner = make_runner()
    job = runner.submit("a", fake_spec(), ["cpu:0"], sample_limit=100, synthetic=True, backend="jax")

    final = runner.wait(job.id, WAIT_S)

    assert final.results[0].backend == "jax"
    assert final.worker["ready"]["backend"] == "jax"


def test_the_runner_estimates_with_the_same_estimator_as_the_pages(make_runner, store):
    backend = backend_name()  # the active one: a job on a backend this machine lacks is refused
    spec = ModelSpec(hidden_units=(32,), epochs=2)
    past = DeviceRun(device="cpu:0", backend=backend, synthetic=True, num_train=1000, epoch_s=[6.0, 5.0])
    past.first_epoch_s, past.steady_epoch_s, past.total_s = 6.0, 5.0, 11.0
    past.achieved_flops_per_s = 1e8
    store.record(spec, past)
    runner = make_runner()
    blocker = submit_fake(runner, "blocker", sleep_before_s=LONG_S)

    job = runner.submit("a", spec.with_changes(epochs=4), ["cpu:0"], sample_limit=1000, synthetic=True, backend=backend)

    expected = estimate_job(
        spec.with_changes(epochs=4),
        1000,
        ["cpu:0"],
        store.runs(status="done"),
        overhead_s=DEFAULT_OVERHEAD_S,
        backend=backend,
    )
    assert expected.based_on == 1  # the stored run, not a first guess
    assert job.estimated_duration_s == pytest.approx(expected.total_s)
    runner.cancel(blocker.id)


def test_snapshots_are_immutable_copies(make_runner):
    runner = make_runner()
    job = runner.wait(submit_fake(runner, "a").id, WAIT_S)

    with pytest.raises(dataclasses.FrozenInstanceError):
        job.state = JobState.QUEUED
    with pytest.raises(TypeError):
        job.progress["cpu:0"] = None
    job.results[0].epoch_s.append(99.0)
    assert 99.0 not in runner.get(job.id).results[0].epoch_s


def test_real_job_on_the_active_backend_end_to_end(make_runner, store):
    runner = make_runner()
    backend = backend_name()  # TensorFlow in CI; JAX on the GPU machine, which has no TensorFlow
    spec = ModelSpec(hidden_units=(16,), epochs=2, batch_size=32)
    job = runner.submit("a", spec, ["cpu:0"], sample_limit=256, test_limit=64, synthetic=True, backend=backend)

    final = runner.wait(job.id, WAIT_S * 2)

    assert final.state == JobState.DONE, final.error
    run = final.results[0]
    assert run.backend == backend and run.num_train == 256 and len(run.epoch_s) == 2
    assert run.test_accuracy is not None
    assert final.progress["cpu:0"].kind == "device_done"
    assert progress_fraction(final.progress["cpu:0"]) == 1.0
    assert progress_text(final.progress["cpu:0"]) == "all 2 epochs done"
    row = stored(store, job.id).iloc[0]
    assert row["status"] == "done" and row["steady_epoch_s"] == pytest.approx(run.steady_epoch_s)
    assert final.worker["ready"]["import_s"] > 0


def test_real_jax_job_cancelled_mid_run_keeps_its_epochs(make_runner, store):
    runner = make_runner()
    spec = ModelSpec(hidden_units=(16,), epochs=4, batch_size=32, extra={HOOK_KEY: {"sleep_after_epoch_s": LONG_S}})
    job = runner.submit("a", spec, ["cpu:0"], sample_limit=128, test_limit=32, synthetic=True, backend="jax")
    wait_for_epoch(runner, job.id, 1)

    runner.cancel(job.id)
    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.CANCELLED
    run = final.results[0]
    assert run.status == "cancelled" and len(run.epoch_s) == 1 and run.backend == "jax"
    row = stored(store, job.id).iloc[0]
    assert row["status"] == "cancelled" and len(row["epoch_s"]) == 1
