"""A short description of the machine a run happened on: CPU model and cores, RAM, GPU names, OS.

Stored with every run and printed by the CLI, so numbers from different machines can be told apart.
It reads `/proc` and the standard library only (no Keras, no subprocess) unless asked to probe the
Keras devices, and it never raises: what cannot be found is reported as None or an empty list.
"""

from __future__ import annotations

import os
import pathlib
import platform
from collections.abc import Sequence
from typing import Any

PROC_ROOT = pathlib.Path("/proc")


def describe_hardware(
    devices: Sequence[Any] | None = None, *, probe_devices: bool = False, proc_root: pathlib.Path = PROC_ROOT
) -> dict[str, Any]:
    """Describes this machine.

    Args:
        devices: `lib.devices.DeviceInfo` objects already listed; their GPU descriptions are used.
        probe_devices: List the Keras devices (imports the backend, slow) when `devices` is None.
        proc_root: Where `/proc` is (tests point it elsewhere).

    Returns:
        A JSON-ready dict: "cpu_model" (str or None), "logical_cores" (int or None), "usable_cores"
        (cores this process may run on), "ram_bytes" (int or None), "gpus" (list of names),
        "platform", "machine", "python".
    """
    if devices is None and probe_devices:
        devices = _probe_devices()
    gpus = _gpu_names_from_devices(devices) if devices else _gpu_names_from_driver(proc_root)
    return {
        "cpu_model": _cpu_model(proc_root),
        "logical_cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "ram_bytes": _ram_bytes(proc_root),
        "gpus": gpus,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def hardware_summary(hardware: dict[str, Any]) -> str:
    """Returns one line such as "AMD EPYC, 2 logical cores, 23.5 GiB RAM, GPUs: none".

    Args:
        hardware: A dict from `describe_hardware`.
    """
    cpu = hardware.get("cpu_model") or "unknown CPU"
    cores = hardware.get("logical_cores")
    ram = hardware.get("ram_bytes")
    gpus = hardware.get("gpus") or []
    parts = [
        cpu,
        f"{cores} logical cores" if cores else "cores unknown",
        f"{ram / 2**30:.1f} GiB RAM" if ram else "RAM unknown",
        "GPUs: " + (", ".join(gpus) if gpus else "none"),
    ]
    return ", ".join(parts)


def _read_text(path: pathlib.Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _cpu_model(proc_root: pathlib.Path) -> str | None:
    for line in _read_text(proc_root / "cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or None


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _ram_bytes(proc_root: pathlib.Path) -> int | None:
    for line in _read_text(proc_root / "meminfo").splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            try:
                return int(fields[1]) * 1024  # /proc/meminfo counts kibibytes
            except (IndexError, ValueError):
                return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _gpu_names_from_driver(proc_root: pathlib.Path) -> list[str]:
    """NVIDIA GPU models from the driver's /proc files (present when the driver is loaded)."""
    names = []
    try:
        folders = sorted((proc_root / "driver" / "nvidia" / "gpus").iterdir())
    except OSError:
        return []
    for folder in folders:
        for line in _read_text(folder / "information").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model" and value.strip():
                names.append(value.strip())
    return names


def _gpu_names_from_devices(devices: Sequence[Any]) -> list[str]:
    return [
        getattr(device, "description", "") or getattr(device, "name", "")
        for device in devices
        if str(getattr(device, "kind", "")).upper() == "GPU"
    ]


def _probe_devices() -> list[Any]:
    try:
        from lib.devices import list_devices

        return list_devices()
    except Exception:  # a description must never fail a run
        return []
