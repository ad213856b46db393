"""A light device probe: this machine's CPU and GPUs in milliseconds, without Keras or a backend library.

Importing TensorFlow or JAX takes seconds, and the app's router must draw before that. This module asks
the operating system (psutil, through `lib.hardware`) for the CPU and memory, and the NVIDIA driver
(NVML, through `nvidia-ml-py`'s `pynvml`) for each GPU's name, memory and CUDA compute capability. It
returns the same `lib.devices.DeviceInfo` entries under the same names ("cpu:0", "gpu:0", ...) as the
backend's own list, marked `source="probe"`: the backend confirms them once it is imported, and it may
see fewer GPUs (a CPU-only build of TensorFlow, a missing CUDA library).

GPUs are numbered as CUDA numbers them for this process: `CUDA_VISIBLE_DEVICES` (indices or `GPU-` UUID
prefixes) picks and orders them, and an entry that names no GPU ends the list, as CUDA does. Indices are
read in NVML's order (PCI bus order, as `nvidia-smi` prints), which is CUDA's order when
`CUDA_DEVICE_ORDER=PCI_BUS_ID` or when all GPUs are the same model. Without the library or the driver,
or when NVML fails in any way, the probe finds no GPUs; it never raises.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lib.backend import backend_name
from lib.devices import DeviceInfo
from lib.hardware import cpu_description, ram_bytes

PROBE_SOURCE = "probe"  # DeviceInfo.source of the entries this module makes
VISIBLE_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"  # CUDA's own setting: which GPUs a process sees, in which order
UUID_PREFIX = "GPU-"  # how NVML and CUDA_VISIBLE_DEVICES spell a GPU's UUID


@dataclass(frozen=True)
class DriverGpu:
    """One GPU as the NVIDIA driver reports it."""

    name: str  # product name, e.g. "NVIDIA H200"
    memory_bytes: int | None  # total device memory
    compute_capability: str | None  # CUDA compute capability, e.g. "9.0"
    uuid: str  # "GPU-8932f937-...", what CUDA_VISIBLE_DEVICES may name


def probe_devices(environ: Mapping[str, str] | None = None) -> list[DeviceInfo]:
    """Lists this machine's CPU and the GPUs this process may use, without importing a backend library.

    Args:
        environ: The environment holding `CUDA_VISIBLE_DEVICES` and `KERAS_BACKEND`; `os.environ` when None.

    Returns:
        "cpu:0" first, then "gpu:0", "gpu:1", ... in CUDA's numbering; every entry has `source="probe"`.
    """
    env = os.environ if environ is None else environ
    backend = backend_name(env)
    cpu = DeviceInfo("cpu:0", "CPU", cpu_description(), ram_bytes(), None, backend, source=PROBE_SOURCE)
    gpus = [
        DeviceInfo(f"gpu:{index}", "GPU", gpu.name, gpu.memory_bytes, gpu.compute_capability, backend, PROBE_SOURCE)
        for index, gpu in enumerate(driver_gpus(env))
    ]
    return [cpu, *gpus]


def driver_gpus(environ: Mapping[str, str] | None = None) -> list[DriverGpu]:
    """The GPUs the NVIDIA driver reports that this process may use, in CUDA's numbering.

    Args:
        environ: The environment holding `CUDA_VISIBLE_DEVICES`; `os.environ` when None.

    Returns:
        Position i is CUDA's (and Keras') "gpu:i". Empty when `pynvml` is not installed, there is no
        driver, or NVML fails in any way.
    """
    env = os.environ if environ is None else environ
    every_gpu = _every_driver_gpu()
    order = visible_gpu_order(env.get(VISIBLE_DEVICES_ENV), [gpu.uuid for gpu in every_gpu])
    return [every_gpu[index] for index in order]


def visible_gpu_order(visible_devices: str | None, uuids: Sequence[str]) -> list[int]:
    """Applies `CUDA_VISIBLE_DEVICES` to the driver's GPUs, as CUDA does.

    Args:
        visible_devices: The variable's value; None when it is not set (every GPU, in the driver's order).
        uuids: Every GPU's UUID, in the driver's order.

    Returns:
        Driver indices in CUDA's order: position i is "gpu:i". An entry that is neither a driver index nor
        the prefix of exactly one UUID ("-1", "MIG-...", a repeat) ends the list there, as CUDA does.
    """
    if visible_devices is None:
        return list(range(len(uuids)))
    order: list[int] = []
    for entry in (item.strip() for item in visible_devices.split(",")):
        index = _driver_index(entry, uuids)
        if index is None or index in order:
            break
        order.append(index)
    return order


def _driver_index(entry: str, uuids: Sequence[str]) -> int | None:
    if entry.isdigit():
        return int(entry) if int(entry) < len(uuids) else None
    if entry.upper().startswith(UUID_PREFIX):
        matches = [index for index, uuid in enumerate(uuids) if uuid.lower().startswith(entry.lower())]
        return matches[0] if len(matches) == 1 else None
    return None


def _every_driver_gpu() -> list[DriverGpu]:
    """Every GPU NVML reports, in its order; empty on any failure (no library, no driver, an NVML error)."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...: no usable driver on this machine
        return []
    try:
        return [_driver_gpu(pynvml, index) for index in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # any NVML error while reading: the GPUs cannot be numbered reliably, so report none
        return []
    finally:
        _shut_down(pynvml)


def _driver_gpu(pynvml, index: int) -> DriverGpu:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    return DriverGpu(
        name=_text(pynvml.nvmlDeviceGetName(handle)),
        memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
        compute_capability=f"{major}.{minor}",
        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
    )


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _shut_down(pynvml) -> None:
    with contextlib.suppress(Exception):  # nothing is left to release when shutting down fails
        pynvml.nvmlShutdown()
