"""Facts that only a fresh interpreter can give (which backend, what got imported), printed as one JSON line.

Run from the repository root as `python -m tests.helpers.fresh_reports NAME`, NAME one of `REPORTS`:
    backend   [backend name, library versions, the heavy libraries imported meanwhile]
    probe     the backend libraries (and Streamlit) that probing the devices imported
    devices   [backend name, the backend's devices, its CUDA build facts]
    matmul    one timed 32 x 32 matrix product on the CPU
Each imports what it reports on only once it runs, so nothing else is imported before.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

HEAVY = ("keras", "tensorflow", "jax", "torch")  # libraries that take seconds to import


def backend_report() -> Any:
    """The backend lib.backend chooses and the library versions it reads, with what they imported."""
    from lib.backend import backend_name, library_versions

    return [backend_name(), library_versions(), sorted(name for name in HEAVY if name in sys.modules)]


def probe_report() -> Any:
    """The libraries that probing the devices imported: none of the backends, nor Streamlit."""
    from lib.probe import probe_devices

    probe_devices()
    return sorted(name for name in (*HEAVY, "streamlit") if name in sys.modules)


def devices_report() -> Any:
    """The backend's name, its devices and its CUDA build facts."""
    from lib.backend import backend_name
    from lib.devices import cuda_build_info, list_devices

    return [backend_name(), [dataclasses.asdict(device) for device in list_devices()], cuda_build_info()]


def matmul_report() -> Any:
    """One timed matrix product on the CPU."""
    from lib.limits import ServerLimits
    from lib.matmul import time_matmul

    return dataclasses.asdict(time_matmul("cpu", 32, repeats=2, limits=ServerLimits(matmul_n=64)))


REPORTS: dict[str, Callable[[], Any]] = {
    "backend": backend_report,
    "probe": probe_report,
    "devices": devices_report,
    "matmul": matmul_report,
}


if __name__ == "__main__":
    print(json.dumps(REPORTS[sys.argv[1]]()))
