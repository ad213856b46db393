"""The benchmark engine: trains one spec on each chosen device in turn and times every epoch honestly.

What makes the numbers comparable across devices:

- every device gets a fresh model (`keras.utils.clear_session()`), the same seed, the same initial weights
  and the same shuffle order (Keras shuffles with the global seed that `build_model` sets);
- the images are converted once, before any device starts, to float32 in [0, 1] (never float64), and the
  labels to one-hot float32 or integer class indices, as the spec says (`lib.preprocessing`, which the
  Datasets page shows);
- every sample asked for trains, the last batch smaller when they do not fill whole batches: JAX keeps one
  compiled step per shape (the smaller batch costs one more trace, in epoch 1) and the data-on-the-device
  loop trains it in the same call. Only a compiled step (XLA) through `model.fit` on TensorFlow or PyTorch
  compiles again for the smaller batch, measured on TensorFlow in epochs 1 and 2, which would be timed as
  training: there the samples are cut to whole batches (`lib.estimates.trained_samples`, which the pages
  use to say so). The run's `num_train` is the count that trained;
- an epoch's time runs from `on_epoch_begin` to `on_epoch_end`. Keras turns the epoch's loss and metrics
  into Python floats before calling `on_epoch_end`, which waits for the device to finish, so the clock is
  read after the work is done, not when it was queued. Epoch 1 (tracing and compilation) is reported
  apart from the steady state (median of epochs 2..n).

After the timed epochs each model is evaluated on the test samples and, on real data, predicts them once
more: the run keeps its confusion matrix and a few test images with their predicted and true labels.

Progress events never force a device sync: batch events are sent from `on_train_batch_begin`, which
Keras calls without converting any tensor, and carry the count of dispatched steps, not the loss.

Run it from the CLI (`python -m lib.bench`) or through the job runner; this module has no UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np

from lib import device_resident
from lib.device_run import DeviceRun, ProgressEvent, is_out_of_memory
from lib.devices import resolve_device
from lib.energy import (
    EnergyMeter,
    EnergyReadError,
    EnergySource,
    energy_fields,
    measure_idle_watts,
    not_measured,
    open_energy_source,
)
from lib.estimates import trained_samples
from lib.model import build_model
from lib.parallel import (
    data_parallel_spec,
    device_scope,
    replica_count,
    replica_devices,
    trim_to_replicas,
    validate_batch_split,
)
from lib.preprocessing import encode_labels, scale_images
from lib.spec import ModelSpec, flops_per_epoch

if TYPE_CHECKING:
    from lib.datasets import Dataset

BATCH_EVENT_INTERVAL_S = 0.25  # at most one batch event per this many seconds (should_stop: every step)
MAX_ERROR_CHARS = 400  # longer error messages are cut for display
SAMPLE_PREDICTIONS = 12  # test images a run keeps with their predicted and true labels
IDLE_MEASURE_S = 1.0  # the device's idle power is read over this long before its first run (where it can be read)
# A sweep or a repeated job trains one device many times in one process: its idle draw, read before the first of
# them, serves the later ones for this long. A reading right after a run would catch the device still warm.
IDLE_REUSE_S = 600.0
_IDLE_READINGS: dict[str, tuple[float, float]] = {}  # device -> (idle watts, time.monotonic() when read)

ProgressCallback = Callable[[ProgressEvent], None]
StopCheck = Callable[[], bool]


class TrainingDataError(ValueError):
    """The dataset or the sample limits leave nothing to train or test on."""


@dataclass(frozen=True)
class TrainingData:
    """Model-ready arrays shared by every device of one comparison."""

    x_train: np.ndarray  # float32 in [0, 1]; the samples that train (whole batches only where XLA needs them)
    y_train: np.ndarray  # one-hot float32 (n, classes) or int32 class indices (n,)
    x_test: np.ndarray  # float32 in [0, 1]
    y_test: np.ndarray  # like y_train
    image_shape: tuple[int, ...]  # one image, e.g. (28, 28)
    num_classes: int  # output units
    synthetic: bool  # True when the data was generated


def train_on_devices(
    spec: ModelSpec,
    dataset: Dataset,
    devices: Sequence[str],
    *,
    sample_limit: int | None = None,
    test_limit: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    target_accuracy: float | None = None,
) -> list[DeviceRun]:
    """Trains the spec on each device in turn, with the same seed and data, and times it.

    The spec is assumed valid (`lib.spec.validate_spec` is the caller's job, with its server limits).

    Args:
        spec: The model and training settings.
        dataset: A `lib.datasets.Dataset` (uint8 images, uint8 labels, `info`, `synthetic`).
        devices: Device names such as "cpu:0", "gpu:0"; the same device may appear twice. "gpu:all" trains
            data parallel on every GPU at once (`lib.parallel`; its run's `replicas` says how many).
        sample_limit: Use at most this many training samples (`lib.estimates.trained_samples` of them train).
        test_limit: Evaluate on at most this many test samples; 0 skips the evaluation.
        progress: Receives `ProgressEvent`s: device_start, throttled batch, epoch, device_done.
        should_stop: Polled during training; when it returns True the current device stops (status
            "cancelled", finished epochs kept) and the remaining devices are not started.
        target_accuracy: Time to accuracy: each epoch ends with an evaluation on the test samples (timed with
            the epoch), and a device stops once its test accuracy reaches this (`lib.requests` checks that the
            run has real test data and trains with `model.fit`).

    Returns:
        One `DeviceRun` per requested device, in order. A device that fails (out of memory, say) gets
        status "failed" and a readable error; the next device still runs.

    Raises:
        DeviceNotFoundError: A device is not present (raised before any training; lists the present ones).
        TrainingDataError: The limits leave no training sample.
        BatchSplitError: The batch size does not divide by a data-parallel device's replica count.
    """
    resolved = [resolve_device(name) for name in devices]
    validate_batch_split(resolved, spec.batch_size)
    data = prepare_data(spec, dataset, sample_limit=sample_limit, test_limit=test_limit)
    runs = []
    for device in resolved:
        if should_stop is not None and should_stop():
            runs.append(_not_started(device, data, progress))
        else:
            runs.append(
                train_on_device(
                    spec, data, device, progress=progress, should_stop=should_stop, target_accuracy=target_accuracy
                )
            )
    return runs


def prepare_data(
    spec: ModelSpec,
    dataset: Dataset,
    *,
    sample_limit: int | None,
    test_limit: int | None,
    backend: str | None = None,
) -> TrainingData:
    """Takes the samples that train (`lib.estimates.trained_samples`) and converts them once to model-ready arrays.

    Args:
        spec: Supplies the batch size, the label encoding and jit_compile.
        dataset: A `lib.datasets.Dataset`.
        sample_limit: At most this many training samples (None: all).
        test_limit: At most this many test samples (None: all).
        backend: The Keras backend that trains; the active one when None.

    Raises:
        TrainingDataError: No training sample is left.
    """
    available = len(dataset.x_train) if sample_limit is None else min(len(dataset.x_train), sample_limit)
    num_train = trained_samples(spec, available, backend or keras.backend.backend())
    if num_train < 1:
        raise TrainingDataError(
            f"No training samples to use (sample limit {sample_limit}, {len(dataset.x_train)} available); "
            "raise the sample limit."
        )
    num_test = len(dataset.x_test) if test_limit is None else max(0, min(len(dataset.x_test), test_limit))
    num_classes = dataset.info.num_classes
    return TrainingData(
        x_train=scale_images(dataset.x_train[:num_train]),
        y_train=encode_labels(dataset.y_train[:num_train], spec.label_encoding, num_classes),
        x_test=scale_images(dataset.x_test[:num_test]),
        y_test=encode_labels(dataset.y_test[:num_test], spec.label_encoding, num_classes),
        image_shape=tuple(dataset.info.image_shape),
        num_classes=num_classes,
        synthetic=bool(dataset.synthetic),
    )


def train_on_device(
    spec: ModelSpec,
    data: TrainingData,
    device: str,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    target_accuracy: float | None = None,
) -> DeviceRun:
    """Builds a fresh model on one device, trains and evaluates it, and returns its timings.

    Args:
        spec: The model and training settings.
        data: Arrays from `prepare_data`.
        device: A present, normalised device name ("cpu:0").
        progress: Receives this device's `ProgressEvent`s.
        should_stop: Polled during training; True cancels this device.
        target_accuracy: Stop once the test accuracy after an epoch reaches this (see `train_on_devices`).

    Returns:
        The run; status "failed" (with the reason) instead of raising when training breaks.
    """
    replicas = replica_count(device)  # "gpu:all" trains on several devices at once (lib.parallel)
    spec, data = data_parallel_spec(spec, device), trim_to_replicas(data, replicas)
    keras.utils.clear_session()
    run = DeviceRun(
        device=device,
        backend=keras.backend.backend(),
        synthetic=data.synthetic,
        num_train=len(data.x_train),
        num_test=len(data.x_test),
        replicas=replicas,
    )
    energy, close_energy = energy_meter(device)
    timer = EpochTimer(
        device=device,
        epochs=spec.epochs,
        steps_per_epoch=-(-len(data.x_train) // spec.batch_size),
        progress=progress,
        should_stop=should_stop,
        energy=energy,
    )
    target = TargetStop(target_accuracy) if target_accuracy is not None and len(data.x_test) else None
    timer.emit("device_start", epoch=0)
    try:
        _fit_and_evaluate(spec, data, device, timer, run, target)
    except Exception as error:  # any failure of one device must not stop the others
        run.status = "failed"
        run.error = describe_failure(error, device)
    finally:
        close_energy()
        keras.utils.clear_session()
    _fill_timings(run, timer, spec, data)
    run.set_energy(energy_fields(timer.energy.result()))
    if target is not None:
        run.set_target(target.target, target.accuracies)
    if timer.cancelled and run.status == "done":
        run.status = "cancelled"
        run.error = f"Cancelled after {len(timer.epoch_s)} of {spec.epochs} epochs."
    timer.emit("device_done", epoch=len(timer.epoch_s))
    return run


def _fit_and_evaluate(
    spec: ModelSpec, data: TrainingData, device: str, timer: EpochTimer, run: DeviceRun, target: TargetStop | None
) -> None:
    resident = uses_device_resident_loop(spec, run.backend)
    replicas = replica_devices(device) if run.replicas > 1 else [device]
    # The device-resident loop replicates the weights itself: build on the first replica, with no distribution.
    with device_scope(replicas[0] if resident else device):
        model = build_model(spec, data.image_shape, data.num_classes)
        if resident:
            timer.energy.start()  # the loop calls no Keras callbacks: its first epoch starts now
            device_resident.fit_device_resident(
                model,
                data.x_train,
                data.y_train,
                batch_size=spec.batch_size,
                epochs=spec.epochs,
                seed=spec.seed,
                devices=device_resident.jax_devices(replicas) if run.replicas > 1 else None,
                on_epoch_end=timer.record_epoch,
                should_stop=timer.stop_requested,
            )
        else:
            # With a target, Keras evaluates the test samples at the end of each epoch, before the callbacks'
            # on_epoch_end: the timer's epoch includes that evaluation, as time to accuracy must.
            held_out = {} if target is None else {"validation_data": (data.x_test, data.y_test)}
            model.fit(
                data.x_train,
                data.y_train,
                batch_size=spec.batch_size,
                epochs=spec.epochs,
                shuffle=True,
                verbose=0,
                callbacks=[timer] if target is None else [timer, target],
                validation_batch_size=spec.batch_size,
                **held_out,
            )
        if timer.cancelled or len(data.x_test) == 0:
            return
        test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=spec.batch_size, verbose=0)
        # Random labels teach nothing to look at: generated data gets no predictions (and saves the pass).
        predicted = None if data.synthetic else predicted_classes(model, data.x_test, spec.batch_size)
    run.test_loss = float(test_loss)
    run.test_accuracy = float(test_accuracy)
    if predicted is not None:
        true = true_classes(data.y_test)
        run.confusion = confusion_counts(true, predicted, data.num_classes)
        run.sample_predictions = pick_sample_predictions(true, predicted, SAMPLE_PREDICTIONS)


def predicted_classes(model: keras.Model, x_test: np.ndarray, batch_size: int) -> np.ndarray:
    """The class each test image is given: the output unit with the highest score, after training and its clock."""
    return np.asarray(model.predict(x_test, batch_size=batch_size, verbose=0)).argmax(axis=1)


def true_classes(y_test: np.ndarray) -> np.ndarray:
    """Class indices from encoded labels: one-hot rows (n, classes) or indices (n,)."""
    return y_test.argmax(axis=1) if y_test.ndim == 2 else y_test.astype(np.int64)


def confusion_counts(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts test images per (true class, predicted class): rows are true classes, the diagonal is right.

    Args:
        true: Class index of each test image.
        predicted: Class index the model gave each test image.
        num_classes: Rows and columns of the matrix.

    Returns:
        A `num_classes` x `num_classes` list of lists of ints (JSON-ready); it sums to the test images.
    """
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts.tolist()


def pick_sample_predictions(true: np.ndarray, predicted: np.ndarray, count: int) -> list[dict[str, int]]:
    """Picks test images to show with their labels: half predicted right, half wrong where there are enough.

    The same run always gives the same pick: the images are spread evenly over the right and the wrong
    ones in test-set order, so they are not all the first few.

    Args:
        true: Class index of each test image.
        predicted: Class index the model gave each test image.
        count: Images to pick at most.

    Returns:
        `{"index": test image, "true": class, "predicted": class}` dicts in test-set order.
    """
    wrong = np.flatnonzero(predicted != true)
    right = np.flatnonzero(predicted == true)
    num_wrong = min(len(wrong), count // 2)
    num_right = min(len(right), count - num_wrong)
    num_wrong = min(len(wrong), count - num_right)  # too few right ones: show more wrong ones
    picked = np.sort(np.concatenate([_spread(wrong, num_wrong), _spread(right, num_right)]))
    return [{"index": int(i), "true": int(true[i]), "predicted": int(predicted[i])} for i in picked]


def _spread(indices: np.ndarray, count: int) -> np.ndarray:
    """`count` of the indices, evenly spaced from the first to the last."""
    if count < 1:
        return indices[:0]
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(np.int64)]


def uses_device_resident_loop(spec: ModelSpec, backend: str) -> bool:
    """Tells whether a run trains with its data on the device (`lib.device_resident`) instead of `model.fit`.

    Data-parallel runs ("gpu:all") use it too: the loop replicates the weights and averages the gradients itself.

    Args:
        spec: The model and training settings; `device_resident` asks for the loop.
        backend: The Keras backend; the loop exists for JAX only, other backends fall back to `model.fit`.
    """
    return spec.device_resident and device_resident.supported(backend)


def energy_meter(device: str) -> tuple[EnergyMeter, Callable[[], None]]:
    """An energy meter for one device's run, its idle power measured now, and what closes its source.

    Where the device's counters cannot be read the meter says "not measured" with the reason, and nothing
    is guessed. Measuring the idle power takes `IDLE_MEASURE_S`, before the run's clock starts, once per device
    and `IDLE_REUSE_S` (`device_idle_watts`).
    """
    source = open_energy_source(device)
    if not isinstance(source, EnergySource):
        return EnergyMeter(source), lambda: None
    try:
        idle_watts = device_idle_watts(device, source)
    except EnergyReadError as error:
        source.close()
        return EnergyMeter(not_measured(str(error))), lambda: None
    return EnergyMeter(source, idle_watts=idle_watts), source.close


def device_idle_watts(device: str, source: EnergySource, clock: Callable[[], float] = time.monotonic) -> float:
    """The device's idle draw: measured over `IDLE_MEASURE_S`, then reused for `IDLE_REUSE_S` by this process.

    Raises:
        EnergyReadError: The source stopped answering while the idle draw was measured.
    """
    kept = _IDLE_READINGS.get(device)
    if kept is not None and clock() - kept[1] < IDLE_REUSE_S:
        return kept[0]
    watts = measure_idle_watts(source, IDLE_MEASURE_S)
    _IDLE_READINGS[device] = (watts, clock())
    return watts


def _fill_timings(run: DeviceRun, timer: EpochTimer, spec: ModelSpec, data: TrainingData) -> None:
    run.train_loss = list(timer.loss)
    run.train_accuracy = list(timer.accuracy)
    input_size = int(np.prod(data.image_shape))
    run.set_epoch_times(timer.epoch_s, flops_per_epoch(spec, run.num_train, input_size, data.num_classes))


def describe_failure(error: BaseException, device: str) -> str:
    """Turns a training exception into a short message that says what to try.

    Args:
        error: What training raised.
        device: The device it ran on.
    """
    if is_out_of_memory(error):
        return (
            f"Out of memory on {device}: the model, its optimizer state or one batch does not fit. "
            "Try a smaller batch size or fewer/smaller hidden layers."
        )
    text = " ".join(str(error).split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return f"Training failed on {device}: {type(error).__name__}: {text}"


def _not_started(device: str, data: TrainingData, progress: ProgressCallback | None) -> DeviceRun:
    run = DeviceRun(
        device=device,
        backend=keras.backend.backend(),
        synthetic=data.synthetic,
        status="cancelled",
        error="Cancelled before training started on this device.",
        num_train=len(data.x_train),
        num_test=len(data.x_test),
    )
    if progress is not None:
        progress(ProgressEvent(kind="device_done", device=device))
    return run


class TargetStop(keras.callbacks.Callback):
    """Keeps the test accuracy after each epoch and stops training once it reaches the target."""

    def __init__(self, target: float):
        super().__init__()
        self.target = float(target)
        self.accuracies: list[float] = []  # test accuracy after each finished epoch

    def on_epoch_end(self, epoch, logs=None):
        """Reads the epoch's held-out accuracy (Keras' `val_accuracy`); at the target, training stops."""
        accuracy = float((logs or {}).get("val_accuracy", float("nan")))
        self.accuracies.append(accuracy)
        if accuracy >= self.target:
            self.model.stop_training = True


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch, keeps its loss and accuracy, sends progress events and honours cancellation.

    Only `on_train_batch_begin` runs per step: Keras calls it without turning tensors into Python
    numbers, so it never makes the host wait for the device. It costs one should_stop call and one
    clock read per call (once per `steps_per_execution` steps) plus a throttled event.
    """

    def __init__(
        self,
        device: str,
        epochs: int,
        steps_per_epoch: int,
        progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        energy: EnergyMeter,
    ):
        super().__init__()
        self.device = device
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.progress = progress
        self.should_stop = should_stop
        self.epoch_s: list[float] = []  # wall time of each finished epoch
        self.loss: list[float] = []  # training loss of each finished epoch
        self.accuracy: list[float] = []  # training accuracy of each finished epoch
        self.cancelled = False  # should_stop returned True
        self.energy = energy  # marked at each epoch's start and end (`energy_meter`)
        self.started = time.perf_counter()
        self._epoch_started = self.started
        self._last_batch_event = self.started
        self._epoch = 0

    def emit(self, kind: str, epoch: int, batch: int = 0, loss: float | None = None, accuracy: float | None = None):
        """Sends one progress event, when a progress callback was given."""
        if self.progress is None:
            return
        self.progress(
            ProgressEvent(
                kind=kind,
                device=self.device,
                epoch=epoch,
                epochs=self.epochs,
                batch=batch,
                batches=self.steps_per_epoch,
                elapsed_s=time.perf_counter() - self.started,
                loss=loss,
                accuracy=accuracy,
            )
        )

    def record_epoch(self, epoch: int, stats: device_resident.EpochStats) -> None:
        """Records an epoch timed by the device-resident loop (which calls no Keras callbacks)."""
        self.energy.mark()
        self.epoch_s.append(stats.seconds)
        self.loss.append(stats.loss)
        self.accuracy.append(stats.accuracy)
        self.emit("epoch", epoch=epoch, batch=self.steps_per_epoch, loss=stats.loss, accuracy=stats.accuracy)

    def stop_requested(self) -> bool:
        """Polled by the device-resident loop before each epoch; True once should_stop said so."""
        if not self.cancelled and self.should_stop is not None and self.should_stop():
            self.cancelled = True
        return self.cancelled

    def on_epoch_begin(self, epoch, logs=None):
        """Starts the epoch's clock (and, before epoch 1, the energy reading)."""
        self._epoch = epoch + 1
        if epoch == 0:
            self.energy.start()
        self._epoch_started = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        """Polls should_stop before every step; every ~0.25 s sends a batch event (`batch` steps dispatched so far).

        should_stop is a flag read (the worker's stop event), so polling it every step costs nothing measurable,
        and a cancel stops training after the step under way instead of up to 0.25 s later.
        """
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True
            return
        now = time.perf_counter()
        if now - self._last_batch_event < BATCH_EVENT_INTERVAL_S:
            return
        self._last_batch_event = now
        self.emit("batch", epoch=self._epoch, batch=batch)

    def on_epoch_end(self, epoch, logs=None):
        """Stops the clock (Keras has synced to compute `logs`) and records the epoch unless it was cut short."""
        elapsed = time.perf_counter() - self._epoch_started
        if self.cancelled:
            return
        self.energy.mark()
        logs = logs or {}
        self.epoch_s.append(elapsed)
        self.loss.append(float(logs.get("loss", float("nan"))))
        self.accuracy.append(float(logs.get("accuracy", float("nan"))))
        self.emit("epoch", epoch=epoch + 1, batch=self.steps_per_epoch, loss=self.loss[-1], accuracy=self.accuracy[-1])
        is_last = epoch + 1 >= self.epochs
        if not is_last and self.should_stop is not None and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True
