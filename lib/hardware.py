"""The machine's CPU and memory facts, and a short description of the machine a run happened on.

This is the one place the app reads CPU and RAM facts: psutil for core counts and memory, the CPU's
model name from `/proc/cpuinfo` (psutil does not report it), else `platform`. GPU names come from the
NVIDIA driver through `lib.probe`, or from devices a backend already listed. `describe_hardware()` is
stored with every run and printed by the CLI, so numbers from different machines can be told apart;
`machine_name` and `machine_text` are how the pages name that machine. No function here imports Keras or a
backend library unless asked to, and none raises: what cannot be found is reported as None or an empty list.
"""

from __future__ import annotations

import os
import pathlib
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

CPUINFO = pathlib.Path("/proc/cpuinfo")  # where Linux names the CPU model
CPU_MODEL_KEYS = ("model name", "Model", "cpu model")  # x86, ARM and MIPS spellings in /proc/cpuinfo
THIS_SERVER = "this server"  # the machine of a run stored without a node or host name (before runs kept one)


def cpu_model(cpuinfo: pathlib.Path = CPUINFO) -> str | None:
    """The CPU's model name, e.g. "AMD EPYC 7B13"; None when the system does not say.

    Args:
        cpuinfo: The file that names the CPU (tests point it elsewhere).
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in CPU_MODEL_KEYS and value.strip():
            return value.strip()
    return platform.processor() or None


def logical_cores() -> int | None:
    """The machine's logical cores (hardware threads); None when the system does not say."""
    return psutil.cpu_count(logical=True)


def usable_cores() -> int:
    """The cores this process may run on: fewer than the machine's when a container or `taskset` limits it."""
    try:
        return len(psutil.Process().cpu_affinity())
    except (AttributeError, psutil.Error, OSError):  # cpu_affinity does not exist on macOS
        return logical_cores() or 1


def ram_bytes() -> int | None:
    """The machine's total RAM in bytes; None when the system does not say."""
    try:
        return int(psutil.virtual_memory().total)
    except (psutil.Error, OSError, RuntimeError):
        return None


def cpu_description(cpuinfo: pathlib.Path = CPUINFO) -> str:
    """Describes this machine's CPU for people, e.g. "AMD EPYC 7B13, 2 cores" (the cores this process may use).

    Args:
        cpuinfo: The file that names the CPU (tests point it elsewhere).
    """
    model = cpu_model(cpuinfo) or platform.machine() or "CPU"
    cores = usable_cores()
    return f"{model}, {cores} core{'s' if cores != 1 else ''}"


def describe_hardware(
    devices: Sequence[Any] | None = None, *, probe_devices: bool = False, cpuinfo: pathlib.Path = CPUINFO
) -> dict[str, Any]:
    """Describes this machine.

    Args:
        devices: `lib.devices.DeviceInfo` objects already listed; their GPU descriptions are used.
        probe_devices: List the Keras devices (imports the backend, slow) when `devices` is None;
            otherwise GPU names come from the NVIDIA driver (`lib.probe`).
        cpuinfo: The file that names the CPU (tests point it elsewhere).

    Returns:
        A JSON-ready dict: "cpu_model" (str or None), "logical_cores" (int or None), "usable_cores"
        (cores this process may run on), "ram_bytes" (int or None), "gpus" (list of names), "host" (the
        host name, or None), "platform", "machine", "python". A cluster's runs add "node" (the node's
        name) and "node_id".
    """
    if devices is None and probe_devices:
        devices = _backend_devices()
    return {
        "cpu_model": cpu_model(cpuinfo),
        "logical_cores": logical_cores(),
        "usable_cores": usable_cores(),
        "ram_bytes": ram_bytes(),
        "gpus": _gpu_names_from_devices(devices) if devices else _gpu_names_from_driver(),
        "host": platform.node() or None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def hardware_summary(hardware: Mapping[str, Any]) -> str:
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


def machine_name(hardware: Mapping[str, Any] | None) -> str:
    """The name people know a run's machine by: the cluster node's name, else the host name, else "this server".

    Args:
        hardware: A run's or job's hardware (`describe_hardware`, plus "node" on a cluster); runs stored
            before host names were kept have neither, and were run by this server.
    """
    hardware = hardware if isinstance(hardware, Mapping) else {}
    for key in ("node", "host"):
        name = str(hardware.get(key) or "").strip()
        if name:
            return name
    return THIS_SERVER


def ran_here(hardware: Mapping[str, Any] | None) -> bool:
    """Whether a run ran on this machine: not on a cluster's node, and on this host (older runs kept no host).

    Args:
        hardware: A run's hardware, as for `machine_name`.
    """
    hardware = hardware if isinstance(hardware, Mapping) else {}
    if str(hardware.get("node") or "").strip():
        return False
    host = str(hardware.get("host") or "").strip()
    return not host or host == platform.node()


def machine_text(hardware: Mapping[str, Any] | None) -> str:
    """Names a machine and what it has, e.g. "machine-1 (host gpu-04): AMD EPYC, 16 logical cores, ..., GPUs: L4".

    The host is named apart when a cluster's node name differs from it. A run stored without hardware
    facts is named alone.

    Args:
        hardware: A run's or job's hardware, as for `machine_name`.
    """
    hardware = hardware if isinstance(hardware, Mapping) else {}
    name = machine_name(hardware)
    host = str(hardware.get("host") or "").strip()
    if host and host != name:
        name = f"{name} (host {host})"
    return f"{name}: {hardware_summary(hardware)}" if hardware_known(hardware) else name


def hardware_known(hardware: Mapping[str, Any] | None) -> bool:
    """Whether a run's hardware says anything of its CPU, RAM or GPUs (runs stored early say nothing)."""
    hardware = hardware if isinstance(hardware, Mapping) else {}
    return any(hardware.get(key) for key in ("cpu_model", "logical_cores", "ram_bytes", "gpus"))


def _gpu_names_from_driver() -> list[str]:
    from lib.probe import driver_gpus  # lazy: lib.probe builds on this module

    return [gpu.name for gpu in driver_gpus(os.environ)]


def _gpu_names_from_devices(devices: Sequence[Any]) -> list[str]:
    return [
        getattr(device, "description", "") or getattr(device, "name", "")
        for device in devices
        if str(getattr(device, "kind", "")).upper() == "GPU"
    ]


def _backend_devices() -> list[Any]:
    try:
        from lib.devices import list_devices

        return list_devices()
    except Exception:  # a description must never fail a run
        return []
