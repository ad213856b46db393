"""DeviceRun's timing arithmetic and the one out-of-memory check (engine, matrix products, worker)."""

from __future__ import annotations

import json

import pytest

from lib.device_run import DeviceRun, is_out_of_memory, steady_epoch_seconds


def test_steady_epoch_is_the_median_of_later_epochs():
    assert steady_epoch_seconds([9.0, 2.0, 4.0, 3.0]) == 3.0
    assert steady_epoch_seconds([5.0]) == 5.0


def test_set_epoch_times_derives_the_run_timings():
    run = DeviceRun(device="cpu:0", backend="jax", synthetic=True, num_train=600)
    run.set_epoch_times([3.0, 1.0, 2.0], flops_per_epoch=6e9)
    assert run.epoch_s == [3.0, 1.0, 2.0]
    assert (run.first_epoch_s, run.steady_epoch_s, run.total_s) == (3.0, 1.5, 6.0)
    assert run.samples_per_s == 400.0
    assert run.achieved_flops_per_s == 4e9


def test_set_epoch_times_without_epochs_or_flops_leaves_the_rest_unset():
    empty = DeviceRun(device="cpu:0", backend="jax", synthetic=True, num_train=600)
    empty.set_epoch_times([])
    assert empty.epoch_s == [] and empty.first_epoch_s is None and empty.samples_per_s is None
    instant = DeviceRun(device="cpu:0", backend="jax", synthetic=True, num_train=600)
    instant.set_epoch_times([0.0])
    assert instant.total_s == 0.0 and instant.samples_per_s is None and instant.achieved_flops_per_s is None


class ResourceExhaustedError(Exception):
    """Named as TensorFlow names its out-of-memory error."""


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 68719476736 bytes."), True),
        (RuntimeError("OOM when allocating tensor with shape[784,64]"), True),
        (RuntimeError("CUDA error: CUDA_ERROR_OUT_OF_MEMORY"), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (ResourceExhaustedError("failed to allocate"), True),
        (MemoryError(), True),
        (RuntimeError("no room left in the bloom filter"), False),
        (ValueError("Shapes (32, 10) and (32, 1) are incompatible"), False),
    ],
)
def test_is_out_of_memory(error, expected):
    assert is_out_of_memory(error) is expected


def test_a_run_with_its_confusion_matrix_round_trips_through_json():
    run = DeviceRun(
        device="gpu:0",
        backend="jax",
        synthetic=False,
        num_test=4,
        test_accuracy=0.5,
        confusion=[[1, 1], [1, 1]],
        sample_predictions=[{"index": 0, "true": 0, "predicted": 0}, {"index": 3, "true": 1, "predicted": 0}],
    )
    assert DeviceRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_a_run_stored_before_confusion_matrices_loads_without_them():
    old = DeviceRun(device="cpu:0", backend="tensorflow", synthetic=False, test_accuracy=0.8).to_dict()
    del old["confusion"], old["sample_predictions"]
    run = DeviceRun.from_dict(old)
    assert run.confusion == [] and run.sample_predictions == [] and run.test_accuracy == 0.8
