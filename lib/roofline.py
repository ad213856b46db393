"""The roofline: what a device's arithmetic and its memory allow a run at its arithmetic intensity.

A device has two roofs. Its compute roof is the fastest matrix product it does (`lib.ceilings`). Its
memory roof is its bandwidth (bytes per second, measured here by a large copy) times the run's
arithmetic intensity (FLOPs per byte of memory traffic): a step that does few FLOPs per byte it reads
and writes waits on memory, whatever the arithmetic could do. What a run can reach is the lower roof:

    attainable = min(compute roof, bandwidth x intensity)

The two meet at the ridge, intensity = compute roof / bandwidth. Left of the ridge a run is memory-bound,
right of it compute-bound; a run far below the roof it is under is overhead-bound, its time set by fixed
per-step costs rather than by the hardware.

Bandwidth: `measure_bandwidth` times one large device-to-device copy through the backend's own API (JAX,
TensorFlow or PyTorch), as `lib.ceilings` times its products: warm-up copies first, the device synchronised
before the clock is read, the median of several repeats. The copy adds one to every element, so no compiler
can skip it: it reads the source once and writes the result once, 2 x size bytes (JAX writes in place, into
the donated source; TensorFlow and PyTorch into a new array, whose caches also read each line before writing
it, so their figure is lower on CPUs). Like `measure_ceilings` it keeps nothing global; the Results page
caches it per device and server process.

Nothing here imports Streamlit, and the backend libraries are imported inside the functions.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd

from lib.backend import backend_name, import_backend_module
from lib.ceilings import CeilingError, device_type, jax_device
from lib.spec import flops_per_sample, memory_estimate

MIB = 2**20  # bytes in a mebibyte
DEFAULT_COPY_BYTES = {"cpu": 256 * MIB, "gpu": 1024 * MIB}  # bytes of the copied array, per device type
# The copy holds its source and its result at once (2 x size); 1 GiB on a GPU keeps that at 2 GiB, which fits
# any GPU worth training on beside a Keras job's working set. On a CPU the size shrinks to fit this share of
# the memory available.
CPU_MEMORY_SHARE = 0.125
MIN_COPY_BYTES = 1 * MIB  # smaller copies time caches and launch latency, not memory
WARMUP_COPIES = 2  # untimed copies before the timed ones (allocation, compilation, clocks)
BANDWIDTH_REPEATS = {"cpu": 5, "gpu": 20}  # timed copies; the median is kept
ELEMENT_BYTES = 4  # the copied array is float32

# Memory traffic of one training step, per part, in multiples of that part's size (`lib.spec.memory_estimate`):
WEIGHT_PASSES = 4  # read in the forward pass, read in the backward pass, read and written by the update
GRADIENT_PASSES = 2  # written in the backward pass, read by the update
OPTIMIZER_PASSES = 2  # each state value read and written by the update (SGD keeps none, Adam two per weight)
ACTIVATION_PASSES = 2  # written in the forward pass (the input batch: copied in), read in the backward pass

OVERHEAD_SHARE = 0.2  # below a fifth of the attainable roof, neither roof sets the time: per-step overhead does
BOUNDS = ("compute-bound", "memory-bound", "overhead-bound")
BOUND_EXPLANATIONS = {
    "compute-bound": (
        "Compute-bound: at this intensity the device's arithmetic is the lower roof and the run works near it; "
        "only faster arithmetic (mixed precision, a faster device) would speed it up."
    ),
    "memory-bound": (
        "Memory-bound: each byte read or written carries too few FLOPs, so the memory's bandwidth, not the "
        "arithmetic, is the lower roof; a larger batch reuses each weight for more samples per byte."
    ),
    "overhead-bound": (
        f"Overhead-bound: the run reaches under {OVERHEAD_SHARE:.0%} of what its roofs allow, so fixed per-step "
        "costs (Python, the framework, kernel launches), not the hardware, set its time; a larger batch or more "
        "steps per execution spreads them over more work."
    ),
}
POINT_COLUMNS = (
    "series",
    "device",
    "precision",
    "intensity",
    "achieved_flops_per_s",
    "attainable_flops_per_s",
    "compute_flops_per_s",
    "bandwidth_bytes_per_s",
    "ridge_intensity",
    "share_of_attainable",
    "bound",
)
ROOF_COLUMNS = ("roof", "device", "precision", "intensity", "flops_per_s", "part")
ROOF_MARGIN = 4.0  # the roofs' lines reach this factor beyond the outermost point or ridge on either side


class BandwidthError(CeilingError):
    """A bandwidth was asked for on a device that cannot be measured, or at a size that cannot be."""


@dataclass(frozen=True)
class Bandwidth:
    """The measured memory bandwidth of one device: bytes read and written per second by a large copy."""

    device: str  # normalised device name, "cpu:0", "gpu:0"
    bytes_per_s: float  # 2 x size_bytes / median seconds of one copy
    size_bytes: int  # bytes of the copied array (the copy reads as many and writes as many)
    backend: str = ""  # library that ran the copy: "jax", "tensorflow" or "torch"

    def to_dict(self) -> dict[str, Any]:
        """Returns the bandwidth as JSON-ready plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bandwidth:
        """Builds a bandwidth from `to_dict` output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RooflinePoint:
    """One run under its device's two roofs, and which of them (or neither) bounds it."""

    achieved_flops_per_s: float  # the run's training FLOPs per second
    intensity: float  # FLOPs per byte of memory traffic (`arithmetic_intensity`)
    compute_flops_per_s: float  # the compute roof: the device's matrix-product ceiling
    bandwidth_bytes_per_s: float  # the memory roof's slope: the device's bandwidth
    attainable_flops_per_s: float  # min(compute roof, bandwidth x intensity)
    ridge_intensity: float  # where the roofs meet: compute roof / bandwidth, FLOP/byte
    share_of_attainable: float  # achieved / attainable (can exceed 1: caches are faster than memory)
    bound: str  # one of BOUNDS

    @property
    def explanation(self) -> str:
        """What the bound label means, in plain words."""
        return BOUND_EXPLANATIONS[self.bound]


