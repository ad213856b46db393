"""How close a training run came to the hardware, and a one-line reason why it did not come closer.

A run's achieved FLOP/s (training FLOPs per epoch over the steady-state epoch time) is compared with
the device's measured matrix-product ceiling (`lib.ceilings`) in the precision the run computes in.
The diagnosis is read from numbers only, in this order (thresholds below, with their reasons):

1. compilation dominates: the first epoch's extra time (first epoch minus a steady epoch, mostly
   tracing and compiling) is at least `COMPILE_DOMINATES_SHARE` of the whole run (the verdict of the
   later epochs alone, rules 2 to 5, is kept beside it as the steady-state diagnosis);
2. close to the hardware: the run reaches at least `CLOSE_SHARE` of the ceiling;
3. bound by per-step overhead: one step holds less than `STEP_WORK_FLOOR_S` (per device type) of
   arithmetic at the ceiling, so fixed per-step costs (dispatch, kernel launches, Python) take most of it;
4. bound by data movement: each step has enough arithmetic, yet the run reaches less than
   `LOW_SHARE` of the ceiling, so time goes to copying and reading data, not to multiplying;
5. otherwise part of each step is overhead, and the hint is the same as in 3, milder.

Where the device's memory bandwidth is measured too (`lib.roofline`), rules 2 to 5 give way to the roofline,
which knows what the run's arithmetic intensity allows rather than guessing from thresholds: the run is
compute-bound or memory-bound by the lower of its device's two roofs at its intensity, and overhead-bound
when it reaches less than `lib.roofline.OVERHEAD_SHARE` of that roof. Rule 1 still comes first.

Each diagnosis says its figures in plain words too: what the share of the ceiling means for one training step
(multiplying matrices, or waiting for Python or for data), in milliseconds rather than microseconds where it can.

Nothing here imports Keras, a backend library or Streamlit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.ceilings import Ceiling, device_type, find_ceiling
from lib.roofline import BOUNDS as ROOFLINE_BOUNDS
from lib.roofline import (
    Bandwidth,
    RooflinePoint,
    arithmetic_intensity,
    find_bandwidth,
    points_frame,
    roofline_point,
    roofs_frame,
)

COMPILE_DOMINATES_SHARE = 0.5  # compilation is at least half the run: more epochs amortise it
CLOSE_SHARE = 0.5  # half the matrix-product ceiling is near the best an MLP step can do (it also has
#                    activations, the loss and the optimizer update, which are memory-bound)
LOW_SHARE = 0.2  # below a fifth of the ceiling with enough work per step, arithmetic is not the bound
# The order of one training step's fixed cost, by device type: on a GPU the dispatch and kernel launches of
# a Python-driven framework (~100 microseconds); on a CPU the framework's per-step work plus small matrix
# products that cannot keep every core busy (~1 millisecond). A step with less arithmetic is overhead-bound.
STEP_WORK_FLOOR_S = {"gpu": 1e-4, "cpu": 1e-3}
ABOVE_CEILING_SHARE = 1.1  # a run this far above its ceiling means the ceiling was measured on a busy device
BF16_HINT_RATIO = 1.5  # suggest mixed precision when the bfloat16 ceiling is at least this much higher
TF32_BACKENDS = ("jax", "tensorflow")  # backends whose float32 matmuls use TF32 on NVIDIA GPUs by default
# Where an overhead-bound step's time goes, in words, by device type (see `STEP_WORK_FLOOR_S`).
OVERHEAD_WORDS = {
    "gpu": "waiting for Python to launch the next piece of work",
    "cpu": "on the framework's per-step work in Python",
}
OVERHEAD_FIX = "a larger batch or more steps per execution"  # what shortens the fixed cost per sample

EFFICIENCY_COLUMNS = (
    "series",
    "device",
    "precision",
    "achieved_tflops",
    "ceiling_tflops",
    "share_of_ceiling",
    "compile_share_of_first_epoch",
    "step_ms",
    "ideal_step_ms",
    "verdict",
    "diagnosis",
    "steady_state_diagnosis",
)


VERDICTS = (
    "no timing",
    "compilation",
    "close",
    "overhead",
    "data movement",
    "partly overhead",
    *ROOFLINE_BOUNDS,  # where the bandwidth is measured: the roofline's labels replace the four above
)


@dataclass(frozen=True)
class Efficiency:
    """The numbers a diagnosis is read from, for one run on one device."""

    verdict: str  # one of VERDICTS
    message: str  # the one-line diagnosis shown to the user
    steady_verdict: str  # the verdict of the later epochs alone (compilation left out)
    steady_message: str  # the diagnosis of the later epochs alone
    precision: str | None  # ceiling precision the run was compared with, e.g. "tf32"
    achieved_flops_per_s: float | None  # training FLOPs per epoch / steady-state epoch seconds
    ceiling_flops_per_s: float | None  # the device's measured matrix-product ceiling
    share_of_ceiling: float | None  # achieved / ceiling, 0..1 (can exceed 1 slightly from noise)
    compile_s: float | None  # first epoch minus a steady epoch: tracing and compilation, mostly
    compile_share_of_first_epoch: float | None  # compile_s / first epoch
    compile_share_of_run: float | None  # compile_s / total training time
    steps_per_epoch: float | None  # training samples per epoch / batch size
    step_s: float | None  # steady-state wall time of one training step
    ideal_step_s: float | None  # one step's FLOPs at the ceiling: the arithmetic floor of a step
    roofline: RooflinePoint | None = None  # the run under its device's roofs, where its bandwidth is measured


def run_precision(precision: str, backend: str, device: str) -> str:
    """The ceiling precision a run computes in, from its spec precision, backend and device.

    `mixed_bfloat16` multiplies in bfloat16. float32 runs on GPUs use TF32 where the backend
    enables it by default (JAX, TensorFlow), strict float32 otherwise (PyTorch, and every CPU).

    Args:
        precision: The spec's precision, "float32" or "mixed_bfloat16".
        backend: The Keras backend of the run.
        device: The run's normalised device name.
    """
    if precision == "mixed_bfloat16":
        return "bfloat16"
    if device.startswith("gpu") and backend in TF32_BACKENDS:
        return "tf32"
    return "float32 strict"


def efficiency(run: Any, ceiling: Ceiling | None) -> float | None:
    """Share of the ceiling a run achieved: achieved FLOP/s / ceiling FLOP/s.

    Args:
        run: A `lib.device_run.DeviceRun` (anything with `achieved_flops_per_s`).
        ceiling: The device's ceiling in the run's precision, or None.

    Returns:
        The share (0.37 means 37 %), or None when either number is missing.
    """
    achieved = getattr(run, "achieved_flops_per_s", None)
    if not achieved or ceiling is None or ceiling.flops_per_s <= 0:
        return None
    return achieved / ceiling.flops_per_s


def assess(run: Any, spec: Any, ceilings: Sequence[Ceiling], bandwidths: Sequence[Bandwidth] = ()) -> Efficiency:
    """Computes a run's efficiency numbers and its one-line diagnosis.

    Args:
        run: A `lib.device_run.DeviceRun`.
        spec: The `lib.spec.ModelSpec` it trained (batch size, precision, steps per execution).
        ceilings: Measured ceilings; those of `run.device` are used.
        bandwidths: Measured memory bandwidths; where `run.device` has one, the roofline gives the verdict.

    Returns:
        The `Efficiency` of the run.
    """
    precision = run_precision(spec.precision, run.backend, run.device)
    ceiling = find_ceiling(ceilings, run.device, precision)
    numbers = _numbers(run, spec, ceiling)
    point = _roofline(numbers, spec, find_bandwidth(bandwidths, run.device))
    if point is not None and numbers["step_s"] is not None:
        steady_verdict, steady_message = _roofline_verdict(point, numbers, precision, spec, ceilings, run.device)
    else:
        steady_verdict, steady_message = _steady_verdict(numbers, precision, spec, ceilings, run.device)
    verdict, message = steady_verdict, steady_message
    compile_share = numbers["compile_share_of_run"]
    if compile_share is not None and compile_share >= COMPILE_DOMINATES_SHARE:
        verdict = "compilation"
        message = (
            f"compilation dominates: {compile_share:.0%} of the run was the first epoch's compilation, the time "
            "spent turning the model into device code before training, which later epochs do not pay again; run "
            "more epochs"
        )
    return Efficiency(
        verdict=verdict,
        message=message,
        steady_verdict=steady_verdict,
        steady_message=steady_message,
        precision=precision if ceiling else None,
        roofline=point,
        **numbers,
    )


def diagnose(run: Any, spec: Any, ceilings: Sequence[Ceiling], bandwidths: Sequence[Bandwidth] = ()) -> str:
    """Returns the one-line diagnosis of a run, e.g. 'bound by per-step overhead: try a larger batch...'.

    Args:
        run: A `lib.device_run.DeviceRun`.
        spec: The `lib.spec.ModelSpec` it trained.
        ceilings: Measured ceilings; those of `run.device` are used.
        bandwidths: Measured memory bandwidths; where `run.device` has one, the roofline gives the verdict.
    """
    return assess(run, spec, ceilings, bandwidths).message


def efficiency_frame(
    entries: Iterable[tuple[str, Any, Any]], ceilings: Sequence[Ceiling], bandwidths: Sequence[Bandwidth] = ()
) -> pd.DataFrame:
    """Makes the tidy frame of the 'how close to the hardware' chart: achieved vs ceiling per run.

    Args:
        entries: (series label, `DeviceRun`, `ModelSpec`) per run, e.g. ("gpu:0 · run 7", run, spec).
        ceilings: Measured ceilings of the devices the runs used.
        bandwidths: Measured memory bandwidths; the diagnosis of a run whose device has one is the roofline's.

    Returns:
        One row per run: series, device, precision, achieved_tflops, ceiling_tflops, share_of_ceiling
        (0..1), compile_share_of_first_epoch (0..1), step_ms, ideal_step_ms, verdict, diagnosis (the
        one line), steady_state_diagnosis (the later epochs alone, which differs when compilation dominates).
    """
    rows = []
    for series, run, spec in entries:
        result = assess(run, spec, ceilings, bandwidths)
        rows.append(
            {
                "series": series,
                "device": run.device,
                "precision": result.precision,
                "achieved_tflops": _scaled(result.achieved_flops_per_s, 1e-12),
                "ceiling_tflops": _scaled(result.ceiling_flops_per_s, 1e-12),
                "share_of_ceiling": result.share_of_ceiling,
                "compile_share_of_first_epoch": result.compile_share_of_first_epoch,
                "step_ms": _scaled(result.step_s, 1e3),
                "ideal_step_ms": _scaled(result.ideal_step_s, 1e3),
                "verdict": result.verdict,
                "diagnosis": result.message,
                "steady_state_diagnosis": result.steady_message,
            }
        )
    return pd.DataFrame(rows, columns=list(EFFICIENCY_COLUMNS))


def roofline_frames(
    entries: Iterable[tuple[str, Any, Any]], ceilings: Sequence[Ceiling], bandwidths: Sequence[Bandwidth]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Makes the roofline chart's frames: the runs as points, and their devices' roofs.

    Args:
        entries: (series label, `DeviceRun`, `ModelSpec`) per run, as for `efficiency_frame`.
        ceilings: Measured ceilings of the devices the runs used.
        bandwidths: Measured memory bandwidths of those devices.

    Returns:
        `lib.roofline.points_frame` of the runs whose device has both roofs measured (others are left out),
        and `lib.roofline.roofs_frame` of those points.
    """
    labelled = []
    for series, run, spec in entries:
        result = assess(run, spec, ceilings, bandwidths)
        if result.roofline is not None:
            labelled.append((series, run.device, result.precision, result.roofline))
    points = points_frame(labelled)
    return points, roofs_frame(points)


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _numbers(run: Any, spec: Any, ceiling: Ceiling | None) -> dict[str, float | None]:
    """The measured and derived numbers of a run; None where an input is missing."""
    first, steady, total = run.first_epoch_s, run.steady_epoch_s, run.total_s
    compile_s = max(first - steady, 0.0) if first and steady else None
    steps = run.num_train / spec.batch_size if run.num_train and spec.batch_size else None
    step_s = steady / steps if steady and steps else None
    achieved = run.achieved_flops_per_s or None
    ceiling_flops = ceiling.flops_per_s if ceiling else None
    ideal_step_s = None
    if achieved and steady and steps and ceiling_flops:
        ideal_step_s = achieved * steady / steps / ceiling_flops
    return {
        "achieved_flops_per_s": achieved,
        "ceiling_flops_per_s": ceiling_flops,
        "share_of_ceiling": efficiency(run, ceiling),
        "compile_s": compile_s,
        "compile_share_of_first_epoch": compile_s / first if compile_s is not None else None,
        "compile_share_of_run": compile_s / total if compile_s is not None and total else None,
        "steps_per_epoch": steps,
        "step_s": step_s,
        "ideal_step_s": ideal_step_s,
    }


