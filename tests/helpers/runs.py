"""Finished runs for tests that store or chart runs without training: one factory, its fields overridable.

The last epoch is the steady one (every caller's epochs 2..n are equal, so it is also their median), the
throughput follows from it, and the losses fall and the accuracies rise by epoch, as a real run's would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lib.device_run import DeviceRun


def device_run(device: str, epoch_s: list[float], num_train: int = 1000, **changes: Any) -> DeviceRun:
    """A finished run on real data of `num_train` samples with the given epoch times.

    Args:
        device: Its device name.
        epoch_s: Seconds of each epoch, epoch 1 with its compilation.
        num_train: Training samples per epoch.
        **changes: Other `DeviceRun` fields to set (num_test, confusion, train_loss, ...).
    """
    run = DeviceRun(
        device=device,
        backend="tensorflow",
        synthetic=False,
        num_train=num_train,
        num_test=500,
        epoch_s=epoch_s,
        first_epoch_s=epoch_s[0],
        steady_epoch_s=epoch_s[-1],
        total_s=sum(epoch_s),
        samples_per_s=num_train / epoch_s[-1],
        achieved_flops_per_s=1e9,
        train_loss=[1.0 - 0.1 * epoch for epoch in range(len(epoch_s))],
        train_accuracy=[0.6 + 0.05 * epoch for epoch in range(len(epoch_s))],
        test_loss=0.5,
        test_accuracy=0.8,
    )
    return dataclasses.replace(run, **changes)
