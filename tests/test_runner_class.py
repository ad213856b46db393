"""JobRunner on a class server: identical requests coalesce, owners, the fair queue, the durable queue, the board.

Jobs use the worker's fake test hook (see tests/test_runner.py), with workers started cold.
"""

from __future__ import annotations

import time

import pytest

from lib.jobs import JobNotFoundError, JobRecord, JobRequest, JobState, OwnerBusyError, QueueFullError
from lib.limits import ServerLimits
from lib.runner import JobRunner
from lib.runner_job import anonymous_name
from lib.store import RunStore

from .conftest import process_alive
from .test_runner import LONG_S, TEST_ENV, WAIT_S, fake_spec, runners, submit_fake, wait_until

SAME_SPEC = fake_spec(epochs=2, sleep_before_s=0.3)


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite")


@pytest.fixture
def make_runner(store):
    with runners(store) as make:
        yield make


def submit_same(runner: JobRunner, owner: str, **kwargs):
    """Submits the one request every session of these tests asks for, unless `kwargs` change it."""
    options = {"sample_limit": 100, "synthetic": True, **kwargs}
    return runner.submit(owner, options.pop("spec", SAME_SPEC), ["cpu:0"], **options)


def blocked(runner: JobRunner):
    """Starts a long job so that the next ones stay queued; cancel it to let them run."""
    blocker = submit_fake(runner, "blocker", sleep_before_s=LONG_S)
    wait_until(lambda: runner.get(blocker.id).state == JobState.RUNNING, what="the blocker to start")
    return blocker


def test_two_sessions_asking_for_the_same_run_share_one_job_stored_once(make_runner, store):
    runner = make_runner()
    blocker = blocked(runner)

    first = submit_same(runner, "ana")
    second = submit_same(runner, "ben")

    assert second.id == first.id and second.requesters == 2 and second.owner == "ben"
    assert runner.queue_length() == 2
    runner.cancel(blocker.id)
    seen_by_ana = runner.wait(first.id, WAIT_S)
    seen_by_ben = runner.get(first.id, owner="ben")
    assert seen_by_ana.state == JobState.DONE
    assert seen_by_ben.results == seen_by_ana.results and seen_by_ben.requesters == 2
    assert list(store.runs(job_id=first.id)["status"]) == ["done"]
    assert [job.id for job in runner.jobs(owner="ben")] == [first.id]
    assert store.jobs()[-1].owners == ("ana", "ben")


@pytest.mark.parametrize(
    "change",
    [{"sample_limit": 200}, {"synthetic": False}, {"test_limit": 10}, {"spec": SAME_SPEC.with_changes(epochs=3)}],
)
def test_a_request_that_differs_in_anything_measured_gets_its_own_job(make_runner, change):
    runner = make_runner()
    blocker = blocked(runner)

    first = submit_same(runner, "ana")
    other = submit_same(runner, "ben", **change)

    assert other.id != first.id and other.requesters == 1 and first.requesters == 1
    runner.cancel(blocker.id)


def test_the_whole_training_set_and_its_size_are_the_same_request(make_runner):
    runner = make_runner()
    blocker = blocked(runner)

    first = submit_same(runner, "ana", sample_limit=None)
    second = submit_same(runner, "ben", sample_limit=60_000)

    assert second.id == first.id
    runner.cancel(blocker.id)


def test_cancel_by_one_of_two_owners_keeps_the_job_running_for_the_other(make_runner, store):
    runner = make_runner()
    first = submit_same(runner, "ana", spec=fake_spec(epochs=3, sleep_after_epoch_s=0.5))
    submit_same(runner, "ben", spec=fake_spec(epochs=3, sleep_after_epoch_s=0.5))
    wait_until(lambda: runner.get(first.id).state == JobState.RUNNING, what="the shared job to start")

    left = runner.cancel(first.id, owner="ana")

    assert not left.is_final and left.requesters == 1 and not left.stop_requested
    with pytest.raises(JobNotFoundError):
        runner.get(first.id, owner="ana")
    final = runner.wait(first.id, WAIT_S)
    assert final.state == JobState.DONE and final.owner == "ben"
    assert list(store.runs(job_id=first.id)["status"]) == ["done"]


