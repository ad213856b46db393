"""One contract, two places to run: the job runner on this machine's worker processes and on a Ray cluster.

Every test here runs twice (`place` is "local" or "ray"), with the tests' worker (tests/helpers/fake_worker.py)
and the same assertions: order, cancel (queued and running), failures in words, joined requests, limits, the
durable queue, and where a run ran. The Ray runs use the session's local cluster (a head and two training
nodes, `ray_cluster` in conftest.py), so two jobs run at once there and one here; the tests read the number
of slots from the runner. What only a cluster does (a machine dying, reattaching, an unreachable head) is in
tests/test_ray_cluster.py.
"""

from __future__ import annotations

import zlib

import pytest

from lib.jobs import JobState
from lib.limits import ServerLimits
from lib.runner import JobRunner
from lib.spec import ModelSpec, SpecError
from lib.store import RunStore

from .conftest import stop_cluster_jobs
from .conftest import wait_until as wait_for
from .helpers.fake_worker import FAKE_WORKER_COMMAND, FAKE_WORKER_ENTRYPOINT, HOOK_KEY

TEST_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
WAIT_S = 180  # upper bound for one job to end; only reached when something is broken
LONG_S = 120  # a wait that the test always cuts short


@pytest.fixture(params=["local", "ray"])
def place(request) -> str:
    return request.param


@pytest.fixture
def make_runner(place, tmp_path, request):
    """Makes runners on one store for this place; shuts them down (and ends the cluster's jobs) after."""
    made = []
    address = request.getfixturevalue("ray_cluster").address if place == "ray" else None

    def make(**kwargs) -> JobRunner:
        store = kwargs.pop("store", None) or RunStore(tmp_path / "runs.sqlite")
        limits = kwargs.pop("limits", None) or ServerLimits()
        if address is not None:
            from lib.ray_executor import RayExecutor

            kwargs["executor"] = RayExecutor(address, entrypoint=FAKE_WORKER_ENTRYPOINT, worker_env=TEST_ENV)
        else:
            kwargs.update(env=TEST_ENV, worker_command=FAKE_WORKER_COMMAND, warm_workers=False)
        runner = JobRunner(store, limits, **kwargs)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.shutdown()
    if address is not None:
        stop_cluster_jobs(address)


def fake_spec(epochs: int = 2, **hook) -> ModelSpec:
    return ModelSpec(hidden_units=(8,), epochs=epochs, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.02, **hook}})


def submit_fake(runner: JobRunner, owner: str, **hook):
    """A fake job; each owner's spec differs (its seed), so jobs of different owners never join."""
    epochs = hook.pop("epochs", 2)
    spec = fake_spec(epochs, **hook).with_changes(seed=zlib.crc32(owner.encode()))
    return runner.submit(owner, spec, ["cpu:0"], sample_limit=100, synthetic=True)


def wait_until(condition, what: str):
    return wait_for(condition, WAIT_S, what)


def wait_running(runner: JobRunner, job_id: str, epoch: int = 0) -> None:
    def reached():
        job = runner.get(job_id)
        event = job.latest_progress("cpu:0")
        if epoch == 0:
            return job.state == JobState.RUNNING
        return event is not None and event.epoch >= epoch and event.kind in ("epoch", "device_done")

    wait_until(reached, f"job {job_id} to run (epoch {epoch})")


def fill_slots(runner: JobRunner, prefix: str = "blocker") -> list:
    """Starts one long job per slot and waits until all of them run."""
    blockers = [submit_fake(runner, f"{prefix}-{i}", sleep_before_s=LONG_S) for i in range(runner.executor.slots())]
    for job in blockers:
        wait_running(runner, job.id)
    return blockers


def test_jobs_start_in_the_order_they_came_and_each_result_is_stored_with_its_machine(make_runner, place):
    runner = make_runner()
    submitted = [submit_fake(runner, f"student-{i}") for i in range(runner.executor.slots() + 2)]

    finished = [runner.wait(job.id, WAIT_S) for job in submitted]

    assert [job.state for job in finished] == [JobState.DONE] * len(submitted)
    starts = [job.started_at for job in finished]
    assert starts == sorted(starts)
    for job in finished:
        rows = runner.store.runs(job_id=job.id)
        assert list(rows["status"]) == ["done"]
        hardware = rows["hardware"].iloc[0]
        assert hardware["host"] and hardware["cpu_model"] is not None
        assert ("node" in hardware) == (place == "ray")
        assert dict(job.hardware) == hardware
    if place == "ray":
        nodes = {runner.store.runs(job_id=job.id)["hardware"].iloc[0]["node"] for job in finished}
        assert nodes <= {"machine-1", "machine-2"}


