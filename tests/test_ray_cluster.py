"""What only a cluster does: jobs on two machines at once, a machine that dies mid-job, an app that restarts and
reattaches, an unreachable head, and the placement rules (one job per machine, GPU jobs on GPU machines).

The cluster tests use the session's local cluster (`ray_cluster` in conftest.py: a head and the training nodes
machine-1 and machine-2 on this machine, a silent node called dead after about 3 s) and the tests' worker. The
placement rules are plain functions, tested without Ray.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import pytest

from lib.executor import ClusterUnavailableError, Machine, RunningJob
from lib.jobs import JobRequest, JobState
from lib.limits import ServerLimits
from lib.local_cluster import free_port
from lib.ray_executor import (
    RayExecution,
    RayExecutor,
    cluster_devices,
    gpus_needed,
    submission_id,
)
from lib.runner import JobRunner
from lib.spec import ModelSpec
from lib.store import RunStore

from .conftest import stop_cluster_jobs
from .conftest import wait_until as wait_for
from .helpers.fake_worker import FAKE_WORKER_ENTRYPOINT, HOOK_KEY

TEST_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
WAIT_S = 180
LONG_S = 120
CPU = Machine(name="cpu-box", node_id="n-cpu", gpus=0)
GPU = Machine(name="gpu-box", node_id="n-gpu", gpus=1)


def request_for(*devices: str) -> JobRequest:
    return JobRequest(spec=ModelSpec(hidden_units=(8,)), devices=tuple(devices))


def fake_spec(owner: str, epochs: int = 2, **hook) -> ModelSpec:
    spec = ModelSpec(hidden_units=(8,), epochs=epochs, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.02, **hook}})
    return spec.with_changes(seed=zlib.crc32(owner.encode()))


def submit_fake(runner: JobRunner, owner: str, **hook):
    epochs = hook.pop("epochs", 2)
    return runner.submit(owner, fake_spec(owner, epochs, **hook), ["cpu:0"], sample_limit=100, synthetic=True)


def wait_until(condition, what: str):
    return wait_for(condition, WAIT_S, what)


def running_epoch(runner: JobRunner, job_id: str, epoch: int) -> bool:
    event = runner.get(job_id).latest_progress("cpu:0")
    return event is not None and event.epoch >= epoch and event.kind in ("epoch", "device_done")


def executor_with(machines: tuple[Machine, ...], problem: str = "") -> RayExecutor:
    """A RayExecutor that never looks at a cluster: its machines as given."""
    executor = RayExecutor.__new__(RayExecutor)
    executor.__dict__.update(
        address="http://head:8265", _machines=machines, _problem=problem, _lock=__import__("threading").Lock()
    )
    return executor


# --- placement rules, without Ray ---


@pytest.mark.parametrize(
    ("devices", "most", "needed"),
    [(("cpu:0",), 4, 0), (("cpu:0", "gpu:0"), 1, 1), (("gpu:1",), 2, 2), (("gpu:all",), 4, 4), (("gpu:all",), 0, 1)],
)
def test_a_job_asks_for_the_gpus_its_devices_name(devices, most, needed):
    assert gpus_needed(request_for(*devices), most) == needed


def test_the_devices_a_cluster_offers_follow_its_best_equipped_machine():
    assert cluster_devices(()) is None
    assert cluster_devices((CPU,)) == ("cpu:0",)
    assert cluster_devices((CPU, GPU)) == ("cpu:0", "gpu:0")
    assert cluster_devices((CPU, Machine("big", "n-big", gpus=2))) == ("cpu:0", "gpu:0", "gpu:1", "gpu:all")


def test_one_job_per_machine_and_gpu_jobs_only_where_a_gpu_is_free():
    executor = executor_with((CPU, GPU))
    cpu_job, gpu_job = request_for("cpu:0"), request_for("cpu:0", "gpu:0")

    assert executor.can_start(cpu_job, []) and executor.can_start(gpu_job, [])
    on_gpu_box = RunningJob(cpu_job, machine="n-gpu")
    assert executor.can_start(cpu_job, [on_gpu_box]) and not executor.can_start(gpu_job, [on_gpu_box])
    placed_unknown = RunningJob(cpu_job)  # not placed yet: it might take the GPU machine
    assert not executor.can_start(gpu_job, [placed_unknown])
    both_busy = [RunningJob(cpu_job, "n-cpu"), on_gpu_box]
    assert not executor.can_start(cpu_job, both_busy)


def test_no_job_starts_while_the_head_does_not_answer_or_no_machine_has_joined():
    assert not executor_with((CPU,), problem="The Ray cluster ... does not answer").can_start(request_for("cpu:0"), [])
    assert not executor_with(()).can_start(request_for("cpu:0"), [])


def test_a_gpu_job_fits_no_machine_of_a_cpu_only_cluster():
    assert not executor_with((CPU,)).fits_any(request_for("gpu:0"))
    assert executor_with((CPU, GPU)).fits_any(request_for("gpu:0"))
    assert executor_with(()).fits_any(request_for("gpu:0"))  # nothing known yet: it waits


class FakeExecutor:
    """One machine that takes only CPU jobs: what the runner's order does with a job no machine fits."""

    kind, keeps_jobs, poll_s = "fake", False, 0.05

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def can_start(self, request, running):
        return not gpus_needed(request, 0) and not running

    def fits_any(self, request):
        return not gpus_needed(request, 0)


