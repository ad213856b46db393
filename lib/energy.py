"""Energy a training run uses: measured, or said to be not measured; never estimated.

Readings come from counters the hardware keeps, through the operating system:
- NVIDIA GPUs, through NVML (`nvidia-ml-py`'s `pynvml`): the GPU's total-energy counter where it has one
  (Volta and newer), else its power draw sampled 20 times a second on a background thread and added up
  over time (trapezoids). On Ampere and newer (except the A100) NVML's power is already a one-second average,
  which is one reason short epochs are measured together (below).
- CPUs, through Linux's powercap tree (`/sys/class/powercap`): the RAPL counters of every processor package
  (`intel-rapl:N` zones named "package-N"; AMD processors appear under the same names). The counters wrap
  around at `max_energy_range_uj`, so they are read in the background often enough never to miss a wrap. Many
  systems let only root read them; then the CPU's energy is not measured.

How the engine uses it: `open_energy_source(device)` once per device run (an `EnergySource`, or an
`EnergyUnavailable` that says why not), `measure_idle_watts(source)` before training (the device's draw while
the app does nothing on it, shown apart), then an `EnergyMeter`: `start()` before the first epoch, `mark()`
after each epoch's timing ends, `result()` at the end, and `energy_fields(result)` to store it with the run.
Counters tick in steps and power readings lag, so epochs shorter than `MIN_WINDOW_S` are measured together
and their energy split by time (`epoch_energy`). Where nothing can be read, a result carries the reason,
worded for people ("not measured on this server: ..."), and no numbers. What stored runs say about their
energy (`run_energy_text`, `energy_table`, `energy_caption`) ends the module, for the pages and the CLI.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pandas as pd

from lib.parallel import ALL_CPUS, ALL_GPUS
from lib.probe import VISIBLE_DEVICES_ENV, visible_gpu_order

NVML_ENERGY_COUNTER = "nvml energy counter"  # method: the GPU's own total-energy counter
NVML_SAMPLED_POWER = "nvml sampled power"  # method: the GPU's power draw, sampled and added up over time
RAPL = "rapl"  # method: the CPU packages' RAPL energy counters
NOT_MEASURED = "not measured"  # the method of a result without numbers
METHOD_LABELS = {  # what each method is, for people: "Measured with <label>."
    NVML_ENERGY_COUNTER: "the NVIDIA driver's total-energy counter of the GPU (NVML)",
    NVML_SAMPLED_POWER: "the NVIDIA driver's power readings of the GPU (NVML), sampled 20 times a second",
    RAPL: "the CPU's RAPL energy counters (Linux powercap), all processor packages",
}
NOT_MEASURED_PREFIX = "not measured on this server: "  # how every reason for having no numbers begins

MIN_WINDOW_S = 1.0  # shortest span measured on its own, seconds; shorter epochs are measured together
IDLE_SECONDS = 2.0  # how long the idle baseline is measured, seconds
SAMPLE_INTERVAL_S = 0.05  # NVML power sampling period, seconds (20 Hz)
RAPL_POLL_S = 5.0  # RAPL read at least this often, seconds: a wrap takes minutes even at hundreds of watts
POWERCAP_ROOT = Path("/sys/class/powercap")  # Linux's powercap tree
RAPL_PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")  # top-level zones; "intel-rapl:0:0" (core, dram) are parts
RAPL_PACKAGE_NAME = "package"  # a top-level zone's `name` starts with it for a processor package ("psys" does not)
GPU_DEVICE = re.compile(r"gpu:(\d+)")
CPU_DEVICES = ("cpu:0", ALL_CPUS)  # one CPU, however many logical devices a backend makes of it

TextReader = Callable[[Path], str]  # reads a sysfs file; tests pass one that fails as a locked-down system does


class EnergyReadError(RuntimeError):
    """A source that worked when it was opened failed to give a reading; the message says which and why."""


@dataclass(frozen=True)
class EnergyUnavailable:
    """Why a device's energy cannot be measured on this server, in the user's words."""

    reason: str  # one sentence, "not measured on this server: ..."
    method: ClassVar[str] = NOT_MEASURED


def not_measured(why: str) -> EnergyUnavailable:
    """An `EnergyUnavailable` whose reason starts with `NOT_MEASURED_PREFIX`.

    Args:
        why: The end of the sentence, e.g. "no NVIDIA driver (NVML) on this machine."
    """
    return EnergyUnavailable(NOT_MEASURED_PREFIX + why)


class EnergySource(ABC):
    """A device's energy counter: joules used since the source was opened, never decreasing."""

    method: str  # a key of METHOD_LABELS, or several joined by " + " (`SummedEnergy`)

    def start(self) -> None:  # noqa: B027 (most sources have nothing to start)
        """Starts whatever must run in the background for readings to be right; `open_energy_source` calls it."""

    @abstractmethod
    def read_joules(self) -> float:
        """Joules the device used since the source was opened.

        Raises:
            EnergyReadError: The counter stopped answering.
        """

    def close(self) -> None:  # noqa: B027 (most sources hold nothing to release)
        """Stops background reading and releases the driver; the source gives no readings after it."""

    def __enter__(self) -> EnergySource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Ticker:
    """Calls `tick` every `interval_s` seconds on a daemon thread until it returns False or is stopped."""

    def __init__(self, tick: Callable[[], bool], interval_s: float, name: str) -> None:
        self._tick = tick
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s) and self._tick():
            pass


