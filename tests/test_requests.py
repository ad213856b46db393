"""lib.requests: the one request check (spec, samples, devices with the gpu:all split, backend), in people's words."""

from __future__ import annotations

import pytest

from lib.backend import BackendUnavailableError
from lib.devices import DeviceNotFoundError
from lib.jobs import JobRequest, LimitError
from lib.limits import LimitConfigError, ServerLimits, load_limits
from lib.requests import check_batch_split, check_devices, check_limits, check_request
from lib.runner import JobRunner
from lib.spec import ModelSpec, SpecError
from lib.store import RunStore
from lib.worker_pool import WorkerPool

SERVER_DEVICES = ("cpu:0", "gpu:0", "gpu:1", "gpu:all")
LIMITS = ServerLimits(samples=10_000)


def request(**changes) -> JobRequest:
    spec = changes.pop("spec", ModelSpec(hidden_units=(8,), epochs=1, batch_size=32))
    return JobRequest(**{"spec": spec, "devices": ("cpu:0",), "sample_limit": 500, **changes})


def test_a_good_request_gives_its_training_samples():
    assert check_request(request(), LIMITS, SERVER_DEVICES) == 500
    assert check_request(request(sample_limit=None), ServerLimits(), SERVER_DEVICES) == 60_000


def test_no_device_message_is_for_a_person():
    with pytest.raises(DeviceNotFoundError) as refused:
        check_devices([], SERVER_DEVICES)

    assert str(refused.value) == "Choose at least one device to train on (for example cpu:0)."


def test_no_device_message_without_a_device_list_suggests_cpu():
    with pytest.raises(DeviceNotFoundError, match=r"^Choose at least one device to train on \(for example cpu:0\)\.$"):
        check_devices((), None)


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        (["tpu:0"], "“tpu:0” is not a device name; choose one of cpu:0, gpu:0, gpu:1, gpu:all."),
        (["gpu:7"], "gpu:7 is not on this server; choose one of cpu:0, gpu:0, gpu:1, gpu:all."),
        (["cpu:0", "CPU:0"], "cpu:0 is chosen twice; choose each device once."),
        ("cpu:0", "Choose at least one device to train on (for example cpu:0)."),
    ],
)
def test_device_messages_quote_no_python_values(devices, expected):
    with pytest.raises(DeviceNotFoundError) as refused:
        check_devices(devices, SERVER_DEVICES)

    assert str(refused.value) == expected
    assert "[" not in str(refused.value) and "'" not in str(refused.value)


def test_device_names_are_normalised_in_order():
    assert check_devices(["GPU:1", "/CPU:0", "all-gpus"], SERVER_DEVICES) == ("gpu:1", "cpu:0", "gpu:all")


def test_a_long_refused_value_is_cut_short():
    with pytest.raises(DeviceNotFoundError) as refused:
        check_devices(["x" * 5000], SERVER_DEVICES)

    assert len(str(refused.value)) < 120 and "\u2026" in str(refused.value)


def test_gpu_all_batch_that_does_not_split_is_refused_with_batch_sizes_that_do():
    odd_batch = request(spec=ModelSpec(hidden_units=(8,), epochs=1, batch_size=33), devices=("gpu:all",))

    with pytest.raises(LimitError, match="multiple of 2, e.g. 32 or 34"):
        check_request(odd_batch, LIMITS, SERVER_DEVICES)


def test_gpu_all_batch_split_counts_the_servers_gpus():
    four_gpus = ("cpu:0", "gpu:0", "gpu:1", "gpu:2", "gpu:3", "gpu:all")

    check_batch_split(("gpu:all",), 64, four_gpus)
    with pytest.raises(LimitError, match="between 4 replicas"):
        check_batch_split(("cpu:0", "gpu:all"), 34, four_gpus)


def test_ordinary_devices_need_no_split():
    check_batch_split(("cpu:0", "gpu:0"), 33, SERVER_DEVICES)


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"sample_limit": 10_001}, LimitError, "10,001 training samples is over this server's limit of 10,000"),
        ({"sample_limit": 0}, LimitError, "whole number of 1 or more"),
        ({"sample_limit": True}, LimitError, "whole number of 1 or more"),
        ({"sample_limit": "500"}, LimitError, "whole number of 1 or more"),
        ({"test_limit": -1}, LimitError, "0 or more"),
        ({"backend": "theano"}, BackendUnavailableError, "“theano” is not a Keras backend"),
        ({"spec": ModelSpec(hidden_units=(8,), epochs=51)}, SpecError, "epochs"),
    ],
)
def test_limits_are_refused_with_the_fix(changes, error, words):
    with pytest.raises(error, match=words):
        check_request(request(**changes), LIMITS, SERVER_DEVICES)


def test_the_samples_limit_is_said_in_the_users_words():
    with pytest.raises(LimitError) as refused:
        check_request(request(sample_limit=None), LIMITS, SERVER_DEVICES)

    message = str(refused.value)
    assert message.endswith(f"choose at most {LIMITS.samples:,}.")
    assert "GPUX_" not in message and "sample_limit" not in message


def test_zero_test_samples_skips_the_test_and_is_allowed():
    assert check_request(request(test_limit=0), LIMITS, SERVER_DEVICES) == 500


def test_check_limits_needs_no_device_list():
    assert check_limits(request(devices=("gpu:all",)), LIMITS) == 500


def test_the_runner_refuses_a_gpu_all_batch_that_does_not_split_before_any_worker_starts(tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr(WorkerPool, "launch", lambda pool, *args: launched.append(args))
    store = RunStore(tmp_path / "runs.sqlite")
    runner = JobRunner(store, LIMITS, available_devices=SERVER_DEVICES, warm_workers=False)
    odd_batch = ModelSpec(hidden_units=(8,), epochs=1, batch_size=33)
    try:
        with pytest.raises(LimitError, match="cannot be split evenly between 2 replicas"):
            runner.submit("ana", odd_batch, ["gpu:all"], sample_limit=500, synthetic=True)
        assert runner.jobs() == [] and store.jobs() == [] and store.count() == 0
    finally:
        runner.shutdown()
    assert launched == []


def test_the_per_client_cap_is_off_by_default_and_zero_turns_it_off():
    assert ServerLimits().jobs_per_client == 0
    assert load_limits({"GPUX_MAX_JOBS_PER_CLIENT": "0"}).jobs_per_client == 0
    assert load_limits({"GPUX_MAX_JOBS_PER_CLIENT": "3"}).jobs_per_client == 3
    with pytest.raises(LimitConfigError, match="0 \\(no limit\\) or a positive integer"):
        load_limits({"GPUX_MAX_JOBS_PER_CLIENT": "-1"})
    with pytest.raises(LimitConfigError, match="must be a positive integer"):
        load_limits({"GPUX_MAX_QUEUE": "0"})
