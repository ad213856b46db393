"""The devices (CPUs and GPUs) the active Keras backend can run on, under normalised names.

Every part of the app names devices the same way: lower-case "cpu:0", "gpu:0", "gpu:1", ... which
`keras.device()` accepts on the TensorFlow, JAX and PyTorch backends alike. `list_devices()` asks the
backend library which devices exist (TensorFlow: `tf.config`, JAX: `jax.devices()`, PyTorch:
`torch.cuda`) and describes each one; `resolve_device()` turns user input such as "GPU", "/CPU:0" or
"cuda" into a present device name or raises `DeviceNotFoundError` saying which devices exist.

The backend libraries are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.backend import GPU_INSTALL_COMMANDS, backend_name, import_backend_module
from lib.formatting import format_bytes
from lib.hardware import cpu_description, ram_bytes

DEVICE_KINDS = {"cpu": "CPU", "gpu": "GPU"}  # normalised type -> DeviceInfo.kind
DEVICE_ALIASES = {"cuda": "gpu"}  # other spellings users type (PyTorch says "cuda")
BACKEND_SOURCE = "backend"  # DeviceInfo.source of devices the backend library listed (lib.probe makes "probe")
_DEVICE_NAME = re.compile(r"^(?P<type>[a-z]+)(?::(?P<index>\d+))?$")  # "gpu:1", "cpu", ...


class DeviceNotFoundError(ValueError):
    """A device was asked for that this machine (or this Keras backend) does not have."""


@dataclass(frozen=True)
class DeviceInfo:
    """One device the active Keras backend can place work on."""

    name: str  # normalised, lower-case: "cpu:0", "gpu:0"; what keras.device() takes
    kind: str  # "CPU" or "GPU"
    description: str  # for people: CPU model and core count, or GPU product name
    memory_bytes: int | None  # total RAM for a CPU, device memory for a GPU; None when unknown
    compute_capability: str | None  # CUDA compute capability such as "9.0"; None for CPUs or when unknown
    backend: str  # the Keras backend that reported (or, from the probe, will report) the device
    source: str = BACKEND_SOURCE  # who listed it: the backend library, or "probe" (lib.probe) until it is imported


def list_devices(backend: str | None = None) -> list[DeviceInfo]:
    """Lists the CPUs and GPUs that a Keras backend can use on this machine, CPUs first.

    Args:
        backend: "tensorflow", "jax" or "torch"; the active Keras backend when None.

    Returns:
        One `DeviceInfo` per device. There is always at least "cpu:0".

    Raises:
        BackendUnavailableError: The backend's library is not installed (the message says how to install it).
    """
    backend = backend or backend_name()
    module = import_backend_module(backend)
    listers = {"tensorflow": _tensorflow_devices, "jax": _jax_devices, "torch": _torch_devices}
    devices = listers[backend](module)
    return sorted(devices, key=lambda device: (device.kind != "CPU", _device_index(device.name)))


def device_names(devices: Sequence[DeviceInfo] | None = None) -> list[str]:
    """Returns the normalised names of the devices ("cpu:0", "gpu:0", ...).

    Args:
        devices: Devices to name; `list_devices()` when None.
    """
    devices = list_devices() if devices is None else devices
    return [device.name for device in devices]


def has_gpu(devices: Sequence[DeviceInfo] | None = None) -> bool:
    """Tells whether at least one GPU is usable.

    Args:
        devices: Devices to look through; `list_devices()` when None.
    """
    devices = list_devices() if devices is None else devices
    return any(device.kind == "GPU" for device in devices)


def normalize_device_name(name: str) -> str | None:
    """Turns a device name as users and libraries write it into the app's form.

    "CPU", "cpu", "/CPU:0", "/physical_device:GPU:1", "/job:localhost/replica:0/task:0/device:GPU:0",
    "gpu", "cuda:0" become "cpu:0", "gpu:1", ...

    Args:
        name: The name to normalise.

    Returns:
        The normalised name, or None when `name` does not look like a CPU or GPU name.
    """
    # TensorFlow writes full paths such as "/job:localhost/.../device:GPU:0": the device is the part after "device:".
    text = name.strip().lower().rpartition("device:")[2].lstrip("/")
    match = _DEVICE_NAME.match(text)
    if match is None:
        return None
    device_type = DEVICE_ALIASES.get(match["type"], match["type"])
    if device_type not in DEVICE_KINDS:
        return None
    return f"{device_type}:{int(match['index'] or 0)}"


def keras_device_name(name: str, backend: str | None = None) -> str:
    """Returns the name to give `keras.device()` for a normalised device name on a backend.

    On PyTorch, "cpu:0" becomes "cpu": Keras' PyTorch variables are created on the default CPU device and
    then moved with `.to("cpu:0")`, which PyTorch treats as another device and answers with a copy that is
    not a leaf tensor, so its gradients are never filled in ("No gradients provided for any variable").
    Every other name, and every name on TensorFlow and JAX, is returned as it is.

    Args:
        name: A normalised device name ("cpu:0", "gpu:1").
        backend: The Keras backend; the active one when None.
    """
    if (backend or backend_name()) == "torch" and name.startswith("cpu:"):
        return "cpu"
    return name


def resolve_device(name: str, available: Sequence[str] | None = None) -> str:
    """Normalises a device name and checks that the device is present.

    Args:
        name: A device name in any accepted spelling ("GPU", "/CPU:0", "gpu:1", "cuda"), or a data-parallel
            name ("gpu:all", see `lib.parallel`), which is checked against the backend's devices instead.
        available: Normalised names of the present devices; `device_names()` when None.

    Returns:
        The normalised name, e.g. "gpu:0" (or "gpu:all").

    Raises:
        DeviceNotFoundError: `name` is not a device name, or the device is not present; the message
            lists the present devices.
    """
    from lib.parallel import is_data_parallel, resolve_data_parallel  # lazy: lib.parallel imports this module

    if is_data_parallel(name):  # "gpu:all": data parallel over every GPU, checked against the backend's devices
        return resolve_data_parallel(name)
    available = device_names() if available is None else list(available)
    normalized = normalize_device_name(str(name))
    if normalized is None or normalized not in available:
        present = ", ".join(available) or "none"
        reason = "is not a device name" if normalized is None else "is not present on this machine"
        raise DeviceNotFoundError(f"Device {name!r} {reason}. Present devices: {present}. Choose one of those.")
    return normalized


def cuda_build_info(backend: str | None = None) -> dict[str, Any]:
    """Tells whether the backend library was built with CUDA support, and which versions. Never raises.

    Args:
        backend: "tensorflow", "jax" or "torch"; the active Keras backend when None.

    Returns:
        A dict with "backend", "built_with_cuda" (bool, or None when it could not be found out),
        "cuda_version" and "cudnn_version" (str or None), and "note" (a readable remark, may be empty).
    """
    info: dict[str, Any] = {"backend": None, "built_with_cuda": None, "cuda_version": None, "cudnn_version": None}
    info["note"] = ""
    try:
        backend = backend or backend_name()
        info["backend"] = backend
        module = import_backend_module(backend)
        readers = {"tensorflow": _tensorflow_build, "jax": _jax_build, "torch": _torch_build}
        info.update(readers[backend](module))
    except Exception as error:  # a best-effort report for the UI: any failure becomes a note
        info["note"] = f"Could not read the CUDA build information: {error}"
    return info


def cuda_build_summary(info: Mapping[str, Any]) -> str:
    """Says in one sentence how the backend library was built, e.g. "tensorflow is built with CUDA 12.5.1".

    Args:
        info: Output of `cuda_build_info`.
    """
    backend = info.get("backend") or "The backend"
    note = f" {info['note']}" if info.get("note") else ""
    if info.get("built_with_cuda") is None:
        return f"Whether {backend} is built with CUDA is unknown.{note}"
    if not info["built_with_cuda"]:
        return f"{backend} is built without CUDA: it can only use the CPU.{note}"
    versions = f" {info['cuda_version']}" if info.get("cuda_version") else ""
    cudnn = f" and cuDNN {info['cudnn_version']}" if info.get("cudnn_version") else ""
    return f"{backend} is built with CUDA{versions}{cudnn}.{note}"


def gpu_setup_hint(info: Mapping[str, Any]) -> str:
    """Tells someone without a visible GPU how to get one working with the active backend.

    Args:
        info: Output of `cuda_build_info`.
    """
    backend = info.get("backend") or "tensorflow"
    command = GPU_INSTALL_COMMANDS.get(backend, GPU_INSTALL_COMMANDS["tensorflow"])
    if info.get("built_with_cuda"):
        return (
            f"{backend} here is built with CUDA, yet it found no GPU: it needs an NVIDIA GPU with its driver "
            f"installed (`nvidia-smi` should list it). On Linux, `{command}` also installs the CUDA libraries."
        )
    return f"To use an NVIDIA GPU, install a GPU build on Linux with the NVIDIA driver: `{command}`."


def device_table(devices: Sequence[DeviceInfo]) -> list[dict[str, str]]:
    """Returns one row per device for display: name, type, description, memory and compute capability.

    Args:
        devices: The devices to describe.
    """
    return [
        {
            "Device": device.name,
            "Type": device.kind,
            "Description": device.description,
            "Memory": format_bytes(device.memory_bytes),
            "Compute capability": device.compute_capability or "-",
        }
        for device in devices
    ]


def _device_index(name: str) -> int:
    return int(name.rsplit(":", 1)[1])


def _cpu_device(name: str, backend: str) -> DeviceInfo:
    return DeviceInfo(
        name=name,
        kind="CPU",
        description=cpu_description(),
        memory_bytes=ram_bytes(),
        compute_capability=None,
        backend=backend,
    )


def _gpu_device(index: int, product: str, memory: int | None, capability: str | None, backend: str) -> DeviceInfo:
    return DeviceInfo(
        name=f"gpu:{index}",
        kind="GPU",
        description=product or "GPU",
        memory_bytes=memory,
        compute_capability=capability,
        backend=backend,
    )


def _tensorflow_devices(tf) -> list[DeviceInfo]:
    devices = []
    gpu_memory = driver_gpu_memory_bytes(os.environ)
    for physical in tf.config.list_physical_devices():
        name = normalize_device_name(physical.name)
        if name is None:
            continue
        if name.startswith("cpu"):
            devices.append(_cpu_device(name, "tensorflow"))
            continue
        details = tf.config.experimental.get_device_details(physical)
        capability = details.get("compute_capability")
        index = _device_index(name)
        devices.append(
            _gpu_device(
                index,
                details.get("device_name", ""),
                gpu_memory[index] if index < len(gpu_memory) else None,
                f"{capability[0]}.{capability[1]}" if capability else None,
                "tensorflow",
            )
        )
    return devices


def _jax_devices(jax) -> list[DeviceInfo]:
    devices = [_cpu_device(f"cpu:{device.id}", "jax") for device in jax.devices("cpu")]
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:  # JAX raises this when no GPU backend is installed or no GPU is visible
        gpus = []
    gpu_memory = driver_gpu_memory_bytes(os.environ)
    for position, device in enumerate(gpus):
        memory = gpu_memory[position] if position < len(gpu_memory) else _jax_memory_limit(device)
        capability = getattr(device, "compute_capability", None)
        devices.append(_gpu_device(device.id, device.device_kind, memory, capability, "jax"))
    return devices


def _jax_memory_limit(device) -> int | None:
    try:
        stats = device.memory_stats() or {}
    except Exception:  # memory statistics are optional in JAX's device API
        return None
    return stats.get("bytes_limit")


def _torch_devices(torch) -> list[DeviceInfo]:
    devices = [_cpu_device("cpu:0", "torch")]
    if not torch.cuda.is_available():
        return devices
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        capability = f"{properties.major}.{properties.minor}"
        devices.append(_gpu_device(index, properties.name, properties.total_memory, capability, "torch"))
    return devices


def driver_gpu_memory_bytes(environ: Mapping[str, str]) -> list[int | None]:
    """Returns the total memory of each GPU visible to this process, as the NVIDIA driver reports it.

    TensorFlow and JAX do not report a GPU's total memory, so the driver is asked (`lib.probe`), with
    `CUDA_VISIBLE_DEVICES` applied: position i of the list is the backend's "gpu:i".

    Args:
        environ: The environment holding `CUDA_VISIBLE_DEVICES`, if set.

    Returns:
        Bytes per visible GPU; an empty list when the driver or its library is missing or fails.
    """
    from lib.probe import driver_gpus  # lazy: lib.probe builds DeviceInfo from this module

    return [gpu.memory_bytes for gpu in driver_gpus(environ)]


def _tensorflow_build(tf) -> dict[str, Any]:
    build = dict(tf.sysconfig.get_build_info())
    built = bool(tf.test.is_built_with_cuda())
    return {
        "built_with_cuda": built,
        "cuda_version": build.get("cuda_version") if built else None,
        "cudnn_version": build.get("cudnn_version") if built else None,
    }


def _jax_build(jax) -> dict[str, Any]:
    import importlib.metadata

    plugins = {}
    for major in ("12", "13"):
        try:
            plugins[major] = importlib.metadata.version(f"jax-cuda{major}-plugin")
        except importlib.metadata.PackageNotFoundError:
            continue
    if not plugins:
        return {"built_with_cuda": False, "note": f"JAX {jax.__version__} has no CUDA plugin."}
    major = max(plugins)
    return {
        "built_with_cuda": True,
        "cuda_version": major,
        "note": f"jax-cuda{major}-plugin {plugins[major]} (CUDA {major}.x)",
    }


def _torch_build(torch) -> dict[str, Any]:
    cuda_version = torch.version.cuda
    cudnn = torch.backends.cudnn.version() if cuda_version else None
    return {
        "built_with_cuda": cuda_version is not None,
        "cuda_version": cuda_version,
        "cudnn_version": _cudnn_version_string(cudnn) if cudnn else None,
    }


def _cudnn_version_string(version: int) -> str:
    # cuDNN 9 encodes major*10000 + minor*100 + patch; cuDNN 8 used major*1000 + minor*100 + patch.
    if version >= 90000:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 100}.{version % 100}"