def _roofline(numbers: dict[str, float | None], spec: Any, bandwidth: Bandwidth | None) -> RooflinePoint | None:
    """The run under its roofs; None without an achieved speed, a ceiling or a bandwidth."""
    achieved, compute = numbers["achieved_flops_per_s"], numbers["ceiling_flops_per_s"]
    if not achieved or not compute or bandwidth is None or bandwidth.bytes_per_s <= 0:
        return None
    return roofline_point(achieved, arithmetic_intensity(spec), compute, bandwidth.bytes_per_s)


def _roofline_verdict(
    point: RooflinePoint,
    numbers: dict[str, float | None],
    precision: str,
    spec: Any,
    ceilings: Sequence[Ceiling],
    device: str,
) -> tuple[str, str]:
    """The steady-state verdict read from the roofline: compute-, memory- or overhead-bound, in plain words."""
    share, intensity = point.share_of_attainable, point.intensity
    where = f"at {intensity:,.1f} FLOP per byte, the ridge at {point.ridge_intensity:,.0f}"
    if point.bound == "overhead-bound":
        ideal = numbers["step_s"] * share
        return point.bound, (
            f"bound by per-step overhead ({share:.1%} of what its roofs allow {where}): each step took "
            f"{_duration_text(numbers['step_s'])}, but its arithmetic and memory traffic need only "
            f"{_duration_text(ideal)} at this device's roofs, so the device spent most of each step "
            f"{OVERHEAD_WORDS[device_type(device)]}; try {OVERHEAD_FIX}"
        )
    if point.bound == "memory-bound":
        above = (
            ", above its memory roof: the weights stay in the caches, faster than the memory measured"
            if share >= ABOVE_CEILING_SHARE
            else ""
        )
        return point.bound, (
            f"memory-bound ({share:.0%} of its memory roof {where}{above}): each byte read or written carries too "
            "few FLOPs to keep the arithmetic busy; a larger batch reuses each weight for more samples per byte"
        )
    if share >= ABOVE_CEILING_SHARE:
        return point.bound, (
            f"compute-bound, above its roof ({share:.0%} of the {precision} ceiling): faster than the fastest matrix "
            "product measured on this device, so that measurement was probably taken while the device was busy; "
            "measure it again"
        )
    return point.bound, (
        f"compute-bound ({share:.0%} of the {precision} ceiling {where}): the device's arithmetic, not its memory, "
        "limits each step" + _precision_hint(precision, spec, ceilings, device)
    )


