"""A sweep ("Where does the GPU win?") as one job: its request, its check, its runs in the runner and the store.

The sweep's analysis and charts are in tests/test_sweep.py and tests/test_sweep_charts.py.
"""

from __future__ import annotations

import json

import pytest

from lib.backend import backend_name
from lib.class_board import finished_jobs, point_label
from lib.device_run import DeviceRun, ProgressEvent, run_key
from lib.estimates import estimate_job, estimate_request
from lib.jobs import JobRequest, JobState, LimitError, RunPoint
from lib.limits import ServerLimits
from lib.requests import check_request
from lib.runner_job import RunnerJob, request_key
from lib.spec import ModelSpec
from lib.sweep import SWEEP_EPOCHS, SWEEP_TEST_LIMIT, sweep_spec

from .test_runner import WAIT_S, fake_spec, make_runner, store, stored  # noqa: F401 (fixtures)

SPEC = ModelSpec(hidden_units=(16,), epochs=5, batch_size=32)


def sweep(**changes) -> JobRequest:
    values = {"spec": SPEC, "devices": ("cpu:0", "gpu:0"), "sample_limit": 512, "batch_sizes": (32, 256)}
    return JobRequest(**{**values, **changes})


def test_a_sweep_trains_each_device_at_each_batch_size_smallest_batch_first():
    points = sweep().points()

    assert [(point.device, point.sweep_batch) for point in points] == [
        ("cpu:0", 32),
        ("gpu:0", 32),
        ("cpu:0", 256),
        ("gpu:0", 256),
    ]
    assert [point.key for point in points] == ["cpu:0 @ 32", "gpu:0 @ 32", "cpu:0 @ 256", "gpu:0 @ 256"]
    assert points[2].spec(SPEC).batch_size == 256


def test_an_ordinary_job_is_keyed_by_its_devices_as_before():
    request = sweep(batch_sizes=())

    assert not request.is_sweep
    assert [point.key for point in request.points()] == ["cpu:0", "gpu:0"]
    assert RunPoint("cpu:0").spec(SPEC) is SPEC


def test_runs_and_events_are_keyed_like_their_points():
    assert run_key("cpu:0") == "cpu:0"
    assert DeviceRun("cpu:0", "jax", False, sweep_batch=512).key == "cpu:0 @ 512"
    assert ProgressEvent("epoch", "gpu:0", sweep_batch=64).key == "gpu:0 @ 64"


def test_the_batch_sizes_travel_to_the_worker_and_the_store_and_old_requests_read_as_ordinary():
    request = sweep()

    assert JobRequest.from_worker_dict(json.loads(json.dumps(request.to_worker_dict()))).batch_sizes == (32, 256)
    assert JobRequest.from_dict(request.to_dict()) == request
    old = {key: value for key, value in request.to_dict().items() if key != "batch_sizes"}
    assert JobRequest.from_dict(old).batch_sizes == ()


def test_the_sweep_spec_is_short_and_starts_at_the_smallest_batch():
    spec = sweep_spec(SPEC, (512, 64, 2048))

    assert spec.epochs == SWEEP_EPOCHS and spec.batch_size == 64
    assert spec.hidden_units == SPEC.hidden_units


@pytest.mark.parametrize(
    ("batch_sizes", "message"),
    [
        ((32,), "Choose between 2 and 6 batch sizes"),
        ((16, 32, 64, 128, 256, 512, 1024), "Choose between 2 and 6 batch sizes"),
        ((32, 32), "chosen twice"),
        ((32, 10_000), "over this server's limit of 8,192"),
        ((0, 32), "whole numbers of 1 or more"),
    ],
)
def test_the_one_request_check_refuses_a_bad_sweep(batch_sizes, message):
    with pytest.raises(LimitError, match=message):
        check_request(sweep(batch_sizes=batch_sizes), ServerLimits(), ("cpu:0", "gpu:0"))


def test_every_batch_size_of_a_sweep_must_split_between_the_replicas():
    devices = ("cpu:0", "gpu:0", "gpu:1", "gpu:2", "gpu:all")
    request = sweep(devices=("gpu:all",), batch_sizes=(48, 100))

    with pytest.raises(LimitError, match="100"):
        check_request(request, ServerLimits(), devices)
    assert check_request(sweep(devices=("gpu:all",), batch_sizes=(48, 96)), ServerLimits(), devices) == 512


def test_two_sweeps_join_only_when_their_batch_sizes_are_the_same():
    same = request_key(sweep(), 512, "jax")

    assert request_key(sweep(), 512, "jax") == same
    assert request_key(sweep(batch_sizes=(32, 512)), 512, "jax") != same
    assert request_key(sweep(batch_sizes=()), 512, "jax") != same


def test_a_sweep_is_estimated_as_each_batch_size_in_turn(store):  # noqa: F811
    request = sweep()
    runs = store.runs()

    estimate = estimate_request(request, 512, runs, overhead_s=3.0)

    at_32 = estimate_job(SPEC, 512, request.devices, runs, overhead_s=3.0)
    at_256 = estimate_job(SPEC.with_changes(batch_size=256), 512, request.devices, runs, overhead_s=3.0)
    assert len(estimate.devices) == 4
    assert estimate.total_s == pytest.approx(3.0 + at_32.training_s + at_256.training_s)


