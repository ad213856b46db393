"""Process-wide objects shared by every session: server limits, devices, the run store and the job runner.

Each is created once per server process with `st.cache_resource`. The store and runner are keyed by the
database path, so a test (or a server) pointing `GPUX_RUNS_DB` elsewhere gets its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from lib.ceilings import Ceiling, measure_ceilings
from lib.devices import DeviceInfo, list_devices
from lib.limits import LimitConfigError, ServerLimits, load_limits
from lib.parallel import data_parallel_choices
from lib.store import RunStore, default_db_path

if TYPE_CHECKING:
    from lib.runner import JobRunner

CEILING_N: int | None = None  # matrix size of the ceiling measurement; None: lib.ceilings.DEFAULT_N (tests use 256)


def server_limits() -> ServerLimits:
    """The server limits from the environment; a misconfigured limit stops the page with its message."""
    try:
        return load_limits()
    except LimitConfigError as error:
        st.error(f"This server's limits are misconfigured: {error}", icon=":material/error:")
        st.stop()


@st.cache_resource(show_spinner="Looking for devices...")
def devices() -> list[DeviceInfo]:
    """This server's devices, listed once per process (importing the backend is slow)."""
    return list_devices()


def device_names() -> list[str]:
    """Names of this server's devices, "cpu:0" first."""
    return [device.name for device in devices()]


def training_device_names() -> list[str]:
    """Device names a run can train on: this server's devices, then "gpu:all" when it has several GPUs."""
    return device_names() + data_parallel_choices(devices())


def db_path() -> str:
    """Where this server's run history lives (`GPUX_RUNS_DB`, else the default)."""
    return str(default_db_path())


@st.cache_resource(show_spinner=False)
def _store(path: str) -> RunStore:
    return RunStore(path)


def store() -> RunStore:
    """The run store of this server process."""
    return _store(db_path())


@st.cache_resource(show_spinner=False)
def _runner(path: str, limits: ServerLimits) -> JobRunner:
    from lib.runner import JobRunner  # only the Train and Results pages need it

    return JobRunner(_store(path), limits, available_devices=training_device_names())


def runner() -> JobRunner:
    """The job runner of this server process: one queue shared by every browser session."""
    return _runner(db_path(), server_limits())


@st.cache_data(ttl=10, max_entries=8, show_spinner=False)
def _finished_runs(path: str, stored_runs: int) -> pd.DataFrame:
    return _store(path).runs(status="done")


def finished_runs() -> pd.DataFrame:
    """Finished runs from the store, read again when runs were added or after 10 s (a run's status changed).

    The Build page needs them on every slider move; counting rows is much cheaper than decoding them.
    """
    path = db_path()
    return _finished_runs(path, _store(path).count())


@st.cache_resource(show_spinner=False)
def _device_ceilings(device: str, n: int | None) -> list[Ceiling]:
    return measure_ceilings(device, n)


@st.cache_resource(show_spinner=False)
def _measured_devices() -> set[str]:
    """Devices whose ceilings this process measured: filled by `measure_ceilings_once`, never emptied."""
    return set()


def measure_ceilings_once() -> list[Ceiling]:
    """Measures the matmul ceilings of this server's devices, once per process (every session then sees them).

    Raises:
        lib.ceilings.CeilingError: A device cannot be measured; the message says why.
    """
    for device in device_names():
        _device_ceilings(device, CEILING_N)
        _measured_devices().add(device)
    return measured_ceilings()


def measured_ceilings() -> list[Ceiling]:
    """The ceilings measured so far in this process (empty until someone pressed the button)."""
    return [ceiling for device in sorted(_measured_devices()) for ceiling in _device_ceilings(device, CEILING_N)]
