"""The benchmark engine, trained for real on a small Fashion-MNIST subset on the CPU."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

import lib.energy as energy
import lib.engine as engine
from lib.datasets import load_dataset, synthetic_dataset
from lib.devices import DeviceNotFoundError
from lib.engine import (
    SAMPLE_PREDICTIONS,
    TrainingDataError,
    confusion_counts,
    describe_failure,
    pick_sample_predictions,
    prepare_data,
    train_on_devices,
    uses_device_resident_loop,
)
from lib.model import build_model
from lib.spec import ModelSpec

from .conftest import REPO_ROOT, subprocess_env

SMALL = ModelSpec(hidden_units=(64,), optimizer="adam", learning_rate=0.001, batch_size=32, epochs=3)
TWO_CPUS = ["cpu:0", "cpu:0"]


@pytest.fixture(scope="module")
def fashion():
    """Real Fashion-MNIST, first 2000 training and 500 test images."""
    return load_dataset("fashion_mnist").subset(2000, 500)


@pytest.fixture(scope="module")
def compared(fashion):
    """One real comparison on two CPU devices, with every progress event (no throttling)."""
    events = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "BATCH_EVENT_INTERVAL_S", 0.0)
        runs = train_on_devices(SMALL, fashion, ["cpu:0", "CPU"], progress=events.append)
    return runs, events


def test_prepare_data_keeps_every_sample_asked_for_as_float32(fashion):
    data = prepare_data(SMALL, fashion, sample_limit=1000, test_limit=100)
    assert len(data.x_train) == 1000  # 31 batches of 32 and a last one of 8: all of them train
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    np.testing.assert_allclose(data.x_train[5], fashion.x_train[5] / 255, rtol=1e-6)
    assert data.y_train.dtype == np.int32 and data.y_train.shape == (1000,)
    assert len(data.x_test) == 100 and data.image_shape == (28, 28) and data.num_classes == 10


@pytest.mark.parametrize(("backend", "expected"), [("tensorflow", 992), ("torch", 992), ("jax", 1000)])
def test_prepare_data_cuts_to_whole_batches_only_where_xla_would_compile_again(fashion, backend, expected):
    xla = SMALL.with_changes(jit_compile=True)
    assert len(prepare_data(xla, fashion, sample_limit=1000, test_limit=0, backend=backend).x_train) == expected


def test_prepare_data_one_hot_labels(fashion):
    data = prepare_data(
        SMALL.with_changes(label_encoding="one_hot", batch_size=64), fashion, sample_limit=None, test_limit=None
    )
    assert len(data.x_train) == 2000
    assert data.y_train.dtype == np.float32 and data.y_train.shape == (2000, 10)
    np.testing.assert_array_equal(data.y_train.argmax(axis=1), fashion.y_train)
    assert data.y_train.sum(axis=1).tolist() == [1.0] * 2000


def test_prepare_data_fewer_samples_than_a_batch(fashion):
    assert len(prepare_data(SMALL, fashion, sample_limit=10, test_limit=0).x_train) == 10
    with pytest.raises(TrainingDataError, match="raise the sample limit"):
        prepare_data(SMALL, fashion, sample_limit=0, test_limit=None)


def test_real_training_learns_and_times_every_epoch(compared):
    run = compared[0][0]
    assert run.status == "done" and run.error == ""
    assert run.device == "cpu:0" and run.backend == "tensorflow" and run.synthetic is False
    assert run.num_train == 2000  # 62 batches of 32 and a last one of 16: the stored count is what trained
    assert run.num_test == 500
    assert len(run.epoch_s) == 3 and all(t > 0 for t in run.epoch_s)
    assert run.first_epoch_s == run.epoch_s[0]
    assert run.steady_epoch_s == statistics.median(run.epoch_s[1:])
    assert run.total_s == pytest.approx(sum(run.epoch_s))
    assert run.samples_per_s == pytest.approx(2000 / run.steady_epoch_s)
    assert run.achieved_flops_per_s == pytest.approx(6 * (784 * 64 + 64 * 10) * 2000 / run.steady_epoch_s)
    assert run.train_loss[2] < run.train_loss[1] < run.train_loss[0]
    assert run.train_accuracy[2] > 0.5
    assert run.test_accuracy > 0.5  # chance is 0.1
    assert 0 < run.test_loss < run.train_loss[0]


def test_real_run_keeps_its_confusion_matrix_and_sample_predictions(fashion, compared):
    run = compared[0][0]
    confusion = np.array(run.confusion)
    assert confusion.shape == (10, 10) and confusion.sum() == run.num_test == 500
    assert confusion.trace() / confusion.sum() == pytest.approx(run.test_accuracy, abs=0.002)
    assert confusion.sum(axis=1).tolist() == np.bincount(fashion.y_test, minlength=10).tolist()  # rows: true class
    samples = run.sample_predictions
    assert len(samples) == SAMPLE_PREDICTIONS
    assert [sample["index"] for sample in samples] == sorted({sample["index"] for sample in samples})
    assert all(sample["true"] == fashion.y_test[sample["index"]] for sample in samples)
    assert all(0 <= sample["predicted"] < 10 for sample in samples)
    assert sum(sample["true"] == sample["predicted"] for sample in samples) == SAMPLE_PREDICTIONS // 2
    assert json.loads(json.dumps(run.to_dict()))["confusion"] == run.confusion  # plain ints, JSON-ready


def test_generated_data_keeps_no_confusion_matrix(fashion):
    generated = synthetic_dataset("fashion_mnist", 128, 64, seed=0)
    run = train_on_devices(SMALL.with_changes(epochs=1), generated, ["cpu:0"])[0]
    assert run.status == "done" and run.test_accuracy is not None  # evaluated, but random labels teach nothing
    assert run.confusion == [] and run.sample_predictions == []


def test_confusion_counts_rows_are_true_classes():
    assert confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3) == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


@pytest.mark.parametrize(
    ("wrong", "right", "count", "expected_wrong", "expected_right"),
    [(50, 50, 12, 6, 6), (2, 98, 12, 2, 10), (0, 100, 12, 0, 12), (100, 0, 12, 12, 0), (3, 4, 12, 3, 4)],
)
def test_sample_predictions_are_half_right_half_wrong_where_possible(
    wrong, right, count, expected_wrong, expected_right
):
    true = np.zeros(wrong + right, dtype=np.int64)
    predicted = np.concatenate([np.ones(wrong, dtype=np.int64), np.zeros(right, dtype=np.int64)])
    picked = pick_sample_predictions(true, predicted, count)
    assert sum(sample["predicted"] != sample["true"] for sample in picked) == expected_wrong
    assert sum(sample["predicted"] == sample["true"] for sample in picked) == expected_right
    assert picked == pick_sample_predictions(true, predicted, count)  # the same pick every time
    assert [sample["index"] for sample in picked] == sorted({sample["index"] for sample in picked})


def test_same_seed_same_data_order_same_losses_on_every_device(compared):
    first, second = compared[0]
    assert second.status == "done" and second.device == "cpu:0"
    assert second.train_loss == first.train_loss
    assert second.test_accuracy == first.test_accuracy


def test_other_seed_gives_other_losses(fashion, compared):
    other = train_on_devices(SMALL.with_changes(seed=1, epochs=1), fashion, ["cpu:0"], test_limit=0)[0]
    assert other.status == "done" and other.test_accuracy is None
    assert other.train_loss[0] != compared[0][0].train_loss[0]


def test_progress_events_come_in_order(compared):
    events = compared[1]
    per_device = [events[: len(events) // 2], events[len(events) // 2 :]]
    for device_events in per_device:
        kinds = [event.kind for event in device_events]
        assert kinds[0] == "device_start" and kinds[-1] == "device_done"
        epochs = [event.epoch for event in device_events if event.kind == "epoch"]
        assert epochs == [1, 2, 3]
        batches = [event for event in device_events if event.kind == "batch"]
        assert len(batches) == 3 * 63  # unthrottled: one per step, the smaller last one too
        assert [(event.epoch, event.batch) for event in batches[:2]] == [(1, 0), (1, 1)]
        assert all(event.loss is None and event.batches == 63 and event.epochs == 3 for event in batches)
        epoch_events = [event for event in device_events if event.kind == "epoch"]
        assert all(isinstance(event.loss, float) and event.batch == 63 for event in epoch_events)
        elapsed = [event.elapsed_s for event in device_events]
        assert elapsed == sorted(elapsed)


def test_should_stop_after_an_epoch_cancels_and_skips_the_next_device(fashion):
    events = []

    def stop_after_first_epoch() -> bool:
        return any(event.kind == "epoch" for event in events)

    runs = train_on_devices(
        SMALL,
        fashion,
        TWO_CPUS,
        sample_limit=256,
        test_limit=64,
        progress=events.append,
        should_stop=stop_after_first_epoch,
    )
    assert [run.status for run in runs] == ["cancelled", "cancelled"]
    assert len(runs[0].epoch_s) == 1 and runs[0].total_s == runs[0].epoch_s[0]
    assert runs[0].test_accuracy is None
    assert "after 1 of 3 epochs" in runs[0].error
    assert runs[1].epoch_s == [] and "before training started" in runs[1].error
    assert [event.kind for event in events if event.device == "cpu:0"][-2:] == ["device_done", "device_done"]


def test_should_stop_mid_epoch_drops_the_partial_epoch(fashion, monkeypatch):
    monkeypatch.setattr(engine, "BATCH_EVENT_INTERVAL_S", 0.0)
    polls = []

    def stop_on_third_poll() -> bool:
        polls.append(1)
        return len(polls) >= 3

    run = train_on_devices(SMALL, fashion, ["cpu:0"], sample_limit=640, should_stop=stop_on_third_poll)[0]
    assert run.status == "cancelled"
    assert run.epoch_s == [] and run.total_s is None and run.steady_epoch_s is None
    assert len(polls) == 3


def test_a_failing_device_does_not_stop_the_others(fashion, monkeypatch):
    calls = []

    def build_or_run_out_of_memory(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("RESOURCE_EXHAUSTED: OOM when allocating tensor with shape[784,64]")
        return build_model(*args, **kwargs)

    monkeypatch.setattr(engine, "build_model", build_or_run_out_of_memory)
    spec = SMALL.with_changes(epochs=1)
    runs = train_on_devices(spec, fashion, TWO_CPUS, sample_limit=256, test_limit=64)
    assert runs[0].status == "failed"
    assert runs[0].error.startswith("Out of memory on cpu:0") and "smaller batch size" in runs[0].error
    assert runs[0].epoch_s == [] and runs[0].test_accuracy is None
    assert runs[1].status == "done" and len(runs[1].epoch_s) == 1 and runs[1].test_accuracy is not None


def test_describe_failure_keeps_other_errors_short_and_readable():
    message = describe_failure(ValueError("bad shape\n" + "x" * 1000), "gpu:1")
    assert message.startswith("Training failed on gpu:1: ValueError: bad shape x")
    assert len(message) < 500 and message.endswith("...")


def test_unknown_device_is_refused_before_any_training(fashion):
    events = []
    with pytest.raises(DeviceNotFoundError, match="'gpu:7'.*cpu:0"):
        train_on_devices(SMALL, fashion, ["cpu:0", "gpu:7"], progress=events.append)
    assert events == []


def test_jax_backend_trains_the_same_way():
    # TensorFlow is made unimportable, as on the GPU machine, which has only JAX.
    env = subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", "tests.helpers.gpu_machine", "-m", "tests.helpers.engine_jax_report"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["jit"] is True  # JAX always compiles, whatever the spec says
    first, second = result["runs"]
    assert first["backend"] == "jax" and first["synthetic"] is True
    assert first["status"] == "done" and second["status"] == "done"
    assert first["num_train"] == 300 and len(first["epoch_s"]) == 2  # 4 batches of 64 and one of 44
    assert first["train_loss"] == pytest.approx(second["train_loss"], rel=1e-6)
    assert first["train_loss"][1] < first["train_loss"][0]
    assert 0.0 <= first["test_accuracy"] <= 1.0  # generated labels are random: chance, about 0.1

    resident = result["resident"]
    assert resident["status"] == "done" and resident["num_train"] == 300
    assert len(resident["epoch_s"]) == 3 and all(seconds > 0 for seconds in resident["epoch_s"])
    assert resident["total_s"] == pytest.approx(sum(resident["epoch_s"]))
    assert resident["train_loss"][-1] < resident["train_loss"][0]
    assert 0.0 <= resident["test_accuracy"] <= 1.0  # evaluated (random generated labels: chance)
    confusion = resident["confusion"]  # its data is marked real, so it predicted the test images too
    assert sum(map(sum, confusion)) == 100
    assert sum(confusion[i][i] for i in range(10)) / 100 == pytest.approx(resident["test_accuracy"], abs=0.011)
    assert len(resident["sample_predictions"]) == 12
    assert result["resident_events"].count("epoch") == 3
    assert result["resident_events"][0] == "device_start" and result["resident_events"][-1] == "device_done"
    stopped = result["stopped"]
    assert stopped["status"] == "cancelled" and len(stopped["epoch_s"]) == 1


@pytest.mark.parametrize(
    ("backend", "asked", "expected"),
    [("jax", True, True), ("jax", False, False), ("tensorflow", True, False), ("torch", True, False)],
)
def test_device_resident_loop_only_where_it_exists(backend, asked, expected):
    spec = SMALL.with_changes(device_resident=asked)
    assert uses_device_resident_loop(spec, backend) is expected


class SteadyWatts(energy.EnergySource):
    """A device that draws `watts` all the time: its counter grows with the clock."""

    method = energy.RAPL

    def __init__(self, watts: float):
        self.watts = watts
        self.opened = time.perf_counter()
        self.closed = False

    def read_joules(self) -> float:
        return self.watts * (time.perf_counter() - self.opened)

    def close(self) -> None:
        self.closed = True


def test_a_run_keeps_the_energy_its_device_measured_per_epoch_and_in_all(fashion, monkeypatch):
    source = SteadyWatts(50.0)
    monkeypatch.setattr(engine, "open_energy_source", lambda device: source)
    monkeypatch.setattr(engine, "IDLE_MEASURE_S", 0.05)
    monkeypatch.setattr(engine, "_IDLE_READINGS", {})

    (run,) = train_on_devices(SMALL.with_changes(epochs=2), fashion, ["cpu:0"], test_limit=0)

    assert run.energy_method == energy.RAPL and source.closed
    assert run.idle_w == pytest.approx(50.0, rel=0.05)
    assert run.energy_j == pytest.approx(50.0 * run.total_s, rel=0.05)  # the epochs' time, at 50 W
    assert sum(run.energy_epoch_j) == pytest.approx(run.energy_j) and len(run.energy_epoch_j) == 2
    assert run.energy_above_idle_j == pytest.approx(0.0, abs=0.05 * run.energy_j)  # busy = idle for this device


def test_a_devices_idle_draw_is_measured_before_its_first_run_and_reused_for_a_while(monkeypatch):
    measured = []
    monkeypatch.setattr(engine, "_IDLE_READINGS", {})
    monkeypatch.setattr(engine, "measure_idle_watts", lambda source, seconds: measured.append(source) or 40.0)
    now = [1_000.0]
    source = SteadyWatts(40.0)

    readings = [engine.device_idle_watts("gpu:0", source, clock=lambda: now[0]) for _ in range(3)]
    assert readings == [40.0] * 3 and len(measured) == 1  # a sweep's later points pay no second
    engine.device_idle_watts("gpu:1", source, clock=lambda: now[0])
    assert len(measured) == 2  # each device its own
    now[0] += engine.IDLE_REUSE_S
    engine.device_idle_watts("gpu:0", source, clock=lambda: now[0])
    assert len(measured) == 3  # an old reading is measured again


def test_where_no_counter_can_be_read_the_run_says_not_measured_and_why(fashion, monkeypatch):
    reason = "not measured on this server: no counter here."
    monkeypatch.setattr(engine, "open_energy_source", lambda device: energy.EnergyUnavailable(reason))

    (run,) = train_on_devices(SMALL.with_changes(epochs=1), fashion, ["cpu:0"], test_limit=0)

    assert run.energy_method == energy.NOT_MEASURED and run.energy_j is None and run.energy_epoch_j is None
    assert reason in run.energy_note
