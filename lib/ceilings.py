"""The device's ceilings: how many FLOP/s one large matrix product reaches, per precision.

A training run's achieved FLOP/s means little on its own; against the ceiling measured on the same
device, through the same library, it says how close the run came to what the hardware can do. The
product is timed through the backend's own API (JAX, TensorFlow or PyTorch), not through Keras, so
the number is the library's best case: warm-up products first, the device synchronised before the
clock is read, the median of several repeats.

Precisions:
- "float32 strict": full float32 arithmetic (JAX `Precision.HIGHEST`, TensorFlow and PyTorch with TF32 off).
  TensorFlow is timed through its own kernels and through XLA, keeping the faster.
- "tf32": float32 inputs multiplied on NVIDIA Tensor Cores with 10-bit mantissas (GPUs only).
- "bfloat16": bfloat16 inputs, float32 accumulation (what `mixed_bfloat16` runs use).

`measure_ceilings` is pure (nothing global is kept), so callers cache it: the Results page wraps it in
`st.cache_resource` so that it runs once per device and server process. The libraries are imported
inside the functions; importing this module is cheap.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from lib.backend import backend_name, import_backend_module

MATMUL_PRECISIONS = ("float32 strict", "tf32", "bfloat16")  # every precision a ceiling can be measured in
DEFAULT_N = {"cpu": 4096, "gpu": 8192}  # matrix size per device type: large enough to saturate it
WARMUP_PRODUCTS = 2  # untimed products before the timed ones (compilation, caches, clocks)
REPEATS = {"cpu": 3, "gpu": 10}  # timed products per precision; the median is kept
CPU_BF16_BUDGET_S = 5.0  # on CPUs, a bfloat16 product projected to take longer runs at a smaller n
CPU_BF16_PROBE_N = 512  # size of the quick bfloat16 probe that decides the CPU's bfloat16 size
MIN_N = 256  # smallest size a ceiling is measured at


class CeilingError(ValueError):
    """A ceiling was asked for on a device or precision that cannot be measured."""


@dataclass(frozen=True)
class Ceiling:
    """The best measured matrix-product speed of one device in one precision."""

    device: str  # normalised device name, "cpu:0", "gpu:0"
    precision: str  # one of MATMUL_PRECISIONS
    n: int  # the product was n x n times n x n
    seconds: float  # median wall time of one product
    flops_per_s: float  # 2 n^3 / seconds
    backend: str = ""  # library that ran the product: "jax", "tensorflow" or "torch"
    note: str = ""  # why the size or precision differs from the default, if it does

    def to_dict(self) -> dict[str, Any]:
        """Returns the ceiling as JSON-ready plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ceiling:
        """Builds a ceiling from `to_dict` output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def matmul_flops(n: int) -> int:
    """Returns the floating-point operations of one N x N by N x N product: N^3 multiply-adds, 2 * N^3 FLOPs.

    Args:
        n: The matrix size.
    """
    return 2 * n**3


def device_type(device: str) -> str:
    """Returns "cpu" or "gpu" for a normalised device name such as "gpu:0".

    Raises:
        CeilingError: The name is neither a CPU nor a GPU name.
    """
    kind, _, index = device.partition(":")
    if kind not in DEFAULT_N or not (index or "0").isdigit():
        raise CeilingError(f"Device {device!r} is not a normalised device name; use 'cpu:0', 'gpu:0', ...")
    return kind


def precisions_for(device: str) -> tuple[str, ...]:
    """The precisions worth measuring on a device: TF32 exists on (NVIDIA) GPUs only.

    Args:
        device: A normalised device name.
    """
    if device_type(device) == "gpu":
        return MATMUL_PRECISIONS
    return ("float32 strict", "bfloat16")


def measure_ceilings(
    device: str,
    n: int | None = None,
    *,
    backend: str | None = None,
    precisions: Sequence[str] | None = None,
    repeats: int | None = None,
) -> list[Ceiling]:
    """Times large matrix products on one device and returns its ceiling per precision.

    Args:
        device: Normalised device name, "cpu:0" or "gpu:0".
        n: Matrix size; `DEFAULT_N` for the device type when None.
        backend: "jax", "tensorflow" or "torch"; the active Keras backend when None.
        precisions: Which of `MATMUL_PRECISIONS` to measure; `precisions_for(device)` when None.
        repeats: Timed products per precision; `REPEATS` for the device type when None.

    Returns:
        One `Ceiling` per precision, in the order asked.

    Raises:
        CeilingError: Bad device name, unknown precision, TF32 asked on a CPU, or n too small.
        BackendUnavailableError: The backend's library is not installed.
    """
    kind = device_type(device)
    n = DEFAULT_N[kind] if n is None else int(n)
    if n < MIN_N:
        raise CeilingError(f"n={n} is too small to measure a ceiling; use n >= {MIN_N}.")
    backend = backend or backend_name()
    precisions = tuple(precisions or precisions_for(device))
    _check_precisions(device, precisions)
    timer = _timer_for(backend, device)
    repeats = repeats or REPEATS[kind]
    ceilings = []
    for precision in precisions:
        size, note = n, ""
        if kind == "cpu" and precision == "bfloat16":
            size, note = _cpu_bfloat16_size(timer, n)
        seconds = _median_seconds(timer, size, precision, repeats)
        ceilings.append(
            Ceiling(device, precision, size, seconds, matmul_flops(size) / seconds, backend=backend, note=note)
        )
    return ceilings


def find_ceiling(ceilings: Sequence[Ceiling], device: str, precision: str) -> Ceiling | None:
    """Returns the fastest ceiling measured for a device and precision, or None.

    Args:
        ceilings: Ceilings of any devices.
        device: Normalised device name.
        precision: One of `MATMUL_PRECISIONS`.
    """
    matches = [c for c in ceilings if c.device == device and c.precision == precision]
    return max(matches, key=lambda c: c.flops_per_s, default=None)


def _check_precisions(device: str, precisions: Sequence[str]) -> None:
    unknown = [p for p in precisions if p not in MATMUL_PRECISIONS]
    if unknown:
        raise CeilingError(f"Unknown precision(s) {unknown}; choose from {list(MATMUL_PRECISIONS)}.")
    if "tf32" in precisions and device_type(device) == "cpu":
        raise CeilingError("TF32 exists on NVIDIA GPUs only; measure 'float32 strict' or 'bfloat16' on a CPU.")


def _median_seconds(timer: Callable[[int, str, int], list[float]], n: int, precision: str, repeats: int) -> float:
    times = timer(n, precision, WARMUP_PRODUCTS + repeats)[WARMUP_PRODUCTS:]
    return statistics.median(times)


def _cpu_bfloat16_size(timer: Callable[[int, str, int], list[float]], n: int) -> tuple[int, str]:
    """Picks the bfloat16 size on a CPU: `n`, unless a product that large would take too long.

    Many CPUs have no bfloat16 arithmetic and emulate it, sometimes a hundred times slower than
    float32; a small probe tells, and the size is halved until a product fits `CPU_BF16_BUDGET_S`.
    """
    probe = min(n, CPU_BF16_PROBE_N)
    probe_s = statistics.median(timer(probe, "bfloat16", 3)[1:])
    size = n
    while size > probe and probe_s * (size / probe) ** 3 > CPU_BF16_BUDGET_S:
        size //= 2
    if size == n:
        return n, ""
    return size, f"measured at n={size}: bfloat16 is slow on this CPU (no native bfloat16 matrix units)"


def _timer_for(backend: str, device: str) -> Callable[[int, str, int], list[float]]:
    """Returns `time_products(n, precision, count) -> seconds of each product` for a backend and device."""
    timers = {"jax": _jax_timer, "tensorflow": _tensorflow_timer, "torch": _torch_timer}
    if backend not in timers:
        raise CeilingError(f"Unknown backend {backend!r}; use one of {sorted(timers)}.")
    module = import_backend_module(backend)
    return timers[backend](module, device)


def _jax_timer(jax, device: str) -> Callable[[int, str, int], list[float]]:
    import jax.numpy as jnp

    kind, _, index = device.partition(":")
    target = jax_device(jax, kind, int(index or 0))

    def time_products(n: int, precision: str, count: int) -> list[float]:
        dtype = jnp.bfloat16 if precision == "bfloat16" else jnp.float32
        # HIGHEST forces full float32; DEFAULT lets XLA use TF32 on NVIDIA GPUs (plain float32 on CPUs).
        level = jax.lax.Precision.HIGHEST if precision == "float32 strict" else jax.lax.Precision.DEFAULT
        key_a, key_b = jax.random.split(jax.random.key(0))
        a = jax.device_put(jax.random.normal(key_a, (n, n), jnp.float32).astype(dtype), target)
        b = jax.device_put(jax.random.normal(key_b, (n, n), jnp.float32).astype(dtype), target)
        product = jax.jit(lambda left, right: jnp.matmul(left, right, precision=level))
        times = []
        for _ in range(count):
            start = time.perf_counter()
            product(a, b).block_until_ready()
            times.append(time.perf_counter() - start)
        return times

    return time_products


def jax_device(jax, kind: str, index: int):
    """The JAX device of a normalised name's kind and index ("gpu", 0), for timings through JAX itself.

    Raises:
        CeilingError: JAX has no device of that kind, or none with that index.
    """
    try:
        devices = jax.devices(kind)
    except RuntimeError as error:  # JAX raises this when no backend of that kind exists
        raise CeilingError(f"JAX sees no {kind.upper()}; measure on 'cpu:0' instead.") from error
    matches = [d for d in devices if d.id == index] or devices[index : index + 1]
    if not matches:
        raise CeilingError(f"JAX has no {kind}:{index}; present: {[d.id for d in devices]}.")
    return matches[0]


def _tensorflow_timer(tf, device: str) -> Callable[[int, str, int], list[float]]:
    kind, _, index = device.partition(":")
    tf_device = f"/{kind.upper()}:{int(index or 0)}"
    # TensorFlow multiplies through two paths: its own kernels (eager) and XLA (`jit_compile=True`, what tuned
    # runs use). Each repeat keeps the faster of the two, so the ceiling is the library's best.
    paths = (tf.linalg.matmul, tf.function(tf.linalg.matmul, jit_compile=True))

    def time_products(n: int, precision: str, count: int) -> list[float]:
        previous = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")
        try:
            with tf.device(tf_device):
                a = tf.random.normal((n, n), seed=1)
                b = tf.random.normal((n, n), seed=2)
                if precision == "bfloat16":
                    a, b = tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)
                times = []
                for _ in range(count):
                    times.append(min(_tensorflow_product_seconds(path, a, b) for path in paths))
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(previous)
        return times

    return time_products


def _tensorflow_product_seconds(matmul: Callable, a: Any, b: Any) -> float:
    start = time.perf_counter()
    # Reading one element back waits for the whole product without copying n x n values.
    matmul(a, b)[0, 0].numpy()
    return time.perf_counter() - start


def _torch_timer(torch, device: str) -> Callable[[int, str, int], list[float]]:
    kind, _, index = device.partition(":")
    target = torch.device("cuda", int(index or 0)) if kind == "gpu" else torch.device("cpu")
    if kind == "gpu" and not torch.cuda.is_available():
        raise CeilingError("PyTorch sees no CUDA GPU; measure on 'cpu:0' instead.")

    def synchronize() -> None:
        if target.type == "cuda":
            torch.cuda.synchronize(target)

    def time_products(n: int, precision: str, count: int) -> list[float]:
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        try:
            generator = torch.Generator(device=target).manual_seed(0)
            dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
            a = torch.randn(n, n, device=target, generator=generator).to(dtype)
            b = torch.randn(n, n, device=target, generator=generator).to(dtype)
            times = []
            for _ in range(count):
                synchronize()
                start = time.perf_counter()
                torch.matmul(a, b)
                synchronize()
                times.append(time.perf_counter() - start)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
        return times

    return time_products