class _PolledSource(EnergySource):
    """A source that must also be read in the background: a power sampler, a counter that wraps around."""

    def __init__(self, interval_s: float) -> None:
        self._lock = threading.Lock()
        self._failure: EnergyReadError | None = None
        self._ticker = _Ticker(self._poll, interval_s, name=f"energy {self.method}")

    def start(self) -> None:
        """Starts reading in the background every `interval_s` seconds."""
        self._ticker.start()

    def read_joules(self) -> float:
        """Takes a reading now and returns the joules so far.

        Raises:
            EnergyReadError: This reading, or an earlier one in the background, failed.
        """
        if self._failure is not None:
            raise self._failure
        with self._lock:
            return self._update()

    def close(self) -> None:
        """Stops the background reading."""
        self._ticker.stop()

    @abstractmethod
    def _update(self) -> float:
        """Takes a reading, adds it to the total and returns the joules so far (called under the lock)."""

    def _poll(self) -> bool:
        try:
            self.read_joules()
        except EnergyReadError as error:
            self._failure = error
            return False
        return True


class NvmlEnergyCounter(EnergySource):
    """A GPU's total-energy counter (millijoules since the driver loaded), read through NVML."""

    method = NVML_ENERGY_COUNTER

    def __init__(self, nvml: Any, handle: Any) -> None:
        """Reads the counter once: the origin of later readings.

        Args:
            nvml: The `pynvml` module (or a stand-in), already initialised; `close()` shuts it down once.
            handle: The GPU's NVML handle.
        """
        self._nvml = nvml
        self._handle = handle
        self._origin_mj = self._read_millijoules()

    def read_joules(self) -> float:
        """Joules since the source was opened, from the GPU's own counter."""
        return (self._read_millijoules() - self._origin_mj) / 1000

    def close(self) -> None:
        """Releases NVML."""
        _shut_down(self._nvml)

    def _read_millijoules(self) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError as error:
            raise EnergyReadError(f"the GPU's energy counter stopped answering ({error}).") from error


