"""Process-wide objects shared by every session: server limits, devices, the run store and the job runner.

Each is created once per server process with `st.cache_resource`. The store and runner are keyed by the
database path, so a test (or a server) pointing `GPUX_RUNS_DB` elsewhere gets its own.

Devices: importing Keras and its backend takes seconds, so no page waits for it to draw. Until the backend
is imported, `devices()` is the light probe's list (`lib.probe`: the operating system and the NVIDIA
driver); a background warm-up, started by the router once its first page has drawn, imports the backend
and lists the backend's own devices, which then replace the probe's. Everything in this process that needs
Keras waits for that one import (`wait_for_backend`) instead of importing it at the same time from another
thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import streamlit as st

from lib.backend import BackendUnavailableError
from lib.ceilings import Ceiling, measure_ceilings
from lib.devices import DeviceInfo, list_devices
from lib.limits import LimitConfigError, ServerLimits, load_limits
from lib.parallel import data_parallel_choices
from lib.probe import probe_devices
from lib.roofline import Bandwidth, measure_bandwidth

if TYPE_CHECKING:
    import pandas as pd

    from lib.datasets import Dataset
    from lib.runner import JobRunner
    from lib.store import RunStore

CEILING_N: int | None = None  # matrix size of the ceiling measurement; None: lib.ceilings.DEFAULT_N (tests use 256)
BANDWIDTH_BYTES: int | None = None  # bytes copied to measure bandwidth; None: lib.roofline's default (tests: 1 MiB)
WARMUP_ENV = "GPUX_WARMUP"  # "0": no import at server start; Keras loads when a page first needs it
BACKEND_LOADING_NOTE = "Keras is still loading its backend: until then, this list comes from the driver."
BACKEND_NOT_LOADED_NOTE = (
    "Keras loads its backend when a page first needs it: until then, this list comes from the driver."
)
BACKEND_FAILED_NOTE = "Keras could not load its backend, so this list comes from the driver."
# Lines TensorFlow's and JAX's C++ runtime print on import (absl's format: "I0000 00:00:... port.cc:153] ..."):
# information, not problems.
NATIVE_IMPORT_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] .*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)$"
)
# A CUDA build's complaints that CUDA cannot start: expected on a machine whose driver reports no GPU.
NATIVE_CUDA_COMPLAINT = re.compile(r"^[WE]\d{4} [\d:.]+ +\d+ \S+:\d+\] .*cu(Init|da)", re.IGNORECASE)
_IMPORT_LOCK = threading.Lock()  # one import of the backend at a time in this process, whichever warm-up asks


def server_limits() -> ServerLimits:
    """The server limits from the environment; a misconfigured limit stops the page with its message."""
    try:
        return load_limits()
    except LimitConfigError as error:
        st.error(f"This server's limits are misconfigured: {error}", icon=":material/error:")
        st.stop()


class BackendWarmup:
    """Imports the backend library and Keras once, in a background thread, and lists the backend's devices."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self.started = False  # whether the import has begun
        self.devices: list[DeviceInfo] | None = None  # the backend's devices, once listed
        self.error: str | None = None  # why the backend could not be imported, once it failed

    @property
    def finished(self) -> bool:
        """Whether the import is over, successfully or not."""
        return self._finished.is_set()

    def start(self) -> None:
        """Starts the import in a background thread; does nothing when it has already started."""
        with self._lock:
            if self.started:
                return
            self.started = True
        no_gpu = not any(device.kind == "GPU" for device in probed_devices())
        threading.Thread(target=self._import_backend, args=(no_gpu,), name="backend-warmup", daemon=True).start()

    def wait(self) -> None:
        """Blocks until the import is over, starting it when nobody has."""
        self.start()
        self._finished.wait()

    def _import_backend(self, no_gpu: bool) -> None:
        try:
            with _IMPORT_LOCK, _native_chatter_filtered(no_gpu):
                # The backend library first, then Keras: TensorFlow imports Keras itself, never the other order.
                self.devices = list_devices()
                import keras  # noqa: F401
        except Exception as error:  # any import failure: pages say why and keep the driver's list
            self.error = str(error) or type(error).__name__
        finally:
            self._finished.set()


@st.cache_resource(show_spinner=False)
def _backend_warmup() -> BackendWarmup:
    return BackendWarmup()


@st.cache_resource(show_spinner=False)
def probed_devices() -> list[DeviceInfo]:
    """The light probe's devices (operating system and NVIDIA driver), read once per process."""
    return probe_devices()


def warmup_enabled() -> bool:
    """Whether the server imports the backend in the background once its first page has drawn (`GPUX_WARMUP`)."""
    return os.environ.get(WARMUP_ENV, "1").strip() != "0"


def start_backend_warmup() -> None:
    """Starts importing the backend in the background, once per process, unless `GPUX_WARMUP` is "0"."""
    if warmup_enabled():
        _backend_warmup().start()


def backend_ready() -> bool:
    """Whether Keras and its backend are imported and `devices()` is the backend's own list."""
    warmup = _backend_warmup()
    return warmup.finished and warmup.error is None


def backend_error() -> str | None:
    """Why the backend could not be imported; None while it loads or once it has loaded."""
    warmup = _backend_warmup()
    return warmup.error if warmup.finished else None


def backend_loading() -> bool:
    """Whether the backend is being imported, or soon will be without anyone asking (the warm-up is on)."""
    warmup = _backend_warmup()
    return not warmup.finished and (warmup.started or warmup_enabled())