def test_a_queued_job_waits_for_a_free_slot_and_its_cancel_takes_it_out(make_runner):
    runner = make_runner()
    blockers = fill_slots(runner)
    queued = submit_fake(runner, "waiting")
    behind = submit_fake(runner, "behind")

    assert runner.get(queued.id).state == JobState.QUEUED and runner.get(queued.id).position == 1
    assert runner.get(behind.id).position == 2
    assert runner.get(queued.id).estimated_start_s > 0

    cancelled = runner.cancel(queued.id, owner="waiting")

    assert cancelled.state == JobState.CANCELLED
    assert runner.get(behind.id).position == 1
    assert list(runner.store.runs(job_id=queued.id)["status"]) == ["cancelled"]
    runner.cancel(blockers[0].id)
    assert runner.wait(behind.id, WAIT_S).state == JobState.DONE


def test_a_running_job_cancelled_keeps_its_finished_epochs(make_runner):
    runner = make_runner()
    job = submit_fake(runner, "a", epochs=5, sleep_after_epoch_s=LONG_S)
    wait_running(runner, job.id, epoch=1)

    runner.cancel(job.id, owner="a")
    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.CANCELLED
    rows = runner.store.runs(job_id=job.id)
    assert list(rows["status"]) == ["cancelled"] and len(rows["epoch_s"].iloc[0]) == 1


def test_a_job_that_raises_fails_with_its_reason(make_runner):
    runner = make_runner()
    job = submit_fake(runner, "a", **{"raise": "the data would not load"})

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.FAILED and "the data would not load" in final.error
    assert list(runner.store.runs(job_id=job.id)["status"]) == ["failed"]


def test_a_worker_that_crashes_mid_job_fails_in_words_and_keeps_its_epochs(make_runner):
    runner = make_runner()
    job = submit_fake(runner, "a", epochs=4, crash_after_epoch=1, crash_signal="SIGKILL")

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.FAILED
    assert "killed" in final.error.lower() or "exited with code" in final.error
    assert len(final.results[0].epoch_s) == 1


def test_identical_requests_join_one_job(make_runner):
    runner = make_runner()
    fill_slots(runner)
    spec = fake_spec()
    first = runner.submit("alice", spec, ["cpu:0"], sample_limit=100, synthetic=True)
    second = runner.submit("bob", spec, ["cpu:0"], sample_limit=100, synthetic=True)

    assert second.id == first.id and second.requesters == 2


def test_limits_are_checked_before_a_job_is_queued(make_runner):
    runner = make_runner(limits=ServerLimits(epochs=3))

    with pytest.raises(SpecError):
        submit_fake(runner, "a", epochs=4)
    assert runner.queue_length() == 0


def test_a_new_runner_on_the_same_store_runs_the_queue_the_old_one_left(make_runner, tmp_path):
    store = RunStore(tmp_path / "shared.sqlite")
    first = make_runner(store=store)
    blockers = fill_slots(first)
    queued = submit_fake(first, "waiting")
    first.shutdown()

    second = make_runner(store=RunStore(tmp_path / "shared.sqlite"))
    for index, blocker in enumerate(blockers):
        taken_over = second.adopt(blocker.id, f"blocker-{index}")  # its session's link after the restart
        if second.executor.keeps_jobs:  # a cluster kept it running: the new runner reads it again
            assert taken_over.state == JobState.RUNNING
            second.cancel(blocker.id)
        else:  # here the worker ended with its server, and its finished epochs (none) are stored
            assert taken_over.state == JobState.INTERRUPTED
            assert taken_over.hardware.get("host"), "a job read back from the store names its machine"
            assert list(second.store.runs(job_id=blocker.id)["status"]) == ["interrupted"]
    assert second.wait(queued.id, WAIT_S).state == JobState.DONE
    assert list(second.store.runs(job_id=queued.id)["status"]) == ["done"]