class NvmlPowerSampler(_PolledSource):
    """A GPU's power draw sampled through NVML and added up over time (trapezoids between samples)."""

    method = NVML_SAMPLED_POWER

    def __init__(
        self,
        nvml: Any,
        handle: Any,
        *,
        interval_s: float = SAMPLE_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Takes the first sample: the origin of later readings. Sampling in the background begins at `start()`.

        Args:
            nvml: The `pynvml` module (or a stand-in), already initialised; `close()` shuts it down once.
            handle: The GPU's NVML handle.
            interval_s: Seconds between background samples.
            clock: Seconds, monotonic; `time.perf_counter` unless a test passes its own.
        """
        super().__init__(interval_s)
        self._nvml = nvml
        self._handle = handle
        self._clock = clock
        self._joules = 0.0
        self._last_sample = (clock(), self._read_watts())

    def close(self) -> None:
        """Stops sampling and releases NVML."""
        super().close()
        _shut_down(self._nvml)

    def _update(self) -> float:
        watts = self._read_watts()
        now = self._clock()
        last_time, last_watts = self._last_sample
        self._joules += (watts + last_watts) / 2 * (now - last_time)
        self._last_sample = (now, watts)
        return self._joules

    def _read_watts(self) -> float:
        try:
            return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000
        except self._nvml.NVMLError as error:
            raise EnergyReadError(f"the GPU's power readings stopped answering ({error}).") from error


@dataclass(frozen=True)
class RaplZone:
    """One RAPL zone of the powercap tree: a processor package's energy counter."""

    path: Path  # the zone's folder, e.g. /sys/class/powercap/intel-rapl:0
    name: str  # its `name` file, e.g. "package-0"
    max_energy_range_uj: int  # where `energy_uj` wraps around to 0, microjoules


class RaplCounters(_PolledSource):
    """The sum of RAPL package counters, corrected for wraparound, read from the powercap tree."""

    method = RAPL

    def __init__(
        self, zones: Sequence[RaplZone], *, read_text: TextReader = Path.read_text, poll_s: float = RAPL_POLL_S
    ) -> None:
        """Reads every counter once: the origin of later readings.

        Args:
            zones: The package zones (`rapl_package_zones`).
            read_text: Reads a sysfs file.
            poll_s: Seconds between background reads, well under a wrap's period.

        Raises:
            EnergyReadError: A counter cannot be read.
        """
        super().__init__(poll_s)
        self._zones = tuple(zones)
        self._read_text = read_text
        self._last_uj = [self._read_microjoules(zone) for zone in self._zones]
        self._total_uj = 0

    def _update(self) -> float:
        for index, zone in enumerate(self._zones):
            now_uj = self._read_microjoules(zone)
            self._total_uj += wrapped_delta(self._last_uj[index], now_uj, zone.max_energy_range_uj)
            self._last_uj[index] = now_uj
        return self._total_uj / 1e6

    def _read_microjoules(self, zone: RaplZone) -> int:
        try:
            return int(self._read_text(zone.path / "energy_uj"))
        except (OSError, ValueError) as error:
            raise EnergyReadError(f"the CPU's RAPL counter {zone.name} stopped answering ({error}).") from error


def wrapped_delta(before: int, now: int, wrap_at: int) -> int:
    """How far a counter that wraps around to 0 at `wrap_at` moved from `before` to `now` (at most one wrap).

    Args:
        before: The earlier reading.
        now: The later reading.
        wrap_at: The counter's range (RAPL's `max_energy_range_uj`).
    """
    return now - before if now >= before else now + wrap_at - before


class SummedEnergy(EnergySource):
    """Several devices' sources added together: every GPU of a data-parallel run ("gpu:all")."""

    def __init__(self, sources: Sequence[EnergySource]) -> None:
        """Sums `sources`, which it owns: `start()` and `close()` reach every one.

        Args:
            sources: One source per device, at least one.
        """
        self._sources = tuple(sources)
        self.method = " + ".join(sorted({source.method for source in self._sources}))

    def start(self) -> None:
        """Starts every source."""
        for source in self._sources:
            source.start()

    def read_joules(self) -> float:
        """Joules of all the devices together since they were opened."""
        return sum(source.read_joules() for source in self._sources)

    def close(self) -> None:
        """Closes every source."""
        for source in self._sources:
            source.close()


def open_energy_source(
    device: str,
    *,
    powercap_root: Path = POWERCAP_ROOT,
    nvml: ModuleType | None = None,
    environ: Mapping[str, str] | None = None,
    read_text: TextReader = Path.read_text,
) -> EnergySource | EnergyUnavailable:
    """Opens and starts the best energy reading this server has for a device, or says why there is none.

    Args:
        device: "cpu:0" (or "cpu:all"): the RAPL package counters; "gpu:N": GPU N in CUDA's numbering;
            "gpu:all": every GPU this process may use, added together.
        powercap_root: Linux's powercap tree.
        nvml: The `pynvml` module or a stand-in; imported when None.
        environ: The environment holding `CUDA_VISIBLE_DEVICES`; `os.environ` when None.
        read_text: Reads a sysfs file.

    Returns:
        A started source (close it when the run ends), or `EnergyUnavailable` with the reason.
    """
    name = device.strip().lower()
    if name in CPU_DEVICES:
        source = open_rapl(powercap_root, read_text)
    elif name == ALL_GPUS or GPU_DEVICE.fullmatch(name):
        source = open_nvml(name, nvml, os.environ if environ is None else environ)
    else:
        source = not_measured(f"the app has no energy reading for the device {device!r}.")
    if isinstance(source, EnergySource):
        source.start()
    return source


def open_rapl(
    powercap_root: Path = POWERCAP_ROOT, read_text: TextReader = Path.read_text
) -> RaplCounters | EnergyUnavailable:
    """The CPU packages' RAPL counters (not started), or why they cannot be read.

    Args:
        powercap_root: Linux's powercap tree.
        read_text: Reads a sysfs file.
    """
    try:
        zones = rapl_package_zones(powercap_root, read_text)
        return RaplCounters(zones, read_text=read_text) if zones else _no_rapl(powercap_root)
    except FileNotFoundError:
        return _no_rapl(powercap_root)
    except (OSError, ValueError, EnergyReadError) as error:
        return not_measured(_rapl_unreadable_reason(powercap_root, error))


def rapl_package_zones(powercap_root: Path = POWERCAP_ROOT, read_text: TextReader = Path.read_text) -> list[RaplZone]:
    """The processor packages' RAPL zones, each checked to be readable.

    Args:
        powercap_root: Linux's powercap tree.
        read_text: Reads a sysfs file.

    Raises:
        OSError: The tree or a package's files cannot be read (`PermissionError` where only root may).
        ValueError: A counter file holds something other than a whole number.
    """
    zones = []
    for path in sorted(powercap_root.iterdir()):
        if not RAPL_PACKAGE_ZONE.fullmatch(path.name):
            continue
        name = read_text(path / "name").strip()
        if name.startswith(RAPL_PACKAGE_NAME):
            wrap_at = int(read_text(path / "max_energy_range_uj"))
            int(read_text(path / "energy_uj"))  # the counter itself is what is often root-only
            zones.append(RaplZone(path, name, wrap_at))
    return zones


def _no_rapl(powercap_root: Path) -> EnergyUnavailable:
    return not_measured(f"this machine exposes no CPU energy counters (no RAPL package zones under {powercap_root}).")


def _rapl_unreadable_reason(powercap_root: Path, error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error, EnergyReadError) else error
    why = "permission denied" if isinstance(cause, PermissionError) else str(cause)
    return f"the CPU's RAPL energy counters ({powercap_root}) cannot be read by the app ({why})."


def open_nvml(device: str, nvml: ModuleType | None, environ: Mapping[str, str]) -> EnergySource | EnergyUnavailable:
    """A GPU's (or every GPU's) NVML energy source, not started, or why there is none.

    Args:
        device: "gpu:N" (CUDA's numbering) or "gpu:all".
        nvml: The `pynvml` module or a stand-in; imported when None.
        environ: The environment holding `CUDA_VISIBLE_DEVICES`.
    """
    nvml = nvml if nvml is not None else _import_nvml()
    if nvml is None:
        return not_measured("the NVIDIA management library (nvidia-ml-py) is not installed.")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return not_measured("no NVIDIA driver (NVML) on this machine.")
    try:
        return _open_gpus(device, nvml, environ)
    except nvml.NVMLError as error:
        return not_measured(f"the NVIDIA driver failed while listing the GPUs ({error}).")
    finally:
        _shut_down(nvml)  # each source holds its own NVML initialisation


def _open_gpus(device: str, nvml: Any, environ: Mapping[str, str]) -> EnergySource | EnergyUnavailable:
    handles = [nvml.nvmlDeviceGetHandleByIndex(index) for index in range(nvml.nvmlDeviceGetCount())]
    uuids = [_text(nvml.nvmlDeviceGetUUID(handle)) for handle in handles]
    cuda_order = [handles[index] for index in visible_gpu_order(environ.get(VISIBLE_DEVICES_ENV), uuids)]
    if device == ALL_GPUS:
        chosen = cuda_order
    else:
        cuda_index = int(device.partition(":")[2])
        chosen = cuda_order[cuda_index : cuda_index + 1]
    if not chosen:
        return not_measured(f"{device} is not among the GPUs the app may use.")
    return _combine([open_nvml_gpu(nvml, handle) for handle in chosen])


def open_nvml_gpu(nvml: Any, handle: Any) -> NvmlEnergyCounter | NvmlPowerSampler | EnergyUnavailable:
    """One GPU's energy counter if it has one, else its sampled power, else why neither (not started).

    Args:
        nvml: The `pynvml` module or a stand-in, initialised by the caller; the source initialises it once more
            and releases that at `close()`.
        handle: The GPU's NVML handle.
    """
    nvml.nvmlInit()
    try:
        return NvmlEnergyCounter(nvml, handle)
    except EnergyReadError:
        pass  # no energy counter before Volta, nor in some virtual GPUs: its power is the next best reading
    try:
        return NvmlPowerSampler(nvml, handle)
    except EnergyReadError:
        _shut_down(nvml)
        return not_measured("this GPU reports neither its energy nor its power.")


def _combine(opened: Sequence[EnergySource | EnergyUnavailable]) -> EnergySource | EnergyUnavailable:
    sources = [item for item in opened if isinstance(item, EnergySource)]
    missing = [item for item in opened if isinstance(item, EnergyUnavailable)]
    if missing:
        for source in sources:
            source.close()
        return missing[0]  # a sum without one GPU would pass for all of them
    return sources[0] if len(sources) == 1 else SummedEnergy(sources)


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _shut_down(nvml: Any) -> None:
    with contextlib.suppress(nvml.NVMLError):  # nothing is left to release when shutting down fails
        nvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def measure_idle_watts(
    source: EnergySource,
    seconds: float = IDLE_SECONDS,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """The device's draw while the app does nothing on it: the baseline shown apart from a run's energy.

    It includes whatever else the machine runs on that device at the time; measure it just before training.

    Args:
        source: A started source.
        seconds: How long to measure; at least `MIN_WINDOW_S` for a counter that ticks in steps.
        sleep: Waits; `time.sleep` unless a test passes its own.
        clock: Seconds, monotonic.

    Returns:
        Average watts over the span.

    Raises:
        EnergyReadError: The source stopped answering.
        ValueError: No time passed on the clock.
    """
    start_time, start_joules = clock(), source.read_joules()
    sleep(seconds)
    end_time, end_joules = clock(), source.read_joules()
    if end_time <= start_time:
        raise ValueError(f"the idle baseline needs time to pass; the clock moved {end_time - start_time} s.")
    return (end_joules - start_joules) / (end_time - start_time)


def energy_windows(mark_times: Sequence[float], min_window_s: float = MIN_WINDOW_S) -> list[tuple[int, int]]:
    """Groups consecutive epochs into measuring windows of at least `min_window_s` seconds.

    Windows are filled in order: one closes as soon as it spans `min_window_s`. Epochs left at the end that
    do not fill a window join the window before them; when the whole run is shorter than `min_window_s`, it
    is one window.

    Args:
        mark_times: Seconds at the start and at each epoch's end: n + 1 times for n epochs, non-decreasing.
        min_window_s: The shortest span measured on its own.

    Returns:
        Half-open epoch ranges (first, end), in order, covering every epoch once; empty without epochs.
    """
    epochs = len(mark_times) - 1
    windows: list[tuple[int, int]] = []
    first = 0
    for end in range(1, epochs + 1):
        if mark_times[end] - mark_times[first] >= min_window_s:
            windows.append((first, end))
            first = end
    if first < epochs:
        windows[-1:] = [(windows[-1][0] if windows else first, epochs)]
    return windows


def epoch_energy(marks: Sequence[tuple[float, float]], min_window_s: float = MIN_WINDOW_S) -> list[float]:
    """Joules per epoch from cumulative readings, short epochs measured together (`energy_windows`).

    A window's joules are the counter's change across it, split among its epochs in proportion to their
    durations (evenly when no time passed), so the epochs add up to the whole run exactly.

    Args:
        marks: (seconds, cumulative joules) at the start and at each epoch's end: n + 1 marks for n epochs.
        min_window_s: The shortest span measured on its own.

    Raises:
        ValueError: No marks, or times that go backwards.
    """
    _check_marks(marks)
    times = [mark_time for mark_time, _ in marks]
    per_epoch: list[float] = []
    for first, end in energy_windows(times, min_window_s):
        joules = marks[end][1] - marks[first][1]
        durations = [times[index + 1] - times[index] for index in range(first, end)]
        per_epoch.extend(_split(joules, durations))
    return per_epoch


def _check_marks(marks: Sequence[tuple[float, float]]) -> None:
    if not marks:
        raise ValueError("energy needs at least the mark at the start of the run.")
    if any(later[0] < earlier[0] for earlier, later in zip(marks, marks[1:], strict=False)):
        raise ValueError("energy marks must be in time order.")


def _split(joules: float, durations: Sequence[float]) -> list[float]:
    total = sum(durations)
    if total <= 0:
        return [joules / len(durations)] * len(durations)
    return [joules * duration / total for duration in durations]


@dataclass(frozen=True)
class EnergyResult:
    """A device run's energy as measured, or the reason it was not (then no numbers at all)."""

    method: str  # a key of METHOD_LABELS (several joined by " + " for "gpu:all"), or NOT_MEASURED
    reason: str = ""  # why not measured, "not measured on this server: ..."; empty when measured
    joules_per_epoch: tuple[float, ...] = ()  # J, one per finished epoch
    run_joules: float | None = None  # J, all finished epochs together
    run_seconds: float | None = None  # s, from start() to the last mark()
    idle_watts: float | None = None  # W, the baseline measured before training; None if not measured
    above_idle_joules: float | None = None  # J, run_joules - idle_watts * run_seconds, at least 0
    window_s: float = MIN_WINDOW_S  # s, the shortest span measured on its own
    windows: tuple[tuple[int, int], ...] = ()  # half-open epoch ranges measured together (`energy_windows`)

    @property
    def measured(self) -> bool:
        """Whether the result holds readings."""
        return self.method != NOT_MEASURED

    @property
    def merged(self) -> bool:
        """Whether some epochs were too short to measure alone and share a window."""
        return any(end - first > 1 for first, end in self.windows)


class EnergyMeter:
    """Marks a device run's epochs on an energy source and turns the marks into an `EnergyResult`.

    Call `start()` right before the first epoch and `mark()` right after each epoch's timing ends (the device
    synchronised). A source that fails mid-run makes the whole result not measured.
    """

    def __init__(
        self,
        source: EnergySource | EnergyUnavailable,
        *,
        idle_watts: float | None = None,
        min_window_s: float = MIN_WINDOW_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Prepares to measure; reads nothing yet.

        Args:
            source: An opened source (the caller closes it), or why there is none.
            idle_watts: The baseline from `measure_idle_watts`; None when it was not measured.
            min_window_s: The shortest span measured on its own.
            clock: Seconds, monotonic; the engine's epoch clock.
        """
        self._source = source
        self._idle_watts = idle_watts
        self._min_window_s = min_window_s
        self._clock = clock
        self._marks: list[tuple[float, float]] = []
        self._failure = source.reason if isinstance(source, EnergyUnavailable) else ""

    def start(self) -> None:
        """Takes the reading at the start of the first epoch (forgetting any earlier marks)."""
        self._marks.clear()
        self._take_mark()

    def mark(self) -> None:
        """Takes the reading at the end of an epoch.

        Raises:
            RuntimeError: `start()` was not called first.
        """
        if not self._marks and not self._failure:
            raise RuntimeError("EnergyMeter.mark() needs start() first.")
        self._take_mark()

    def result(self) -> EnergyResult:
        """The run's energy from the marks so far; not measured with the reason when there are no readings."""
        if self._failure:
            return EnergyResult(NOT_MEASURED, reason=self._failure)
        if len(self._marks) < 2:
            return EnergyResult(NOT_MEASURED, reason=NOT_MEASURED_PREFIX + "no epoch finished.")
        return self._measured_result()

    def _take_mark(self) -> None:
        if self._failure:
            return
        try:
            self._marks.append((self._clock(), self._source.read_joules()))
        except EnergyReadError as error:
            self._failure = NOT_MEASURED_PREFIX + str(error)

    def _measured_result(self) -> EnergyResult:
        (start_time, start_joules), (end_time, end_joules) = self._marks[0], self._marks[-1]
        run_seconds, run_joules = end_time - start_time, end_joules - start_joules
        above_idle = None if self._idle_watts is None else max(0.0, run_joules - self._idle_watts * run_seconds)
        return EnergyResult(
            method=self._source.method,
            joules_per_epoch=tuple(epoch_energy(self._marks, self._min_window_s)),
            run_joules=run_joules,
            run_seconds=run_seconds,
            idle_watts=self._idle_watts,
            above_idle_joules=above_idle,
            window_s=self._min_window_s,
            windows=tuple(energy_windows([mark_time for mark_time, _ in self._marks], self._min_window_s)),
        )


def describe_method(method: str) -> str:
    """What a method is, for people: "the NVIDIA driver's total-energy counter of the GPU (NVML)".

    Args:
        method: A key of METHOD_LABELS, several joined by " + ", or NOT_MEASURED.
    """
    if method == NOT_MEASURED:
        return NOT_MEASURED
    return " and ".join(METHOD_LABELS.get(part, part) for part in method.split(" + "))


def energy_note(result: EnergyResult) -> str:
    """One or more sentences saying how a result was measured, or why it was not.

    Args:
        result: What `EnergyMeter.result()` returned.
    """
    if not result.measured:
        return result.reason
    sentences = [f"Measured with {describe_method(result.method)}."]
    if result.idle_watts is None:
        sentences.append("The idle draw was not measured.")
    else:
        sentences.append(
            f"Idle draw {result.idle_watts:.1f} W, measured apart before training; "
            f"{result.above_idle_joules:.0f} J of the run were above it."
        )
    if result.merged:
        sentences.append(
            f"Epochs shorter than {result.window_s:g} s were measured together and their energy split by time."
        )
    return " ".join(sentences)


def energy_fields(result: EnergyResult) -> dict[str, Any]:
    """A result as plain, JSON-ready data to store with a run; no numbers when it was not measured.

    Args:
        result: What `EnergyMeter.result()` returned.

    Returns:
        `energy_method`, `energy_j` (the run), `energy_epoch_j` (a list), `energy_above_idle_j`, `idle_w`
        and `energy_note` (`energy_note`); the numbers are None when not measured.
    """
    return {
        "energy_method": result.method,
        "energy_j": result.run_joules,
        "energy_epoch_j": list(result.joules_per_epoch) if result.measured else None,
        "energy_above_idle_j": result.above_idle_joules,
        "idle_w": result.idle_watts,
        "energy_note": energy_note(result),
    }


# --- what stored runs say about their energy (the Results page, the Train page's table) ---------------

ENERGY_TABLE_COLUMNS = ("series", "device", "energy_j", "steady_epoch_j", "above_idle_j", "idle_w", "how")
NOT_RECORDED = "not recorded (stored before energy was measured)"  # runs of older versions of the app


def run_energy_text(result: Mapping[str, Any]) -> str:
    """One run's energy in a few words: "957 J (NVML energy counter)", or why it was not measured.

    Args:
        result: A stored run's result (`DeviceRun.to_dict()`).
    """
    method = result.get("energy_method") or ""
    if not method:
        return NOT_RECORDED
    joules = result.get("energy_j")
    if method == NOT_MEASURED or joules is None:
        return result.get("energy_note") or f"{NOT_MEASURED_PREFIX}."
    return f"{joules:,.0f} J ({method})"


def energy_table(runs: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """One row per compared run: joules of the run, of its steady epochs (median), above idle, idle watts, how.

    Args:
        runs: Stored runs (`RunStore.runs()` rows with `device` and `result`).
        names: Each run's name, as the charts name it.

    Returns:
        Columns `ENERGY_TABLE_COLUMNS`; the numbers are NaN where nothing was measured, and `how` says why.
    """
    rows = []
    for name, device, result in zip(names, runs["device"], runs["result"], strict=True):
        result = result if isinstance(result, Mapping) else {}
        per_epoch = result.get("energy_epoch_j") or []
        rows.append(
            {
                "series": name,
                "device": str(device),
                "energy_j": result.get("energy_j"),
                "steady_epoch_j": statistics.median(per_epoch[1:]) if len(per_epoch) > 1 else None,
                "above_idle_j": result.get("energy_above_idle_j"),
                "idle_w": result.get("idle_w"),
                "how": result.get("energy_note") or NOT_RECORDED,
            }
        )
    return pd.DataFrame(rows, columns=list(ENERGY_TABLE_COLUMNS)).astype(
        {"energy_j": float, "steady_epoch_j": float, "above_idle_j": float, "idle_w": float}
    )


def energy_caption(table: pd.DataFrame) -> str:
    """Which measured run used the least energy, or that none could be measured here."""
    measured = table[table["energy_j"].notna()]
    if measured.empty:
        return "No compared run has an energy reading: " + (table["how"].iloc[0] if len(table) else NOT_RECORDED)
    least = measured.loc[measured["energy_j"].idxmin()]
    text = f"Least energy: {least['series']}, {least['energy_j']:,.0f} J for its epochs (idle draw included)."
    unmeasured = table[table["energy_j"].isna()]
    if not unmeasured.empty:
        text += f" Not measured: {', '.join(unmeasured['series'])} (see How)."
    return text