def wait_for_backend() -> None:
    """Waits until Keras and its backend are imported, importing them now when nobody has.

    Raises:
        BackendUnavailableError: The backend cannot be imported; the message says why.
    """
    warmup = _backend_warmup()
    warmup.wait()
    if warmup.error is not None:
        raise BackendUnavailableError(warmup.error)


def device_list_note() -> str | None:
    """One line saying where the device list comes from while it is not the backend's; None once it is."""
    if backend_ready():
        return None
    if backend_error() is not None:
        return BACKEND_FAILED_NOTE
    return BACKEND_LOADING_NOTE if backend_loading() else BACKEND_NOT_LOADED_NOTE


def devices() -> list[DeviceInfo]:
    """This server's devices: the backend's list once it is imported, the light probe's until then."""
    warmup = _backend_warmup()
    if warmup.finished and warmup.devices is not None:
        return warmup.devices
    return probed_devices()


def device_names() -> list[str]:
    """Names of this server's devices, "cpu:0" first."""
    return [device.name for device in devices()]


def training_device_names() -> list[str]:
    """Device names a run can train on: this server's devices, then "gpu:all" when it has several GPUs."""
    present = devices()
    return [device.name for device in present] + data_parallel_choices(present)


def db_path() -> str:
    """Where this server's run history lives (`GPUX_RUNS_DB`, else the default)."""
    from lib.store import default_db_path  # lazy, as RunStore: pandas is not needed to draw the first page

    return str(default_db_path())


@st.cache_resource(show_spinner=False)
def _store(path: str) -> RunStore:
    from lib.store import RunStore

    return RunStore(path)


def store() -> RunStore:
    """The run store of this server process."""
    return _store(db_path())


@st.cache_resource(show_spinner=False)
def _runner(path: str, limits: ServerLimits) -> JobRunner:
    from lib.executor import cluster_executor
    from lib.runner import JobRunner  # only the Train and Results pages need it

    executor = cluster_executor(os.environ)  # GPUX_RAY_ADDRESS: a Ray cluster's machines; unset: this server
    if executor is not None:  # the cluster's machines say which devices jobs may ask for
        return JobRunner(_store(path), limits, executor=executor)
    return JobRunner(_store(path), limits, available_devices=training_device_names)


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


@st.cache_resource(show_spinner="Loading the dataset with its Keras loader...")
def dataset(name: str) -> Dataset:
    """A dataset, loaded once per server process: the Datasets and Results pages share it; nobody mutates it.

    Raises:
        lib.datasets.DatasetUnavailableError: This server has no readable copy; the message says what to do.
        BackendUnavailableError: Keras, which reads the copy, cannot be imported.
    """
    from lib.datasets import available_sources, load_dataset

    if available_sources(name):  # Keras' loader reads it: wait for the server's one import of Keras
        wait_for_backend()
    return load_dataset(name)


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
        BackendUnavailableError: The backend cannot be imported.
    """
    _measure_each_device(lambda device: _device_ceilings(device, CEILING_N), _measured_devices())
    return measured_ceilings()


def measured_ceilings() -> list[Ceiling]:
    """The ceilings measured so far in this process (empty until someone pressed the button)."""
    return [ceiling for device in sorted(_measured_devices()) for ceiling in _device_ceilings(device, CEILING_N)]


@st.cache_resource(show_spinner=False)
def _device_bandwidth(device: str, size_bytes: int | None) -> Bandwidth:
    return measure_bandwidth(device, size_bytes=size_bytes)


@st.cache_resource(show_spinner=False)
def _bandwidth_devices() -> set[str]:
    """Devices whose bandwidth this process measured: filled by `measure_bandwidths_once`, never emptied."""
    return set()


def measure_bandwidths_once() -> list[Bandwidth]:
    """Measures the memory bandwidth of this server's devices, once per process (every session then sees them).

    Raises:
        lib.roofline.BandwidthError: A device cannot be measured; the message says why.
        BackendUnavailableError: The backend cannot be imported.
    """
    _measure_each_device(lambda device: _device_bandwidth(device, BANDWIDTH_BYTES), _bandwidth_devices())
    return measured_bandwidths()


def _measure_each_device(measure: Callable[[str], Any], measured: set[str]) -> None:
    """Measures every device of this server through a cached `measure`, and notes each one once it is."""
    wait_for_backend()
    for device in device_names():
        measure(device)
        measured.add(device)


def measured_bandwidths() -> list[Bandwidth]:
    """The bandwidths measured so far in this process (empty until someone pressed the button)."""
    return [_device_bandwidth(device, BANDWIDTH_BYTES) for device in sorted(_bandwidth_devices())]


@contextlib.contextmanager
def _native_chatter_filtered(no_gpu: bool) -> Iterator[None]:
    """Keeps the C++ runtime's import chatter out of the server log; every other line written meanwhile stays.

    TensorFlow and JAX print from C++ straight to the process's standard error (file descriptor 2), past
    Python's logging, and their `TF_CPP_MIN_LOG_LEVEL` is not read that early. So while the block runs,
    descriptor 2 goes to a temporary file, and afterwards every line of it that is not chatter is written on.

    Args:
        no_gpu: The driver reports no GPU: CUDA's complaints that it cannot start are chatter too.
    """
    is_chatter = _chatter_test(no_gpu)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable standard error: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not is_chatter(line)]
            if kept:
                os.write(2, b"".join(kept))


def _chatter_test(no_gpu: bool) -> Callable[[bytes], bool]:
    def is_chatter(line: bytes) -> bool:
        text = line.decode(errors="replace").rstrip("\r\n")
        return bool(NATIVE_IMPORT_CHATTER.match(text) or (no_gpu and NATIVE_CUDA_COMPLAINT.match(text)))

    return is_chatter
