"""What one timed training run on one device produced, as plain data.

`DeviceRun` is written by `lib.engine`, stored by `lib.store`, printed by `lib.bench`, sent by the
job worker and drawn by `lib.charts`. It imports nothing heavy, so every layer can use it.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATUSES = ("done", "failed", "cancelled", "timed_out", "interrupted")
# How TensorFlow, JAX (XLA) and PyTorch say a device ran out of memory, lower-case; "OOM" is matched as a word.
OUT_OF_MEMORY_MARKERS = ("resource_exhausted", "resourceexhausted", "out of memory", "out_of_memory")
_OOM_WORD = re.compile(r"\bOOM\b")


def is_out_of_memory(error: BaseException) -> bool:
    """Says whether an exception means the device (or the host) ran out of memory, on any backend.

    Args:
        error: What training or a matrix product raised.
    """
    if isinstance(error, MemoryError):
        return True
    text = f"{type(error).__name__}: {error}"
    return any(marker in text.lower() for marker in OUT_OF_MEMORY_MARKERS) or bool(_OOM_WORD.search(text))


@dataclass
class DeviceRun:
    """Timings and metrics of one spec trained on one device.

    Times are wall-clock seconds. `epoch_s[0]` includes tracing and compilation; the
    steady-state numbers use the later epochs only (or epoch 1 when there is only one).
    """

    device: str  # normalised device name, "cpu:0", "gpu:0"
    backend: str  # Keras backend: "tensorflow", "jax" or "torch"
    synthetic: bool  # True when the data was generated, not the real dataset
    status: str = "done"  # one of STATUSES
    error: str = ""  # readable reason when status is not "done"
    num_train: int = 0  # training samples per epoch
    num_test: int = 0  # test samples evaluated
    epoch_s: list[float] = field(default_factory=list)  # wall time of each finished epoch
    first_epoch_s: float | None = None  # epoch 1, with tracing and compilation
    steady_epoch_s: float | None = None  # median of epochs 2.. (epoch 1 when only one)
    total_s: float | None = None  # sum of epoch times: what the tutorial's %%timeit measured
    samples_per_s: float | None = None  # num_train / steady_epoch_s
    achieved_flops_per_s: float | None = None  # training FLOPs per epoch / steady_epoch_s
    train_loss: list[float] = field(default_factory=list)  # per epoch
    train_accuracy: list[float] = field(default_factory=list)  # per epoch
    test_loss: float | None = None
    test_accuracy: float | None = None
    replicas: int = 1  # devices that trained together: 1, or N for data parallel over N devices ("gpu:all")
    sweep_batch: int = 0  # a sweep's point (`lib.sweep`): the batch size it trained with; 0 in an ordinary job
    repeat: int = 0  # in a job that repeats each device (`JobRequest.repeats`): this run's number, from 1; else 0
    # Time to accuracy (`JobRequest.target_accuracy`): held-out accuracy after each epoch, evaluation timed.
    target_accuracy: float | None = None  # the test accuracy the run stops at; None: it trains every epoch
    held_out_accuracy: list[float] = field(default_factory=list)  # test accuracy after each epoch (with a target)
    target_epoch: int | None = None  # the epoch that reached the target; None: not reached (or no target)
    time_to_target_s: float | None = None  # epochs 1..target_epoch, their evaluation included
    # Energy (`lib.energy`), measured or not at all: `energy_method` says how, `energy_note` why not.
    energy_method: str = ""  # "nvml energy counter", "nvml sampled power", "rapl", "not measured"; "" for old runs
    energy_j: float | None = None  # joules of the run's epochs, idle power included
    energy_epoch_j: list[float] | None = None  # joules per epoch (short epochs share a window of at least 1 s)
    energy_above_idle_j: float | None = None  # energy_j less the idle power over the same time
    idle_w: float | None = None  # the device's idle power, measured just before training
    energy_note: str = ""  # how it was measured, or why it was not, in words
    # Real data only (generated labels are random); empty for older runs, which did not keep them.
    confusion: list[list[int]] = field(default_factory=list)  # test images per [true class][predicted class]
    sample_predictions: list[dict[str, int]] = field(default_factory=list)  # {"index", "true", "predicted"}

    def set_epoch_times(self, epoch_s: Sequence[float], flops_per_epoch: float | None = None) -> None:
        """Keeps the finished epochs' times and derives the run's timings from them (nothing more without epochs).

        Epoch 1 apart (tracing and compilation), the steady epoch (`steady_epoch_seconds`), the total (their
        sum, what the tutorial's %%timeit measured) and the throughputs per steady epoch.

        Args:
            epoch_s: Wall time of each finished epoch, in order. `num_train` must already be set.
            flops_per_epoch: Training FLOPs of one epoch (`lib.spec.flops_per_epoch`); None leaves
                `achieved_flops_per_s` unset.
        """
        self.epoch_s = list(epoch_s)
        if not self.epoch_s:
            return
        self.first_epoch_s = self.epoch_s[0]
        self.steady_epoch_s = steady_epoch_seconds(self.epoch_s)
        self.total_s = sum(self.epoch_s)
        if self.steady_epoch_s > 0:
            self.samples_per_s = self.num_train / self.steady_epoch_s
            if flops_per_epoch is not None:
                self.achieved_flops_per_s = flops_per_epoch / self.steady_epoch_s

    def set_target(self, target_accuracy: float, held_out_accuracy: Sequence[float]) -> None:
        """Keeps the held-out accuracy after each epoch and when (if at all) it reached the target.

        Call after `set_epoch_times`: the time to target is the sum of the epochs up to the first one whose
        accuracy reached `target_accuracy` (each epoch's time includes its evaluation). Accuracies of epochs
        that were not timed (a cancel inside the epoch) are dropped.
        """
        self.target_accuracy = float(target_accuracy)
        self.held_out_accuracy = [float(accuracy) for accuracy in held_out_accuracy][: len(self.epoch_s)]
        reached = next((i for i, acc in enumerate(self.held_out_accuracy) if acc >= target_accuracy), None)
        if reached is None:
            self.target_epoch, self.time_to_target_s = None, None
            return
        self.target_epoch = reached + 1
        self.time_to_target_s = sum(self.epoch_s[: reached + 1])

    def set_energy(self, energy: Mapping[str, Any]) -> None:
        """Keeps `lib.energy.energy_fields` output: how the energy was measured and the joules, or why not."""
        for name in ENERGY_FIELDS:
            setattr(self, name, energy.get(name))
        self.energy_method = self.energy_method or ""
        self.energy_note = self.energy_note or ""

    @property
    def key(self) -> str:
        """What tells this run apart from the job's others (`run_key`): its device, a sweep's batch, a repeat."""
        return run_key(self.device, self.sweep_batch, self.repeat)

    def to_dict(self) -> dict[str, Any]:
        """Returns the run as JSON-ready plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceRun:
        """Builds a run from `to_dict` output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


ENERGY_FIELDS = ("energy_method", "energy_j", "energy_epoch_j", "energy_above_idle_j", "idle_w", "energy_note")


def run_key(device: str, sweep_batch: int = 0, repeat: int = 0) -> str:
    """Names one run of a job: "cpu:0"; in a sweep "cpu:0 @ 512"; in a job that repeats each device "cpu:0 #2".

    An ordinary job trains each device once, so its keys are its device names.
    """
    return device + (f" @ {sweep_batch}" if sweep_batch else "") + (f" #{repeat}" if repeat else "")


def steady_epoch_seconds(epoch_s: Sequence[float]) -> float:
    """Returns the steady-state epoch time: the median of epochs 2..n, or epoch 1 when it is the only one."""
    return statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else epoch_s[0]


@dataclass
class ProgressEvent:
    """One progress report from a training run, small enough to send between processes.

    Kinds: "device_start", "batch" (throttled), "epoch", "device_done". Batch events carry the
    count of dispatched steps; the engine never forces a device sync to produce them.
    """

    kind: str  # "device_start", "batch", "epoch" or "device_done"
    device: str  # normalised device name
    epoch: int = 0  # 1-based epoch number (0 before the first)
    epochs: int = 0  # epochs planned
    batch: int = 0  # steps finished in this epoch
    batches: int = 0  # steps per epoch
    elapsed_s: float = 0.0  # wall time since this device started
    loss: float | None = None  # latest training loss, when known without a sync
    accuracy: float | None = None  # latest training accuracy, when known without a sync
    sweep_batch: int = 0  # a sweep's point: the batch size it trains with; 0 in an ordinary job
    repeat: int = 0  # a repeated run's number, from 1; 0 when the job does not repeat

    @property
    def key(self) -> str:
        """The run this event is about (`run_key`)."""
        return run_key(self.device, self.sweep_batch, self.repeat)

    def to_dict(self) -> dict[str, Any]:
        """Returns the event as JSON-ready plain data."""
        return asdict(self)