def runner_job(request: JobRequest) -> RunnerJob:
    return RunnerJob(
        id="0123456789ab",
        owners=["a"],
        client="a",
        name="Owl 1",
        request=request,
        preset=None,
        num_train=512,
        params=100,
        backend="jax",
        key="k",
        estimated_duration_s=1.0,
        submitted_at=0.0,
    )


def event_line(kind: str, device: str, batch: int, epoch: int, elapsed_s: float) -> str:
    event = ProgressEvent(kind, device, epoch=epoch, epochs=2, elapsed_s=elapsed_s, sweep_batch=batch)
    return json.dumps({"type": "progress", "event": event.to_dict()})


def test_a_stopped_sweep_keeps_each_point_it_trained_apart():
    job = runner_job(sweep(devices=("cpu:0",)))
    done = DeviceRun("cpu:0", "jax", False, num_train=512, sweep_batch=32)
    done.set_epoch_times([1.0, 0.5])
    job.apply_event(json.dumps({"type": "result", "run": done.to_dict()}))
    job.apply_event(event_line("device_start", "cpu:0", 256, 0, 10.0))
    job.apply_event(event_line("epoch", "cpu:0", 256, 1, 10.8))

    runs = job.runs_at_end(JobState.CANCELLED, "Cancelled.")

    assert [(run.key, run.status) for run in runs] == [("cpu:0 @ 32", "done"), ("cpu:0 @ 256", "cancelled")]
    assert runs[1].epoch_s == pytest.approx([0.8]) and runs[1].sweep_batch == 256
    assert job.progress["cpu:0 @ 256"].epoch == 1 and "cpu:0 @ 32" not in job.progress


def test_a_sweep_missing_a_point_fails_naming_it():
    from lib.executor import WorkerExit

    job = runner_job(sweep(devices=("cpu:0",)))
    job.apply_event(json.dumps({"type": "result", "run": DeviceRun("cpu:0", "jax", False, sweep_batch=32).to_dict()}))

    state, error = job.final_state(WorkerExit(returncode=0))

    assert state == JobState.FAILED and error == "The worker ended without a result for cpu:0 @ 256."


def test_a_fake_sweep_through_the_runner_stores_one_row_per_point_with_its_batch_size(make_runner, store):  # noqa: F811
    runner = make_runner()
    job = runner.submit("a", fake_spec(), ["cpu:0"], sample_limit=100, synthetic=True, batch_sizes=(16, 64, 128))

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.DONE, final.error
    assert [run.key for run in final.results] == ["cpu:0 @ 16", "cpu:0 @ 64", "cpu:0 @ 128"]
    assert set(final.progress) == {"cpu:0 @ 16", "cpu:0 @ 64", "cpu:0 @ 128"}
    rows = stored(store, job.id)
    assert list(rows["batch_size"]) == [16, 64, 128] and set(rows["status"]) == {"done"}
    assert store.job(job.id).request.batch_sizes == (16, 64, 128)


def test_a_real_sweep_trains_each_point_at_its_own_batch_size(make_runner, store):  # noqa: F811
    runner = make_runner()
    spec = sweep_spec(ModelSpec(hidden_units=(16,)), (16, 64))
    job = runner.submit(
        "a",
        spec,
        ["cpu:0"],
        sample_limit=256,
        test_limit=SWEEP_TEST_LIMIT,
        synthetic=True,
        backend=backend_name(),
        batch_sizes=(16, 64),
    )

    final = runner.wait(job.id, WAIT_S * 2)

    assert final.state == JobState.DONE, final.error
    small, large = final.results
    assert (small.sweep_batch, large.sweep_batch) == (16, 64)
    assert len(small.epoch_s) == len(large.epoch_s) == SWEEP_EPOCHS
    assert small.samples_per_s > 0 and large.samples_per_s > 0 and small.test_accuracy is None
    rows = stored(store, job.id)
    assert list(rows["batch_size"]) == [16, 64] and list(rows["num_train"]) == [256, 256]


def test_the_class_board_compares_a_finished_sweep_at_its_largest_batch(store):  # noqa: F811
    for device, batch, epoch_s in (("cpu:0", 32, 5.0), ("gpu:0", 32, 10.0), ("cpu:0", 512, 4.0), ("gpu:0", 512, 0.5)):
        run = DeviceRun(device, "jax", False, num_train=512, sweep_batch=batch)
        run.set_epoch_times([epoch_s, epoch_s])
        store.record(SPEC.with_changes(batch_size=batch), run, job_id="5eeb5eeb5eeb")

    (job,) = finished_jobs(store.runs())

    assert job.sweep_batch == 512 and job.speedup == pytest.approx(8.0)
    assert [time.device for time in job.times] == ["gpu:0", "cpu:0"]


def test_a_board_entry_of_a_sweep_lists_its_runs_and_labels_them():
    job = runner_job(sweep())
    entry = job.board_entry(1, 0.0)

    assert [point_label(point) for point in entry.points()][:2] == ["cpu:0, batch 32", "gpu:0, batch 32"]
    assert point_label(RunPoint("gpu:all")) == "all GPUs (data parallel)"