def test_the_last_owners_cancel_cancels_the_job(make_runner, store):
    runner = make_runner()
    blocker = blocked(runner)
    job = submit_same(runner, "ana")
    submit_same(runner, "ben")

    runner.cancel(job.id, owner="ben")
    cancelled = runner.cancel(job.id, owner="ana")

    assert cancelled.state == JobState.CANCELLED
    assert list(store.runs(job_id=job.id)["status"]) == ["cancelled"]
    assert store.jobs()[-1].state == JobState.CANCELLED
    runner.cancel(blocker.id)


def test_another_sessions_cancel_and_get_are_refused(make_runner):
    runner = make_runner()
    blocker = blocked(runner)
    job = submit_same(runner, "ana")

    with pytest.raises(JobNotFoundError):
        runner.cancel(job.id, owner="mallory")
    with pytest.raises(JobNotFoundError):
        runner.get(job.id, owner="mallory")
    with pytest.raises(JobNotFoundError):
        runner.cancel(blocker.id, owner="mallory")

    assert runner.get(job.id).state == JobState.QUEUED and runner.get(job.id).requesters == 1
    assert runner.get(blocker.id).state == JobState.RUNNING and not runner.get(blocker.id).stop_requested
    runner.cancel(blocker.id)


def test_a_joined_job_counts_as_the_sessions_one_job(make_runner):
    runner = make_runner()
    blocker = blocked(runner)
    submit_same(runner, "ana")
    submit_same(runner, "ben")

    with pytest.raises(OwnerBusyError):
        submit_fake(runner, "ben")
    with pytest.raises(OwnerBusyError):
        submit_same(runner, "ben")
    runner.cancel(blocker.id)


def test_one_client_with_many_sessions_delays_another_client_by_at_most_one_job(make_runner):
    runner = make_runner(ServerLimits(queue=30))
    blocker = blocked(runner)
    crowd = [submit_fake(runner, f"tab-{i}", client="10.0.0.9") for i in range(8)]

    mine = submit_fake(runner, "me", client="10.0.0.7")

    assert mine.position <= 2, "the crowd's first job, then mine"
    positions = [runner.get(job.id).position for job in crowd]
    assert sorted(positions) == positions, "one client's own jobs keep their order"
    queued = sorted((job for job in runner.jobs() if job.state == JobState.QUEUED), key=lambda job: job.position)
    assert [job.position for job in queued] == list(range(1, 10))
    estimates = [job.estimated_start_s for job in queued]
    assert estimates == sorted(estimates), "waiting times follow the serving order"
    third_place = runner.get(crowd[1].id).estimated_start_s  # a newcomer is served after the crowd's first and mine
    assert runner.estimated_wait_s("10.0.0.5") == pytest.approx(third_place, abs=1.0)
    assert runner.estimated_wait_s() > third_place  # with no client known: behind everyone
    runner.cancel(blocker.id)
    finished = [runner.wait(job.id, WAIT_S) for job in [mine, *crowd]]
    starts = sorted(finished, key=lambda job: job.started_at)
    assert starts.index(finished[0]) <= 1


def test_per_client_cap_refuses_a_third_job_but_not_a_join(make_runner):
    runner = make_runner(ServerLimits(jobs_per_client=2))
    blocker = blocked(runner)
    shared = submit_same(runner, "tab-1", client="10.0.0.9")
    submit_fake(runner, "tab-2", client="10.0.0.9")

    with pytest.raises(QueueFullError, match="already has 2 jobs waiting or running") as refused:
        submit_fake(runner, "tab-3", client="10.0.0.9")

    assert "Try again" in str(refused.value) and "GPUX_" not in str(refused.value)
    assert submit_same(runner, "tab-3", client="10.0.0.9").id == shared.id
    assert submit_fake(runner, "neighbour", client="10.0.0.7").state == JobState.QUEUED
    runner.cancel(blocker.id)


