"""Timed N x N matrix products on each device: the "What is a GPU?" page's live demo.

A matrix product of two N x N matrices costs 2 * N^3 floating-point operations and is the core of
every Dense and convolution layer. Timing it for growing N on the CPU and the GPU shows the lesson of
the page: for small N the GPU loses (launching work on it costs more than the work), for large N its
thousands of cores win by a wide margin.

Timing follows the usual benchmark discipline: the operands are made on the device, one product is
run as a warm-up (kernel selection, memory allocation), and the clock is read only after the device has
finished, forced by reducing the result to one number and copying that to the host. The median of
several repeats is reported. Everything goes through `keras.ops` under `keras.device()`, so it works
on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import pandas as pd

from lib.ceilings import matmul_flops
from lib.device_run import is_out_of_memory
from lib.devices import keras_device_name, resolve_device
from lib.limits import LIMIT_ENV_VARS, ServerLimits, load_limits

DTYPES = ("float32", "float16", "bfloat16")  # element types offered by the demo
DEFAULT_REPEATS = 5  # timed products per (device, N); the median is kept
MIN_N = 16  # smallest N offered by `matmul_sizes`


class MatmulSizeError(ValueError):
    """N is not a positive integer or exceeds the server's limit for the matrix-product demo."""


class MatmulDtypeError(ValueError):
    """The requested element type is not one the demo supports."""


class DeviceOutOfMemoryError(RuntimeError):
    """The device ran out of memory for the matrices."""


@dataclass
class MatmulTiming:
    """The measured time of one N x N matrix product on one device."""

    device: str  # normalised device name, "cpu:0", "gpu:0"
    n: int  # matrix size: both operands are N x N
    dtype: str  # element type, e.g. "float32"
    seconds: float  # median wall-clock seconds of one product, device synchronised
    gflops_per_s: float  # 2 * N^3 / seconds / 1e9: billions of floating-point operations per second
    repeats: int  # timed products the median was taken over


def gflops_per_second(n: int, seconds: float) -> float:
    """Returns the achieved GFLOP/s of an N x N product that took `seconds`.

    Args:
        n: The matrix size.
        seconds: Time of one product, in seconds (positive).
    """
    return matmul_flops(n) / seconds / 1e9


def validate_size(n: int, limits: ServerLimits | None = None) -> int:
    """Checks that N is a positive integer within the server's limit.

    Args:
        n: The requested matrix size.
        limits: The limits in force; `load_limits()` when None.

    Returns:
        N as an int.

    Raises:
        MatmulSizeError: N is not a positive integer or is larger than `limits.matmul_n`.
    """
    limits = load_limits() if limits is None else limits
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MatmulSizeError(f"N={n!r} is not a positive integer; choose N between 1 and {limits.matmul_n}.")
    if n > limits.matmul_n:
        raise MatmulSizeError(
            f"N={n} exceeds this server's limit of {limits.matmul_n}; choose a smaller N "
            f"(the limit is set by {LIMIT_ENV_VARS['matmul_n']})."
        )
    return n


def validate_dtype(dtype: str) -> str:
    """Checks that the element type is one of `DTYPES`.

    Args:
        dtype: The requested element type.

    Raises:
        MatmulDtypeError: The type is not supported.
    """
    if dtype not in DTYPES:
        raise MatmulDtypeError(f"dtype {dtype!r} is not supported; choose one of {', '.join(DTYPES)}.")
    return dtype


def matmul_sizes(max_n: int, min_n: int = MIN_N, limits: ServerLimits | None = None) -> list[int]:
    """Returns the powers of two from `min_n` up to `max_n`, capped by the server's limit.

    Args:
        max_n: The largest N wanted.
        min_n: The smallest N wanted.
        limits: The limits in force; `load_limits()` when None.

    Returns:
        Increasing powers of two. When the cap is below `min_n`, the single largest power of two
        within the cap.
    """
    limits = load_limits() if limits is None else limits
    cap = min(max_n, limits.matmul_n)
    if cap < 1:
        return []
    sizes = [1 << exponent for exponent in range(cap.bit_length()) if min_n <= 1 << exponent <= cap]
    return sizes or [1 << (cap.bit_length() - 1)]


def time_matmul(
    device: str,
    n: int,
    repeats: int = DEFAULT_REPEATS,
    dtype: str = "float32",
    limits: ServerLimits | None = None,
    available: Sequence[str] | None = None,
) -> MatmulTiming:
    """Times an N x N matrix product on one device through the active Keras backend.

    Args:
        device: Device name in any accepted spelling ("gpu:0", "GPU", "cpu").
        n: Matrix size.
        repeats: Timed products; the median is reported.
        dtype: Element type, one of `DTYPES`.
        limits: The limits in force; `load_limits()` when None.
        available: Normalised names of the present devices; asked from the backend when None.

    Returns:
        The timing.

    Raises:
        MatmulSizeError: N is invalid or above the server's limit.
        MatmulDtypeError: `dtype` is not supported.
        DeviceNotFoundError: The device is not present.
        DeviceOutOfMemoryError: The matrices do not fit on the device.
    """
    n = validate_size(n, limits)
    dtype = validate_dtype(dtype)
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be at least 1.")
    device = resolve_device(device, available)
    try:
        samples = _timed_products(device, n, repeats, dtype)
    except Exception as error:
        if is_out_of_memory(error):
            raise DeviceOutOfMemoryError(
                f"{device} ran out of memory for two {n} x {n} {dtype} matrices; choose a smaller N."
            ) from error
        raise
    seconds = statistics.median(samples)
    return MatmulTiming(device, n, dtype, seconds, gflops_per_second(n, seconds), repeats)