def _steady_verdict(
    numbers: dict[str, float | None], precision: str, spec: Any, ceilings: Sequence[Ceiling], device: str
) -> tuple[str, str]:
    """Applies rules 2 to 5 of the module docstring, in order, to the steady-state numbers."""
    share = numbers["share_of_ceiling"]
    if numbers["step_s"] is None:
        return "no timing", "no steady-state timing to diagnose (the run did not finish an epoch)"
    if share is None:
        return "no timing", f"no {precision} ceiling measured for {device}: measure it to compare"
    if share >= ABOVE_CEILING_SHARE:
        return "close", (
            f"at the hardware's limit ({share:.0%} of the {precision} ceiling): faster than the fastest matrix "
            "product measured on this device, so that measurement was probably taken while the device was busy; "
            "measure it again"
        )
    if share >= CLOSE_SHARE:
        return "close", (
            f"close to the hardware ({share:.0%} of the {precision} ceiling): the device spent most of each step "
            "multiplying matrices, near its top speed" + _precision_hint(precision, spec, ceilings, device)
        )
    ideal = numbers["ideal_step_s"]
    if ideal is not None and ideal < STEP_WORK_FLOOR_S[device_type(device)]:
        return "overhead", (
            f"bound by per-step overhead ({share:.1%} of the {precision} ceiling): each step took "
            f"{_duration_text(numbers['step_s'])}, but its arithmetic needs only {_duration_text(ideal)} at this "
            f"device's top speed, so the device spent most of each step {OVERHEAD_WORDS[device_type(device)]} "
            f"rather than multiplying matrices; try {OVERHEAD_FIX}"
        )
    if share < LOW_SHARE:
        return "data movement", (
            f"bound by data movement, not arithmetic ({share:.1%} of the {precision} ceiling): each step has enough "
            "arithmetic to keep the device busy, yet it spent most of each step waiting for data to be copied or "
            f"read rather than multiplying matrices; {_data_movement_hint(spec, device)}"
        )
    return "partly overhead", (
        f"{share:.0%} of the {precision} ceiling: the device multiplied matrices for part of each step and "
        f"spent the rest {OVERHEAD_WORDS[device_type(device)]}; {OVERHEAD_FIX} may close some of the gap"
    )