def measure_bandwidth(
    device: str, *, size_bytes: int | None = None, repeats: int | None = None, backend: str | None = None
) -> Bandwidth:
    """Times a large device-to-device copy on one device and returns its memory bandwidth.

    Args:
        device: Normalised device name, "cpu:0" or "gpu:0".
        size_bytes: Bytes of the copied float32 array; `DEFAULT_COPY_BYTES` for the device type when None,
            on a CPU at most `CPU_MEMORY_SHARE` of the memory available.
        repeats: Timed copies; `BANDWIDTH_REPEATS` for the device type when None.
        backend: "jax", "tensorflow" or "torch"; the active Keras backend when None.

    Returns:
        The device's `Bandwidth`: 2 x size bytes (read and written) over the median copy time.

    Raises:
        BandwidthError: Bad device name, a device the backend does not see, or a size too small.
        BackendUnavailableError: The backend's library is not installed.
    """
    kind = _device_kind(device)
    size = _copy_bytes(kind) if size_bytes is None else int(size_bytes)
    if size < MIN_COPY_BYTES:
        raise BandwidthError(f"A {size}-byte copy is too small to measure memory; use at least {MIN_COPY_BYTES}.")
    backend = backend or backend_name()
    timer = _copy_timer_for(backend, device)
    count = WARMUP_COPIES + (repeats or BANDWIDTH_REPEATS[kind])
    seconds = statistics.median(timer(size // ELEMENT_BYTES, count)[WARMUP_COPIES:])
    return Bandwidth(device, 2 * size / seconds, size, backend=backend)


def find_bandwidth(bandwidths: Sequence[Bandwidth], device: str) -> Bandwidth | None:
    """Returns the highest bandwidth measured for a device, or None.

    Args:
        bandwidths: Bandwidths of any devices.
        device: Normalised device name.
    """
    matches = [b for b in bandwidths if b.device == device]
    return max(matches, key=lambda b: b.bytes_per_s, default=None)


def bytes_per_step(spec: Any) -> int:
    """Estimates the bytes one training step reads and writes in device memory.

    The model, from the parts of `lib.spec.memory_estimate` (float32 weights, gradients and optimizer state;
    activations in the spec's precision, the flattened input batch included), each counted as often as a
    step touches it:
    - weights x `WEIGHT_PASSES`: read in the forward pass, read in the backward pass (the gradient with
      respect to each layer's input), read and written by the optimizer's update;
    - gradients x `GRADIENT_PASSES`: written in the backward pass, read by the update;
    - optimizer state x `OPTIMIZER_PASSES`: read and written by the update (SGD none, RMSprop and Adagrad
      one value per weight, Adam, AdamW and Nadam two);
    - activations x `ACTIVATION_PASSES`: written in the forward pass (the input batch as it is copied in),
      read in the backward pass.
    Caches, the gradients of the activations, the loss and the framework's temporaries are left out: a
    lower bound on the traffic, which is what the memory roof needs (weights that stay in a CPU's caches
    are read faster than memory, so such a run can sit above its memory roof).

    Args:
        spec: A `lib.spec.ModelSpec`.
    """
    memory = memory_estimate(spec)
    return (
        WEIGHT_PASSES * memory.weights_bytes
        + GRADIENT_PASSES * memory.gradients_bytes
        + OPTIMIZER_PASSES * memory.optimizer_bytes
        + ACTIVATION_PASSES * memory.activations_bytes
    )


def arithmetic_intensity(spec: Any) -> float:
    """Training FLOPs per byte of memory traffic of one step: `flops_per_sample x batch / bytes_per_step`.

    The batch multiplies the FLOPs but not the weights' bytes, so a larger batch raises the intensity:
    each weight read serves more samples.

    Args:
        spec: A `lib.spec.ModelSpec`.
    """
    return flops_per_sample(spec) * spec.batch_size / bytes_per_step(spec)


def roofline_point(
    run_flops_per_s: float, intensity: float, compute_ceiling_flops_per_s: float, bandwidth_bytes_per_s: float
) -> RooflinePoint:
    """Places one run under its device's roofs and labels what bounds it.

    Args:
        run_flops_per_s: The run's achieved training FLOP/s.
        intensity: The run's FLOPs per byte (`arithmetic_intensity`), > 0.
        compute_ceiling_flops_per_s: The device's matrix-product ceiling in the run's precision, > 0.
        bandwidth_bytes_per_s: The device's measured bandwidth, > 0.

    Returns:
        The `RooflinePoint`: memory-bound left of the ridge, compute-bound right of it (the lower roof at
        the run's intensity, the compute roof on a tie), overhead-bound when the run reaches less than
        `OVERHEAD_SHARE` of that roof.
    """
    memory_roof = bandwidth_bytes_per_s * intensity
    attainable = min(compute_ceiling_flops_per_s, memory_roof)
    share = run_flops_per_s / attainable
    bound = "memory-bound" if memory_roof < compute_ceiling_flops_per_s else "compute-bound"
    if share < OVERHEAD_SHARE:
        bound = "overhead-bound"
    return RooflinePoint(
        achieved_flops_per_s=run_flops_per_s,
        intensity=intensity,
        compute_flops_per_s=compute_ceiling_flops_per_s,
        bandwidth_bytes_per_s=bandwidth_bytes_per_s,
        attainable_flops_per_s=attainable,
        ridge_intensity=compute_ceiling_flops_per_s / bandwidth_bytes_per_s,
        share_of_attainable=share,
        bound=bound,
    )


def points_frame(labelled_points: Iterable[tuple[str, str, str, RooflinePoint]]) -> pd.DataFrame:
    """Makes the roofline chart's points: one row per run.

    Args:
        labelled_points: (series label, device, ceiling precision, point) per run.

    Returns:
        Columns `POINT_COLUMNS`: series, device, precision, intensity (FLOP/byte), achieved, attainable and
        compute roof (FLOP/s), bandwidth (bytes/s), ridge intensity, share of attainable (0..1), bound.
    """
    rows = [
        {"series": series, "device": device, "precision": precision, **_point_numbers(point), "bound": point.bound}
        for series, device, precision, point in labelled_points
    ]
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def roofs_frame(points: pd.DataFrame) -> pd.DataFrame:
    """Makes the roofs' lines under the points: per device and precision, the memory slope then the flat roof.

    Each roof is three vertices (a straight line on log-log axes between them): the memory roof at the
    left edge, the ridge, the compute roof at the right edge. The edges reach `ROOF_MARGIN` beyond the
    outermost point or ridge, so every point has its roof drawn above it.

    Args:
        points: Output of `points_frame`.

    Returns:
        Columns `ROOF_COLUMNS`: roof ("cpu:0 · float32 strict"), device, precision, intensity, flops_per_s
        and part ("memory" up to the ridge, "compute" after it).
    """
    if points.empty:
        return pd.DataFrame(columns=list(ROOF_COLUMNS))
    reach = pd.concat([points["intensity"], points["ridge_intensity"]])
    left, right = reach.min() / ROOF_MARGIN, reach.max() * ROOF_MARGIN
    roofs = points.drop_duplicates(["device", "precision"])
    rows = []
    for roof in roofs.itertuples():
        name = f"{roof.device} · {roof.precision}"
        bandwidth, compute, ridge = roof.bandwidth_bytes_per_s, roof.compute_flops_per_s, roof.ridge_intensity
        rows += [
            {
                "roof": name,
                "device": roof.device,
                "precision": roof.precision,
                "intensity": x,
                "flops_per_s": y,
                "part": part,
            }
            for x, y, part in (
                (left, min(bandwidth * left, compute), "memory"),
                (ridge, compute, "memory"),
                (right, compute, "compute"),
            )
        ]
    return pd.DataFrame(rows, columns=list(ROOF_COLUMNS))


def roofline_caption(points: pd.DataFrame, left_out: Sequence[str] = ()) -> str:
    """What the roofline chart shows, from its points: each run's bound and how much of its roof it reaches.

    Args:
        points: Output of `points_frame`.
        left_out: Names of compared runs not drawn, their device's roofs not measured on this server.

    Returns:
        E.g. "Both runs are overhead-bound: they reach 3% and 12% of what their roofs allow. Overhead-bound: ...";
        "" when there are no points.
    """
    if points.empty:
        return ""
    bounds = list(dict.fromkeys(points["bound"]))
    shares = [f"{share:.0%}" for share in points["share_of_attainable"]]
    if len(bounds) == 1:
        summary = _same_bound_text(bounds[0], shares)
    else:
        bounds_text = "; ".join(
            f"{row.series} is {row.bound} ({share} of what its roofs allow)"
            for row, share in zip(points.itertuples(), shares, strict=True)
        )
        summary = f"What bounds each run: {bounds_text}."
    missing = f"Not drawn (no roofs measured for their device here): {', '.join(left_out)}." if left_out else ""
    return " ".join(filter(None, [summary, *(BOUND_EXPLANATIONS[bound] for bound in bounds), missing]))


def _same_bound_text(bound: str, shares: list[str]) -> str:
    if len(shares) == 1:
        return f"The run is {bound}: it reaches {shares[0]} of what its roofs allow."
    subject = "Both runs are" if len(shares) == 2 else f"All {len(shares)} runs are"
    listed = ", ".join(shares[:-1]) + f" and {shares[-1]}"
    return f"{subject} {bound}: they reach {listed} of what their roofs allow."


def _point_numbers(point: RooflinePoint) -> dict[str, float]:
    return {
        "intensity": point.intensity,
        "achieved_flops_per_s": point.achieved_flops_per_s,
        "attainable_flops_per_s": point.attainable_flops_per_s,
        "compute_flops_per_s": point.compute_flops_per_s,
        "bandwidth_bytes_per_s": point.bandwidth_bytes_per_s,
        "ridge_intensity": point.ridge_intensity,
        "share_of_attainable": point.share_of_attainable,
    }


def _device_kind(device: str) -> str:
    try:
        return device_type(device)
    except CeilingError as error:
        raise BandwidthError(str(error)) from error


def _copy_bytes(kind: str) -> int:
    """The default copy size: `DEFAULT_COPY_BYTES`, on a CPU no more than its share of the memory available."""
    if kind == "gpu":
        return DEFAULT_COPY_BYTES["gpu"]
    import psutil

    fitting = int(psutil.virtual_memory().available * CPU_MEMORY_SHARE)
    return max(MIN_COPY_BYTES, min(DEFAULT_COPY_BYTES["cpu"], fitting))


def _copy_timer_for(backend: str, device: str) -> Callable[[int, int], list[float]]:
    """Returns `time_copies(elements, count) -> seconds of each copy` for a backend and device."""
    timers = {"jax": _jax_copy_timer, "tensorflow": _tensorflow_copy_timer, "torch": _torch_copy_timer}
    if backend not in timers:
        raise BandwidthError(f"Unknown backend {backend!r}; use one of {sorted(timers)}.")
    module = import_backend_module(backend)
    return timers[backend](module, device)


def _jax_copy_timer(jax, device: str) -> Callable[[int, int], list[float]]:
    import jax.numpy as jnp

    kind, _, index = device.partition(":")
    try:
        target = jax_device(jax, kind, int(index or 0))
    except CeilingError as error:
        raise BandwidthError(str(error)) from error
    # The source is donated and each result is the next source: without it every copy would allocate a fresh
    # result, and on a CPU first touching those pages takes longer than the copy itself.
    add_one = jax.jit(lambda values: values + 1, donate_argnums=0)

    def time_copies(elements: int, count: int) -> list[float]:
        source = jax.device_put(jnp.zeros(elements, jnp.float32), target)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            source = add_one(source)
            source.block_until_ready()
            times.append(time.perf_counter() - start)
        return times

    return time_copies


def _tensorflow_copy_timer(tf, device: str) -> Callable[[int, int], list[float]]:
    kind, _, index = device.partition(":")
    tf_device = f"/{kind.upper()}:{int(index or 0)}"
    if not tf.config.list_logical_devices(kind.upper())[int(index or 0) :]:
        raise BandwidthError(f"TensorFlow sees no {device}; measure on 'cpu:0' instead.")

    def time_copies(elements: int, count: int) -> list[float]:
        with tf.device(tf_device):
            source = tf.zeros((elements,), tf.float32)
            times = []
            for _ in range(count):
                start = time.perf_counter()
                # Reading one element back waits for the whole copy without bringing it to the host.
                tf.math.add(source, 1.0)[0].numpy()
                times.append(time.perf_counter() - start)
        return times

    return time_copies


def _torch_copy_timer(torch, device: str) -> Callable[[int, int], list[float]]:
    kind, _, index = device.partition(":")
    if kind == "gpu" and not torch.cuda.is_available():
        raise BandwidthError("PyTorch sees no CUDA GPU; measure on 'cpu:0' instead.")
    target = torch.device("cuda", int(index or 0)) if kind == "gpu" else torch.device("cpu")

    def synchronize() -> None:
        if target.type == "cuda":
            torch.cuda.synchronize(target)

    def time_copies(elements: int, count: int) -> list[float]:
        source = torch.zeros(elements, dtype=torch.float32, device=target)
        times = []
        for _ in range(count):
            synchronize()
            start = time.perf_counter()
            torch.add(source, 1.0)
            synchronize()
            times.append(time.perf_counter() - start)
        return times

    return time_copies