def _timed_products(device: str, n: int, repeats: int, dtype: str) -> list[float]:
    import keras

    with keras.device(keras_device_name(device)):
        # Make the operands on the device itself, so no host-to-device copy is timed.
        a = keras.random.uniform((n, n), dtype=dtype, seed=1)
        b = keras.random.uniform((n, n), dtype=dtype, seed=2)
        # Warm-up: the first product pays for kernel selection and memory allocation.
        _wait_for(keras.ops.matmul(a, b))
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            _wait_for(keras.ops.matmul(a, b))
            samples.append(time.perf_counter() - start)
    return samples


def _wait_for(result) -> float:
    """Blocks until `result` is computed: a device runs asynchronously, a copied scalar cannot be early."""
    import keras

    # Cast first: NumPy cannot hold TensorFlow's bfloat16, and float16 sums overflow.
    return float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.cast(result, "float32"))))


def sweep(
    devices: Sequence[str],
    sizes: Sequence[int],
    repeats: int = DEFAULT_REPEATS,
    dtype: str = "float32",
    limits: ServerLimits | None = None,
    available: Sequence[str] | None = None,
    on_timing: Callable[[MatmulTiming], None] | None = None,
) -> pd.DataFrame:
    """Times matrix products for every device and size.

    All sizes are validated before any work starts.

    Args:
        devices: Device names to time.
        sizes: Matrix sizes N.
        repeats: Timed products per (device, N).
        dtype: Element type, one of `DTYPES`.
        limits: The limits in force; `load_limits()` when None.
        available: Normalised names of the present devices; asked from the backend when None.
        on_timing: Called with each timing as it is made (for a progress display).

    Returns:
        A tidy DataFrame, one row per (device, N), with the columns of `MatmulTiming`.

    Raises:
        The errors of `time_matmul`.
    """
    limits = load_limits() if limits is None else limits
    for n in sizes:
        validate_size(n, limits)
    rows = []
    for device in devices:
        for n in sizes:
            timing = time_matmul(device, n, repeats, dtype, limits, available)
            rows.append(asdict(timing))
            if on_timing is not None:
                on_timing(timing)
    return pd.DataFrame(rows, columns=[field.name for field in fields(MatmulTiming)])


def crossover_size(df: pd.DataFrame) -> int | None:
    """Finds the matrix size from which on the GPU is faster than the CPU.

    At each N the fastest GPU is compared with the fastest CPU. The result is the smallest N at
    which the GPU is faster and stays faster at every larger measured N, so one noisy small-N
    point does not count as the crossover.

    Args:
        df: Timings as made by `sweep` (columns "device", "n", "seconds").

    Returns:
        That N, or None when there is no GPU row, no CPU row, or the GPU is not faster at the largest N.
    """
    both = _fastest_cpu_and_gpu(df)
    if both.empty:
        return None
    gpu_faster = both["gpu"] < both["cpu"]
    crossover = None
    for n, faster in zip(reversed(both.index.tolist()), reversed(gpu_faster.tolist()), strict=True):
        if not faster:
            break
        crossover = int(n)
    return crossover


def speedup_at_largest(df: pd.DataFrame) -> float | None:
    """Returns how many times faster the fastest GPU is than the fastest CPU at the largest common N.

    Args:
        df: Timings as made by `sweep`.

    Returns:
        CPU seconds / GPU seconds, or None when there are not both CPU and GPU rows.
    """
    both = _fastest_cpu_and_gpu(df)
    if both.empty:
        return None
    largest = both.iloc[-1]
    return float(largest["cpu"] / largest["gpu"])


def _fastest_cpu_and_gpu(df: pd.DataFrame) -> pd.DataFrame:
    """Returns, per N measured on both kinds, the fastest CPU and GPU seconds (columns "cpu", "gpu"), sorted by N."""
    if df.empty:
        return pd.DataFrame(columns=["cpu", "gpu"])
    kinds = df["device"].str.split(":").str[0]
    fastest = df.assign(kind=kinds).groupby(["n", "kind"])["seconds"].min().unstack("kind")
    if "cpu" not in fastest or "gpu" not in fastest:
        return pd.DataFrame(columns=["cpu", "gpu"])
    return fastest[["cpu", "gpu"]].dropna().sort_index()