def test_per_client_cap_is_off_by_default(make_runner):
    runner = make_runner()
    blocker = blocked(runner)

    jobs = [submit_fake(runner, f"tab-{i}", client="10.0.0.9") for i in range(4)]

    assert [job.position for job in jobs] == [1, 2, 3, 4]
    runner.cancel(blocker.id)


def test_a_new_runner_requeues_the_waiting_jobs_in_order_with_their_owners(make_runner, store):
    runner = make_runner()
    blocker = blocked(runner)
    queued = [submit_fake(runner, owner, client=f"10.0.0.{i}") for i, owner in enumerate(("q0", "q1", "q2"))]
    runner.shutdown()

    restarted = make_runner(store=RunStore(store.path))

    assert [job.id for job in restarted.jobs()] == [job.id for job in queued]
    finals = [restarted.wait(job.id, WAIT_S) for job in queued]
    assert [job.state for job in finals] == [JobState.DONE] * 3
    assert [job.started_at for job in finals] == sorted(job.started_at for job in finals)
    assert [restarted.get(job.id, owner=f"q{i}").id for i, job in enumerate(queued)] == [job.id for job in queued]
    assert restarted.adopt(blocker.id, "blocker").state == JobState.INTERRUPTED


def test_a_restart_refuses_a_waiting_job_that_the_servers_new_limits_forbid(make_runner, store):
    over = JobRequest(spec=fake_spec(epochs=5), devices=("cpu:0",), sample_limit=100, synthetic=True)
    fine = JobRequest(spec=fake_spec(epochs=2), devices=("cpu:0",), sample_limit=100, synthetic=True)
    for job_id, owner, request in (("aaaaaaaaaaaa", "ana", over), ("bbbbbbbbbbbb", "ben", fine)):
        record = JobRecord(job_id, 0, time.time(), JobState.QUEUED, owner, (owner,), None, request)
        store.save_job(record)

    runner = make_runner(ServerLimits(epochs=3))

    refused = runner.adopt("aaaaaaaaaaaa", "ana")
    assert refused.state == JobState.FAILED and "limits now refuse it" in refused.error and "epochs" in refused.error
    assert runner.wait("bbbbbbbbbbbb", WAIT_S).state == JobState.DONE
    assert {record.job_id: record.state for record in store.jobs()} == {
        "aaaaaaaaaaaa": JobState.FAILED,
        "bbbbbbbbbbbb": JobState.DONE,
    }


def test_adopt_after_a_restart_makes_the_returning_session_an_owner(make_runner, store):
    runner = make_runner()
    done = runner.wait(submit_same(runner, "ana").id, WAIT_S)
    blocked(runner)
    waiting = submit_fake(runner, "ben")
    runner.shutdown()
    restarted = make_runner(store=RunStore(store.path))

    returned = restarted.adopt(waiting.id, "ben-after-restart")
    finished = restarted.adopt(done.id, "ana-after-restart")

    assert returned.owner == "ben-after-restart" and returned.requesters == 2 and not returned.is_final
    assert finished.state == JobState.DONE and finished.results[0].epoch_s == pytest.approx(done.results[0].epoch_s)
    assert restarted.get(done.id, owner="ana-after-restart").id == done.id
    with pytest.raises(JobNotFoundError):
        restarted.adopt("0123456789ab", "someone")
    with pytest.raises(JobNotFoundError):
        restarted.adopt("../../etc", "someone")
    restarted.cancel(waiting.id)


