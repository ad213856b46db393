"""What one timed training run on one device produced, as plain data.

`DeviceRun` is written by `lib.engine`, stored by `lib.store`, printed by `lib.bench`, sent by the
job worker and drawn by `lib.charts`. It imports nothing heavy, so every layer can use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATUSES = ("done", "failed", "cancelled", "timed_out", "interrupted")


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

    def to_dict(self) -> dict[str, Any]:
        """Returns the run as JSON-ready plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceRun:
        """Builds a run from `to_dict` output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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

    def to_dict(self) -> dict[str, Any]:
        """Returns the event as JSON-ready plain data."""
        return asdict(self)
