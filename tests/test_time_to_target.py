"""Time to accuracy (issue 16, point 1): a run stops at its target test accuracy, the evaluation timed with it."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.datasets import load_dataset
from lib.device_run import DeviceRun
from lib.engine import train_on_devices
from lib.jobs import JobRequest, LimitError
from lib.limits import ServerLimits
from lib.requests import check_request
from lib.spec import ModelSpec
from lib.time_to_target import DEFAULT_TARGETS, default_target, target_caption, target_frame, target_text

SMALL = ModelSpec(hidden_units=(64,), optimizer="adam", learning_rate=0.001, batch_size=32, epochs=4)


@pytest.fixture(scope="module")
def fashion():
    """Real Fashion-MNIST, first 2000 training and 500 test images."""
    return load_dataset("fashion_mnist").subset(2000, 500)


def test_a_reachable_target_stops_the_run_at_the_epoch_that_reached_it(fashion):
    (run,) = train_on_devices(SMALL, fashion, ["cpu:0"], target_accuracy=0.3)  # epoch 1 gets about 0.7

    assert run.status == "done" and run.target_accuracy == 0.3
    assert run.target_epoch == 1 and len(run.epoch_s) == 1 == len(run.held_out_accuracy)
    assert run.held_out_accuracy[0] >= 0.3
    assert run.time_to_target_s == pytest.approx(run.epoch_s[0])
    assert run.test_accuracy == pytest.approx(run.held_out_accuracy[0], abs=1e-6)  # the same 500 test images


def test_an_unreachable_target_trains_every_epoch_and_says_so(fashion):
    (run,) = train_on_devices(SMALL.with_changes(epochs=2), fashion, ["cpu:0"], target_accuracy=0.999)

    assert run.target_epoch is None and run.time_to_target_s is None
    assert len(run.epoch_s) == 2 == len(run.held_out_accuracy)
    assert target_text(run.to_dict()).startswith("not reached in 2 epochs, best ")


def test_each_epoch_with_a_target_includes_its_evaluation(fashion):
    big_test = load_dataset("fashion_mnist").subset(500, 10_000)
    spec = SMALL.with_changes(epochs=3, hidden_units=(32,))
    (without,) = train_on_devices(spec, big_test, ["cpu:0"])
    (with_target,) = train_on_devices(spec, big_test, ["cpu:0"], target_accuracy=0.999)

    # Evaluating 10,000 test images after each epoch takes longer than training on 500.
    assert with_target.steady_epoch_s > without.steady_epoch_s


def test_set_target_counts_the_epochs_up_to_the_first_that_reached_it():
    run = DeviceRun("cpu:0", "jax", False, num_train=100)
    run.set_epoch_times([3.0, 2.0, 2.0, 2.0])

    run.set_target(0.8, [0.5, 0.81, 0.79, 0.9, 0.95])  # a fifth, untimed epoch's accuracy is dropped

    assert run.target_epoch == 2 and run.time_to_target_s == 5.0
    assert run.held_out_accuracy == [0.5, 0.81, 0.79, 0.9]


def request(**changes) -> JobRequest:
    values = {"spec": SMALL, "devices": ("cpu:0",), "sample_limit": 500, "target_accuracy": 0.85}
    return JobRequest(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_accuracy": 1.0}, "between 0 and 1"),
        ({"target_accuracy": True}, "between 0 and 1"),
        ({"synthetic": True}, "needs the real dataset"),
        ({"test_limit": 0}, "at least one test sample"),
        ({"spec": SMALL.with_changes(device_resident=True)}, "Keep the data on the device"),
        ({"batch_sizes": (32, 64)}, "sweep measures speed only"),
    ],
)
def test_a_target_the_run_cannot_measure_is_refused_in_words(changes, message):
    with pytest.raises(LimitError, match=message):
        check_request(request(**changes), ServerLimits(), ("cpu:0",))


def test_a_good_target_passes_and_travels_to_the_worker():
    assert check_request(request(), ServerLimits(), ("cpu:0",)) == 500
    assert JobRequest.from_worker_dict(request().to_worker_dict()).target_accuracy == 0.85


def test_the_tutorial_datasets_have_a_default_target():
    assert default_target("fashion_mnist") == DEFAULT_TARGETS["fashion_mnist"] == 0.85
    assert 0 < default_target("cifar10") < default_target("fashion_mnist")


def stored(device: str, seconds: float | None, epoch: int | None, accuracies: list[float]) -> dict:
    run = DeviceRun(device, "jax", False, num_train=100)
    run.set_epoch_times([seconds or 10.0] * len(accuracies))
    run.set_target(0.85, accuracies)
    return {"id": device, "device": device, "result": run.to_dict(), "dataset": "fashion_mnist", "batch_size": 32}


def test_the_results_name_the_first_to_the_target_and_the_one_that_missed_it():
    runs = pd.DataFrame([stored("gpu:0", 2.0, 2, [0.8, 0.86]), stored("cpu:0", 9.0, None, [0.7, 0.8, 0.84])])

    targets = target_frame(runs)

    assert list(targets["reached"]) == [True, False]
    assert targets["text"].iloc[0] == "4.00 s (epoch 2, test accuracy 86.0%)"
    caption = target_caption(targets)
    assert caption.startswith("First to 85% test accuracy: gpu:0, in 4.00 s (epoch 2")
    assert "Not reached: cpu:0 (not reached in 3 epochs, best 84.0%)." in caption