def test_a_job_no_machine_fits_lets_the_ones_behind_it_go_first(tmp_path):
    from lib.executor import LocalExecutor
    from tests.helpers.fake_worker import FAKE_WORKER_COMMAND

    local = LocalExecutor(1, FAKE_WORKER_COMMAND, {**__import__("os").environ, **TEST_ENV}, default_backend="jax")
    runner = JobRunner(RunStore(tmp_path / "runs.sqlite"), ServerLimits(), executor=FakeExecutor(local))
    try:
        gpu_job = runner.submit("a", fake_spec("a"), ["gpu:0"], sample_limit=100, synthetic=True)
        cpu_job = submit_fake(runner, "b")
        assert runner.wait(cpu_job.id, WAIT_S).state == JobState.DONE
        assert runner.get(gpu_job.id).state == JobState.QUEUED and runner.get(gpu_job.id).position == 1
    finally:
        runner.shutdown()


@pytest.mark.parametrize(
    ("status", "info", "expected"),
    [
        ("SUCCEEDED", {}, {"returncode": 0}),
        ("FAILED", {"driver_exit_code": 1}, {"returncode": 1}),
        ("STOPPED", {}, {"returncode": None, "stopped_elsewhere": True}),
    ],
)
def test_how_a_ray_job_ended_becomes_how_its_worker_ended(status, info, expected):
    execution = RayExecution(executor_with((CPU,)), client=None, sid=submission_id("abc"))
    end = execution._exit(status, SimpleNamespace(message="", **info))
    for field, value in expected.items():
        assert getattr(end, field) == value
    assert not end.lost


def test_a_job_whose_machine_died_is_lost_in_words():
    execution = RayExecution(executor_with((CPU,)), client=None, sid=submission_id("abc"))
    execution._machine = {"node": "machine-2"}
    message = "Job supervisor actor died: ...\nThe actor died because its node has died. Node Id: 07bc"

    end = execution._exit("FAILED", SimpleNamespace(message=message, driver_exit_code=None))

    assert end.returncode is None and "machine-2" in end.lost and "stopped or left the cluster" in end.lost


# --- on the local cluster ---


@pytest.fixture
def cluster_runners(ray_cluster, tmp_path):
    """Makes runners on the session's cluster (one store unless given); ends them and the cluster's jobs after."""
    made = []

    def make(store: RunStore | None = None, **kwargs) -> JobRunner:
        executor = RayExecutor(ray_cluster.address, entrypoint=FAKE_WORKER_ENTRYPOINT, worker_env=TEST_ENV)
        runner = JobRunner(store or RunStore(tmp_path / "runs.sqlite"), ServerLimits(), executor=executor, **kwargs)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.shutdown()
    stop_cluster_jobs(ray_cluster.address)


def test_two_jobs_run_at_once_on_the_two_machines_and_a_third_waits(cluster_runners):
    runner = cluster_runners()
    first, second = (submit_fake(runner, name, epochs=3, sleep_after_epoch_s=1.0) for name in ("a", "b"))
    third = submit_fake(runner, "c")

    wait_until(lambda: running_epoch(runner, first.id, 1) and running_epoch(runner, second.id, 1), "both to train")
    assert runner.get(third.id).state == JobState.QUEUED and runner.get(third.id).position == 1
    machines = {runner.get(job.id).hardware.get("node") for job in (first, second)}
    assert machines == {"machine-1", "machine-2"}, "one job per machine"

    finished = [runner.wait(job.id, WAIT_S) for job in (first, second, third)]
    assert [job.state for job in finished] == [JobState.DONE] * 3
    assert finished[2].started_at >= min(finished[0].finished_at, finished[1].finished_at) - 1.0
    assert runner.store.runs(job_id=third.id)["hardware"].iloc[0]["node"] in machines