def _duration_text(seconds: float) -> str:
    """A short duration in the unit people read: "1.25 s", "14.7 ms", "0.69 ms", "5.8 µs"."""
    milliseconds = seconds * 1e3
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    if milliseconds >= 1:
        return f"{milliseconds:,.1f} ms"
    if milliseconds >= 0.1:
        return f"{milliseconds:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _data_movement_hint(spec: Any, device: str) -> str:
    """What moves fewer bytes per FLOP: on a GPU the host-side input first, then narrower numbers."""
    if device_type(device) == "cpu":
        return "a larger batch reuses each weight for more samples per byte read"
    if not getattr(spec, "device_resident", False):
        return "keep the input on the device, or use mixed precision to halve the bytes moved"
    if spec.precision == "float32":
        return "use mixed precision to halve the bytes moved, or a larger batch"
    return "a larger batch reuses each weight for more samples per byte read"


def _precision_hint(precision: str, spec: Any, ceilings: Sequence[Ceiling], device: str) -> str:
    """Suggests mixed precision when a float32 run is near its ceiling and bfloat16 is much faster."""
    if spec.precision != "float32":
        return ""
    current = find_ceiling(ceilings, device, precision)
    faster = find_ceiling(ceilings, device, "bfloat16")
    if current is None or faster is None or faster.flops_per_s < BF16_HINT_RATIO * current.flops_per_s:
        return ""
    return (
        f"; in mixed precision (mixed_bfloat16) this device multiplies {faster.flops_per_s / current.flops_per_s:.1f} "
        "times faster"
    )
