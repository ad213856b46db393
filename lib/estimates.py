"""Epoch-time estimates for a model that has not been trained yet, from past runs of similar size.

The Build page shows, per device, about how long one epoch would take. The estimate divides the new
model's training FLOPs per epoch by the FLOP/s that the most similar stored runs on that device achieved
(similar: training FLOPs per sample and batch size closest on a log scale, since both set how busy a
device is kept). With no usable stored run on a device the answer is "no estimate yet".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from lib.spec import ModelSpec, SpecError, flops_per_epoch, flops_per_sample

NEIGHBOURS = 3  # stored runs averaged (median) per estimate
ROUGH_DISTANCE = math.log(10)  # nearest run over 10x away in size (log distance): the estimate is rough
NO_ESTIMATE_TEXT = "no estimate yet"


@dataclass(frozen=True)
class EpochEstimate:
    """The estimated time of one training epoch on one device."""

    device: str  # normalised device name, "cpu:0"
    seconds: float | None  # estimated seconds per steady-state epoch; None when no run is usable
    flops_per_s: float | None  # the achieved FLOP/s the estimate assumes
    based_on: int  # stored runs the estimate used
    rough: bool  # True when even the nearest stored run is far from this model's size

    @property
    def text(self) -> str:
        """A short readable form: "about 12.3 s (from 3 runs)" or "no estimate yet"."""
        if self.seconds is None:
            return NO_ESTIMATE_TEXT
        runs = "run" if self.based_on == 1 else "runs"
        qualifier = "roughly" if self.rough else "about"
        return f"{qualifier} {format_seconds(self.seconds)} (from {self.based_on} past {runs})"


def format_seconds(seconds: float) -> str:
    """Formats a duration for people: "0.42 s", "12.3 s", "4 min 05 s", "1 h 02 min"."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def estimate_epoch_times(
    spec: ModelSpec, num_train: int, devices: list[str] | tuple[str, ...], runs: pd.DataFrame
) -> list[EpochEstimate]:
    """Estimates the steady-state epoch time of `spec` on each device from stored runs.

    Args:
        spec: The model to estimate.
        num_train: Training samples per epoch.
        devices: Device names to estimate for, e.g. ("cpu:0", "gpu:0").
        runs: Stored runs, as `RunStore.runs()` returns them (needs `device`, `status`,
            `achieved_flops_per_s`, `batch_size` and `spec` columns).

    Returns:
        One estimate per device, in the order given.
    """
    usable = usable_runs(runs)
    epoch_flops = flops_per_epoch(spec, num_train)
    target = (flops_per_sample(spec), spec.batch_size)
    return [_estimate_one(device, usable[usable["device"] == device], target, epoch_flops) for device in devices]


def usable_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Keeps finished runs with a positive achieved FLOP/s and adds their training FLOPs per sample.

    Args:
        runs: Stored runs, as `RunStore.runs()` returns them.

    Returns:
        Columns `device`, `batch_size`, `achieved_flops_per_s`, `flops_per_sample`.
    """
    columns = ["device", "batch_size", "achieved_flops_per_s", "flops_per_sample"]
    needed = {"device", "status", "achieved_flops_per_s", "batch_size", "spec"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=columns)
    done = runs[(runs["status"] == "done") & (runs["achieved_flops_per_s"].astype(float) > 0)]
    sample_flops = [_spec_flops_per_sample(spec) for spec in done["spec"]]
    frame = done.assign(flops_per_sample=sample_flops)[columns]
    return frame[frame["flops_per_sample"].notna()].reset_index(drop=True)


def _spec_flops_per_sample(spec_data: object) -> float | None:
    """Training FLOPs per sample of a stored spec dict, or None when it cannot be read."""
    if not isinstance(spec_data, dict):
        return None
    try:
        return float(flops_per_sample(ModelSpec.from_dict(spec_data)))
    except (SpecError, TypeError, ValueError):
        return None


def _estimate_one(device: str, runs: pd.DataFrame, target: tuple[int, int], epoch_flops: int) -> EpochEstimate:
    """Median achieved FLOP/s of the `NEIGHBOURS` nearest runs on one device, turned into seconds."""
    if runs.empty or epoch_flops <= 0:
        return EpochEstimate(device=device, seconds=None, flops_per_s=None, based_on=0, rough=False)
    target_flops, target_batch = target
    distance = (runs["flops_per_sample"].astype(float) / target_flops).map(math.log).abs() + (
        runs["batch_size"].astype(float) / target_batch
    ).map(math.log).abs()
    nearest = runs.assign(distance=distance).nsmallest(NEIGHBOURS, "distance")
    flops_per_s = float(nearest["achieved_flops_per_s"].astype(float).median())
    return EpochEstimate(
        device=device,
        seconds=epoch_flops / flops_per_s,
        flops_per_s=flops_per_s,
        based_on=len(nearest),
        rough=float(nearest["distance"].min()) > ROUGH_DISTANCE,
    )