def test_a_running_and_a_queued_job_are_cancelled_on_the_cluster(cluster_runners):
    runner = cluster_runners()
    running = [submit_fake(runner, name, epochs=5, sleep_after_epoch_s=LONG_S) for name in ("a", "b")]
    queued = submit_fake(runner, "c")
    for job in running:
        wait_until(lambda job=job: running_epoch(runner, job.id, 1), f"{job.id} to train")

    assert runner.cancel(queued.id).state == JobState.CANCELLED
    runner.cancel(running[0].id)
    final = runner.wait(running[0].id, WAIT_S)

    assert final.state == JobState.CANCELLED and len(final.results[0].epoch_s) == 1
    assert list(runner.store.runs(job_id=running[0].id)["status"]) == ["cancelled"]
    assert list(runner.store.runs(job_id=queued.id)["status"]) == ["cancelled"]


def test_a_machine_that_dies_mid_job_fails_its_job_with_the_reason_and_keeps_its_epochs(ray_cluster, cluster_runners):
    runner = cluster_runners()
    job = submit_fake(runner, "a", epochs=5, sleep_after_epoch_s=LONG_S)
    wait_until(lambda: running_epoch(runner, job.id, 1), "the first epoch")
    machine = runner.get(job.id).hardware["node"]

    ray_cluster.kill_node(machine)
    try:
        final = runner.wait(job.id, WAIT_S)
        assert final.state == JobState.FAILED
        assert machine in final.error and "stopped or left the cluster" in final.error
        rows = runner.store.runs(job_id=job.id)
        assert list(rows["status"]) == ["failed"] and len(rows["epoch_s"].iloc[0]) == 1
        assert rows["hardware"].iloc[0]["node"] == machine
    finally:
        ray_cluster.start_node(machine)


def test_an_app_that_restarts_reattaches_to_its_running_job_and_stores_it_once(cluster_runners, tmp_path):
    store_path = tmp_path / "shared.sqlite"
    first = cluster_runners(RunStore(store_path))
    job = submit_fake(first, "a", epochs=3, sleep_after_epoch_s=2.0)
    wait_until(lambda: running_epoch(first, job.id, 1), "the first epoch")
    first.shutdown()  # the app stops; the job goes on on its machine

    second = cluster_runners(RunStore(store_path))
    taken_over = second.adopt(job.id, "a")
    assert taken_over.state == JobState.RUNNING
    final = second.wait(job.id, WAIT_S)

    assert final.state == JobState.DONE and len(final.results[0].epoch_s) == 3
    rows = second.store.runs(job_id=job.id)
    assert list(rows["status"]) == ["done"], "one row per device, not a second one"


def test_an_unreachable_head_keeps_the_request_queued_and_says_so(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    executor = RayExecutor(address, entrypoint=FAKE_WORKER_ENTRYPOINT)
    runner = JobRunner(RunStore(tmp_path / "runs.sqlite"), ServerLimits(), executor=executor)
    try:
        status = runner.executor_status()
        assert status.kind == "ray" and address in status.problem and "does not answer" in status.problem
        assert "Queued jobs are kept" in status.problem

        job = submit_fake(runner, "a")

        assert runner.get(job.id).state == JobState.QUEUED and runner.get(job.id).position == 1
        with pytest.raises(ClusterUnavailableError, match="does not answer"):
            executor.launch(job.id, runner.get(job.id).request, "jax")
    finally:
        runner.shutdown()
    assert RunStore(tmp_path / "runs.sqlite").job(job.id).state == JobState.QUEUED  # kept for the next start


def test_a_gpu_job_runs_only_on_the_machine_with_a_gpu(ray_cluster, cluster_runners):
    # Ray takes a node's word for its GPUs (`ray start --num-gpus 1`), so a node of this CPU-only machine can
    # play the GPU box; the tests' worker never touches the device, so only the placement is tested here.
    ray_cluster.start_node("gpu-box", gpus=1)
    try:
        runner = cluster_runners()
        wait_until(lambda: "gpu:0" in (runner.executor.devices() or ()), "the cluster to list gpu:0")
        spec = fake_spec("gpu-student", epochs=2, sleep_after_epoch_s=0.5)
        gpu_job = runner.submit("gpu-student", spec, ["cpu:0", "gpu:0"], sample_limit=100, synthetic=True)
        cpu_jobs = [submit_fake(runner, name) for name in ("a", "b")]

        final = runner.wait(gpu_job.id, WAIT_S)

        assert final.state == JobState.DONE and [run.device for run in final.results] == ["cpu:0", "gpu:0"]
        assert final.hardware["node"] == "gpu-box", "cpu:0 and gpu:0 timed on the one machine with a GPU"
        for job in cpu_jobs:
            assert runner.wait(job.id, WAIT_S).state == JobState.DONE
    finally:
        stop_cluster_jobs(ray_cluster.address)
        ray_cluster.stop_node("gpu-box")