def test_the_board_shows_names_and_what_was_asked_never_ids_or_owners(make_runner):
    runner = make_runner()
    blocker = blocked(runner)
    shared = submit_same(runner, "ana-session-id")
    submit_same(runner, "ben-session-id")
    solo = submit_fake(runner, "carl-session-id", epochs=3)

    board = runner.board()

    assert [entry.name for entry in board.running] == [anonymous_name("blocker")]
    assert [entry.name for entry in board.queued] == [shared.name, solo.name]
    assert shared.name == anonymous_name("ana-session-id")
    first, second = board.queued
    assert (first.position, first.requesters, first.samples, first.epochs) == (1, 2, 100, 2)
    assert (second.position, second.requesters, second.epochs, second.devices) == (2, 1, 3, ("cpu:0",))
    assert first.hidden_units == (8,) and first.dataset == "fashion_mnist"
    text = repr(board)
    for secret in (blocker.id, shared.id, solo.id, "session-id", "blocker'"):
        assert secret not in text
    runner.cancel(blocker.id)


def test_anonymous_names_are_stable_and_differ_between_sessions():
    names = {anonymous_name(f"session-{i}") for i in range(50)}

    assert anonymous_name("session-1") == anonymous_name("session-1")
    assert len(names) > 40
    assert all(name.split()[0].isalpha() and 1 <= int(name.split()[1]) <= 99 for name in names)


def test_the_device_list_can_be_a_function_that_becomes_exact_later(make_runner):
    present = ["cpu:0"]
    runner = make_runner(available_devices=lambda: present)

    with pytest.raises(Exception, match="gpu:0 is not on this server"):
        runner.submit("a", fake_spec(), ["gpu:0"], sample_limit=100, synthetic=True)
    present.append("cpu:1")
    job = runner.submit("a", fake_spec(), ["cpu:1"], sample_limit=100, synthetic=True)

    assert job.request.devices == ("cpu:1",)
    runner.cancel(job.id)


def test_a_warm_spare_takes_the_job_the_next_starts_after_it_and_shutdown_ends_it(make_runner, monkeypatch):
    monkeypatch.setattr("lib.executor.usable_cores", lambda: 2)  # a small server: no spare imports beside a job
    runner = make_runner(warm_workers=True, env={**TEST_ENV, "KERAS_BACKEND": "jax", "GPUX_WARM_WORKER": "1"})
    spare = runner.executor.spare_pid("jax")

    submitted = submit_fake(runner, "a", sleep_before_s=0.5)
    wait_until(lambda: runner.get(submitted.id).state == JobState.RUNNING, what="the job to start")
    assert runner.executor.spare_pid("jax") is None  # no spare imports while a job trains
    job = runner.wait(submitted.id, WAIT_S)

    assert spare is not None and job.state == JobState.DONE
    assert job.worker["started"]["pid"] == spare and "warm" in job.worker
    next_spare = runner.executor.spare_pid("jax")
    assert next_spare not in (None, spare)
    runner.shutdown()
    wait_until(lambda: not process_alive(next_spare), what="the spare to end")


def test_on_a_many_core_server_the_next_spare_imports_while_a_job_trains(make_runner, monkeypatch):
    monkeypatch.setattr("lib.executor.usable_cores", lambda: 16)
    runner = make_runner(warm_workers=True, env={**TEST_ENV, "KERAS_BACKEND": "jax", "GPUX_WARM_WORKER": "1"})
    spare = runner.executor.spare_pid("jax")

    submitted = submit_fake(runner, "a", sleep_before_s=LONG_S)
    wait_until(lambda: runner.get(submitted.id).state == JobState.RUNNING, what="the job to start")

    assert spare is not None
    # The next spare starts once the job has taken this one: a moment after the job shows as running (a CI run
    # once looked in between). It must come while the job still runs.
    wait_until(lambda: runner.executor.spare_pid("jax") not in (None, spare), what="the next spare to start")
    assert runner.get(submitted.id).state == JobState.RUNNING
    runner.cancel(submitted.id)
