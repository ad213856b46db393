"""Tests of lib.energy: NVML and RAPL readings (faked), the unreadable counters, windows, idle baseline, meter."""

from __future__ import annotations

import json
import math
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lib.energy as energy
from lib.energy import (
    NOT_MEASURED,
    NOT_MEASURED_PREFIX,
    NVML_ENERGY_COUNTER,
    NVML_SAMPLED_POWER,
    RAPL,
    EnergyMeter,
    EnergyReadError,
    EnergySource,
    EnergyUnavailable,
    NvmlPowerSampler,
    RaplCounters,
    SummedEnergy,
    describe_method,
    energy_fields,
    energy_windows,
    epoch_energy,
    measure_idle_watts,
    open_energy_source,
    rapl_package_zones,
    wrapped_delta,
)

NO_CUDA_SETTING: dict[str, str] = {}  # every GPU visible, in the driver's order


# Fake NVML -------------------------------------------------------------------------------------------------------


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class FakeNVMLNotSupported(FakeNVMLError):
    """Stands in for pynvml.NVMLError_NotSupported."""


@dataclass
class FakeGpu:
    """One GPU of the fake driver; None for a reading it does not support."""

    uuid: str
    energy_mj: int | None = 1_000_000
    power_mw: int | None = 150_000
    broken: bool = False  # every reading fails from now on, as when the GPU falls off the bus


def fake_pynvml(gpus: list[FakeGpu], *, fail_init: bool = False) -> types.ModuleType:
    """A stand-in for `pynvml` over `gpus` (handles are the GPUs themselves); counts inits and shutdowns."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError
    module.NVMLError_NotSupported = FakeNVMLNotSupported
    module.inits = 0
    module.shutdowns = 0

    def init():
        if fail_init:
            raise FakeNVMLError("Driver Not Loaded")
        module.inits += 1

    def shut_down():
        module.shutdowns += 1

    def reading(attribute):
        def read(gpu):
            if gpu.broken:
                raise FakeNVMLError("GPU is lost")
            if getattr(gpu, attribute) is None:
                raise FakeNVMLNotSupported("Not Supported")
            return getattr(gpu, attribute)

        return read

    module.nvmlInit = init
    module.nvmlShutdown = shut_down
    module.nvmlDeviceGetCount = lambda: len(gpus)
    module.nvmlDeviceGetHandleByIndex = lambda index: gpus[index]
    module.nvmlDeviceGetUUID = lambda gpu: gpu.uuid.encode()
    module.nvmlDeviceGetTotalEnergyConsumption = reading("energy_mj")
    module.nvmlDeviceGetPowerUsage = reading("power_mw")
    return module


def open_gpu(device, nvml, environ=NO_CUDA_SETTING):
    return open_energy_source(device, nvml=nvml, environ=environ)


def test_a_gpu_with_an_energy_counter_is_read_from_it():
    gpu = FakeGpu("GPU-aaaa")
    nvml = fake_pynvml([gpu])
    source = open_gpu("gpu:0", nvml)
    gpu.energy_mj += 12_500
    assert source.method == NVML_ENERGY_COUNTER
    assert source.read_joules() == pytest.approx(12.5)
    source.close()
    assert nvml.inits == nvml.shutdowns == 2  # the listing's and the source's own


def test_a_gpu_without_an_energy_counter_falls_back_to_sampled_power():
    nvml = fake_pynvml([FakeGpu("GPU-aaaa", energy_mj=None, power_mw=200_000)])
    source = open_gpu("gpu:0", nvml)
    try:
        assert source.method == NVML_SAMPLED_POWER
        time.sleep(0.15)  # a few background samples
        assert source.read_joules() > 0
    finally:
        source.close()
    assert nvml.inits == nvml.shutdowns


def test_a_gpu_reporting_neither_energy_nor_power_is_not_measured():
    nvml = fake_pynvml([FakeGpu("GPU-aaaa", energy_mj=None, power_mw=None)])
    assert open_gpu("gpu:0", nvml) == EnergyUnavailable(
        "not measured on this server: this GPU reports neither its energy nor its power."
    )
    assert nvml.inits == nvml.shutdowns


def test_no_driver_is_not_measured():
    nvml = fake_pynvml([FakeGpu("GPU-aaaa")], fail_init=True)
    assert open_gpu("gpu:0", nvml).reason == "not measured on this server: no NVIDIA driver (NVML) on this machine."


def test_without_the_nvml_library_it_is_not_measured(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    result = open_energy_source("gpu:0", environ=NO_CUDA_SETTING)
    assert isinstance(result, EnergyUnavailable)
    assert "nvidia-ml-py" in result.reason


def test_gpus_are_numbered_as_cuda_numbers_them():
    first, second = FakeGpu("GPU-aaaa", energy_mj=0), FakeGpu("GPU-bbbb", energy_mj=0)
    nvml = fake_pynvml([first, second])
    source = open_gpu("gpu:0", nvml, environ={"CUDA_VISIBLE_DEVICES": "1"})
    second.energy_mj += 3_000
    first.energy_mj += 99_000
    assert source.read_joules() == pytest.approx(3.0)
    source.close()
    assert open_gpu("gpu:1", nvml, environ={"CUDA_VISIBLE_DEVICES": "1"}) == EnergyUnavailable(
        "not measured on this server: gpu:1 is not among the GPUs the app may use."
    )


def test_all_gpus_are_added_together():
    first, second = FakeGpu("GPU-aaaa"), FakeGpu("GPU-bbbb")
    nvml = fake_pynvml([first, second])
    with open_gpu("gpu:all", nvml) as source:
        first.energy_mj += 1_000
        second.energy_mj += 2_000
        assert isinstance(source, SummedEnergy)
        assert source.method == NVML_ENERGY_COUNTER
        assert source.read_joules() == pytest.approx(3.0)
    assert nvml.inits == nvml.shutdowns


def test_all_gpus_are_not_measured_when_one_cannot_be_read():
    nvml = fake_pynvml([FakeGpu("GPU-aaaa"), FakeGpu("GPU-bbbb", energy_mj=None, power_mw=None)])
    result = open_gpu("gpu:all", nvml)
    assert isinstance(result, EnergyUnavailable)
    assert "neither its energy nor its power" in result.reason
    assert nvml.inits == nvml.shutdowns  # the readable GPU's source was closed


@pytest.mark.parametrize("device", ["tpu:0", "mps:0", "cpu:1", "gpu:x"])
def test_other_devices_are_not_measured(device, tmp_path):
    result = open_energy_source(device, powercap_root=tmp_path, nvml=fake_pynvml([]))
    assert result == EnergyUnavailable(
        f"not measured on this server: the app has no energy reading for the device {device!r}."
    )


def test_the_power_sampler_adds_up_trapezoids():
    gpu = FakeGpu("GPU-aaaa", energy_mj=None, power_mw=100_000)
    clock = FakeClock()
    sampler = NvmlPowerSampler(fake_pynvml([gpu]), gpu, clock=clock)
    clock.now = 2.0
    assert sampler.read_joules() == pytest.approx(200.0)  # 100 W for 2 s
    gpu.power_mw = 300_000
    clock.now = 3.0
    assert sampler.read_joules() == pytest.approx(400.0)  # + (100 W + 300 W) / 2 for 1 s


def test_a_power_reading_that_fails_in_the_background_fails_the_next_read():
    gpu = FakeGpu("GPU-aaaa", energy_mj=None)
    sampler = NvmlPowerSampler(fake_pynvml([gpu]), gpu, interval_s=0.005)
    sampler.start()
    gpu.broken = True
    deadline = time.monotonic() + 5
    while sampler._failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    gpu.broken = False  # the error was kept: a gap in the samples cannot be filled
    with pytest.raises(EnergyReadError, match="power readings stopped answering"):
        sampler.read_joules()
    sampler.close()


# Fake powercap trees ---------------------------------------------------------------------------------------------

WRAP_AT = 262_143_328_850  # a typical max_energy_range_uj


def write_zone(root: Path, zone: str, name: str, energy_uj: int, wrap_at: int = WRAP_AT) -> Path:
    path = root / zone
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{wrap_at}\n")
    return path


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path) -> Path:
    """Two packages, and zones that are not packages: a core subzone, psys, the MMIO copy of package 0."""
    write_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    write_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    write_zone(tmp_path, "intel-rapl:0:0", "core", 400_000)
    write_zone(tmp_path, "intel-rapl:2", "psys", 9_000_000)
    write_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 1_000_000)
    return tmp_path


def test_rapl_finds_only_the_package_zones(powercap):
    zones = rapl_package_zones(powercap)
    assert [(zone.path.name, zone.name, zone.max_energy_range_uj) for zone in zones] == [
        ("intel-rapl:0", "package-0", WRAP_AT),
        ("intel-rapl:1", "package-1", WRAP_AT),
    ]


def test_rapl_adds_the_packages_and_ignores_the_rest(powercap):
    source = open_energy_source("cpu:0", powercap_root=powercap)
    try:
        assert source.method == RAPL
        set_energy(powercap / "intel-rapl:0", 3_000_000)  # +2 J
        set_energy(powercap / "intel-rapl:1", 6_500_000)  # +1.5 J
        set_energy(powercap / "intel-rapl:0:0", 90_000_000)  # inside package 0: already counted there
        set_energy(powercap / "intel-rapl:2", 90_000_000)  # the platform, not the CPU
        assert source.read_joules() == pytest.approx(3.5)
    finally:
        source.close()


def test_rapl_counts_across_a_wraparound(tmp_path):
    zone = write_zone(tmp_path, "intel-rapl:0", "package-0", 999_900, wrap_at=1_000_000)
    source = RaplCounters(rapl_package_zones(tmp_path))
    set_energy(zone, 50)
    assert source.read_joules() == pytest.approx(150e-6)
    set_energy(zone, 900_050)
    assert source.read_joules() == pytest.approx(900_150e-6)


def test_wrapped_delta():
    assert wrapped_delta(10, 25, 100) == 15
    assert wrapped_delta(90, 5, 100) == 15


def test_rapl_is_read_in_the_background_until_closed(powercap):
    reads = []

    def counting_reader(path: Path) -> str:
        reads.append(path)
        return path.read_text()

    source = RaplCounters(rapl_package_zones(powercap), read_text=counting_reader, poll_s=0.005)
    source.start()
    deadline = time.monotonic() + 5
    while len(reads) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    source.close()
    after_close = len(reads)
    time.sleep(0.05)
    assert after_close >= 10
    assert len(reads) == after_close


PERMISSION_REASON = (
    "not measured on this server: the CPU's RAPL energy counters ({}) cannot be read by the app (permission denied)."
)


def test_rapl_counters_only_root_may_read_are_not_measured(powercap):
    def locked_down_reader(path: Path) -> str:
        if path.name == "energy_uj":  # as on Linux since 2020: 0400, root only
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    result = open_energy_source("cpu:0", powercap_root=powercap, read_text=locked_down_reader)
    assert result == EnergyUnavailable(PERMISSION_REASON.format(powercap))


def test_a_machine_without_powercap_is_not_measured(tmp_path):
    result = open_energy_source("cpu:0", powercap_root=tmp_path / "missing")
    assert result.reason.startswith("not measured on this server: this machine exposes no CPU energy counters")


def test_a_powercap_tree_without_packages_is_not_measured(tmp_path):
    write_zone(tmp_path, "intel-rapl:0", "psys", 0)
    result = open_energy_source("cpu:0", powercap_root=tmp_path)
    assert "no RAPL package zones" in result.reason


def test_a_counter_holding_garbage_is_not_measured(tmp_path):
    zone = write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (zone / "energy_uj").write_text("n/a\n")
    result = open_energy_source("cpu:0", powercap_root=tmp_path)
    assert result.reason.startswith("not measured on this server: the CPU's RAPL energy counters")


def test_a_rapl_counter_that_stops_answering_fails_the_read(powercap):
    fail = []

    def reader(path: Path) -> str:
        if fail:
            raise OSError(5, "Input/output error")
        return path.read_text()

    source = RaplCounters(rapl_package_zones(powercap), read_text=reader)
    fail.append(True)
    with pytest.raises(EnergyReadError, match="package-0 stopped answering"):
        source.read_joules()


# Windows and epochs ----------------------------------------------------------------------------------------------


def test_short_epochs_share_a_window_split_by_time():
    marks = [(0.0, 0.0), (0.2, 10.0), (0.4, 20.0), (1.5, 100.0), (3.0, 200.0)]
    assert energy_windows([time for time, _ in marks], 1.0) == [(0, 3), (3, 4)]
    assert epoch_energy(marks, 1.0) == pytest.approx([100 * 0.2 / 1.5, 100 * 0.2 / 1.5, 100 * 1.1 / 1.5, 100.0])


def test_long_epochs_are_measured_alone():
    marks = [(0.0, 0.0), (2.0, 50.0), (5.0, 80.0)]
    assert energy_windows([0.0, 2.0, 5.0], 1.0) == [(0, 1), (1, 2)]
    assert epoch_energy(marks, 1.0) == pytest.approx([50.0, 30.0])


def test_a_short_last_epoch_joins_the_window_before_it():
    marks = [(0.0, 0.0), (2.0, 50.0), (2.3, 60.0)]
    assert energy_windows([0.0, 2.0, 2.3], 1.0) == [(0, 2)]
    assert epoch_energy(marks, 1.0) == pytest.approx([60 * 2 / 2.3, 60 * 0.3 / 2.3])


def test_a_run_shorter_than_the_window_is_one_window():
    assert energy_windows([0.0, 0.1, 0.2], 1.0) == [(0, 2)]
    assert epoch_energy([(0.0, 0.0), (0.1, 1.0), (0.2, 3.0)], 1.0) == pytest.approx([1.5, 1.5])


def test_epochs_that_took_no_time_share_evenly():
    assert epoch_energy([(5.0, 0.0), (5.0, 4.0), (5.0, 4.0)], 1.0) == pytest.approx([2.0, 2.0])


def test_no_epochs_no_energy():
    assert energy_windows([1.0], 1.0) == []
    assert epoch_energy([(1.0, 7.0)]) == []


@pytest.mark.parametrize("marks", [[], [(1.0, 0.0), (0.5, 1.0)]], ids=["no marks", "time goes back"])
def test_bad_marks_are_refused(marks):
    with pytest.raises(ValueError):
        epoch_energy(marks)


@given(
    steps=st.lists(
        st.tuples(st.floats(0, 5, allow_nan=False), st.floats(0, 1000, allow_nan=False)), min_size=1, max_size=30
    ),
    min_window_s=st.floats(0.01, 10, allow_nan=False),
)
def test_windows_conserve_the_energy_and_span_the_minimum(steps, min_window_s):
    times, joules = [0.0], [0.0]
    for duration, used in steps:
        times.append(times[-1] + duration)
        joules.append(joules[-1] + used)
    windows = energy_windows(times, min_window_s)
    per_epoch = epoch_energy(list(zip(times, joules, strict=True)), min_window_s)

    assert sum(per_epoch) == pytest.approx(joules[-1], rel=1e-9, abs=1e-6)
    assert len(per_epoch) == len(steps)
    assert all(value >= 0 for value in per_epoch)
    assert [first for first, _ in windows] == [0] + [end for _, end in windows[:-1]]  # in order, no gaps
    assert windows[-1][1] == len(steps)
    if len(windows) > 1 or times[-1] >= min_window_s:
        assert all(times[end] - times[first] >= min_window_s for first, end in windows)


# Idle baseline and the meter -------------------------------------------------------------------------------------


class FakeClock:
    """Seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SteadySource(EnergySource):
    """Draws `watts` on a fake clock; can be made to fail."""

    method = NVML_ENERGY_COUNTER

    def __init__(self, clock: FakeClock, watts: float) -> None:
        self.clock = clock
        self.watts = watts
        self.joules = 0.0
        self.at = clock.now
        self.failing = False
        self.closed = False

    def read_joules(self) -> float:
        if self.failing:
            raise EnergyReadError("the GPU's energy counter stopped answering (GPU is lost).")
        self.joules += self.watts * (self.clock.now - self.at)
        self.at = self.clock.now
        return self.joules

    def close(self) -> None:
        self.closed = True


def run_epochs(meter: EnergyMeter, clock: FakeClock, source: SteadySource, epochs: list[tuple[float, float]]) -> None:
    """Starts the meter and runs (seconds, watts) epochs, marking each."""
    meter.start()
    for seconds, watts in epochs:
        source.watts = watts
        clock.now += seconds
        meter.mark()


def test_idle_watts_are_the_draw_over_the_wait():
    clock = FakeClock()
    source = SteadySource(clock, watts=42.0)
    waits = []

    def fake_sleep(seconds):
        waits.append(seconds)
        clock.now += seconds + 0.01  # sleeping overshoots a little

    assert measure_idle_watts(source, 2.0, sleep=fake_sleep, clock=clock) == pytest.approx(42.0)
    assert waits == [2.0]


def test_idle_watts_need_time_to_pass():
    clock = FakeClock()
    with pytest.raises(ValueError, match="needs time to pass"):
        measure_idle_watts(SteadySource(clock, 1.0), 2.0, sleep=lambda seconds: None, clock=clock)


def test_the_meter_measures_each_epoch_and_the_run():
    clock = FakeClock()
    source = SteadySource(clock, watts=0.0)
    meter = EnergyMeter(source, idle_watts=10.0, clock=clock)
    run_epochs(meter, clock, source, [(2.0, 100.0), (3.0, 50.0)])
    result = meter.result()
    assert result.method == NVML_ENERGY_COUNTER
    assert result.joules_per_epoch == pytest.approx((200.0, 150.0))
    assert result.run_joules == pytest.approx(350.0)
    assert result.run_seconds == pytest.approx(5.0)
    assert result.above_idle_joules == pytest.approx(300.0)
    assert not result.merged

    fields = energy_fields(result)
    assert json.loads(json.dumps(fields)) == fields
    assert fields["energy_method"] == NVML_ENERGY_COUNTER
    assert fields["energy_j"] == pytest.approx(350.0)
    assert fields["energy_epoch_j"] == pytest.approx([200.0, 150.0])
    assert fields["idle_w"] == 10.0
    assert fields["energy_note"].startswith("Measured with the NVIDIA driver's total-energy counter")
    assert "Idle draw 10.0 W" in fields["energy_note"]
    assert "measured together" not in fields["energy_note"]


def test_the_meter_merges_short_epochs_and_says_so():
    clock = FakeClock()
    source = SteadySource(clock, watts=0.0)
    meter = EnergyMeter(source, clock=clock)
    run_epochs(meter, clock, source, [(0.25, 100.0), (0.25, 300.0), (0.5, 100.0)])
    result = meter.result()
    assert result.merged
    assert result.windows == ((0, 3),)
    assert sum(result.joules_per_epoch) == pytest.approx(150.0)
    assert result.joules_per_epoch == pytest.approx((37.5, 37.5, 75.0))  # split by time, not by the true draw
    note = energy_fields(result)["energy_note"]
    assert "shorter than 1 s were measured together" in note
    assert "idle draw was not measured" in note
    assert result.above_idle_joules is None


def test_above_idle_is_never_negative():
    clock = FakeClock()
    source = SteadySource(clock, watts=0.0)
    meter = EnergyMeter(source, idle_watts=500.0, clock=clock)
    run_epochs(meter, clock, source, [(2.0, 100.0)])
    assert meter.result().above_idle_joules == 0.0


def test_an_unavailable_source_gives_no_numbers():
    reason = "not measured on this server: no NVIDIA driver (NVML) on this machine."
    meter = EnergyMeter(EnergyUnavailable(reason), idle_watts=None)
    meter.start()
    meter.mark()
    result = meter.result()
    assert (result.method, result.reason, result.measured) == (NOT_MEASURED, reason, False)
    assert energy_fields(result) == {
        "energy_method": NOT_MEASURED,
        "energy_j": None,
        "energy_epoch_j": None,
        "energy_above_idle_j": None,
        "idle_w": None,
        "energy_note": reason,
    }


def test_a_source_failing_mid_run_gives_no_numbers():
    clock = FakeClock()
    source = SteadySource(clock, watts=100.0)
    meter = EnergyMeter(source, idle_watts=5.0, clock=clock)
    meter.start()
    clock.now = 2.0
    meter.mark()
    source.failing = True
    clock.now = 4.0
    meter.mark()
    result = meter.result()
    assert result.method == NOT_MEASURED
    assert result.reason == NOT_MEASURED_PREFIX + "the GPU's energy counter stopped answering (GPU is lost)."
    assert result.run_joules is None
    assert result.joules_per_epoch == ()


def test_a_run_without_a_finished_epoch_is_not_measured():
    clock = FakeClock()
    meter = EnergyMeter(SteadySource(clock, 100.0), clock=clock)
    meter.start()
    assert meter.result().reason == "not measured on this server: no epoch finished."


def test_marking_before_starting_is_a_mistake():
    meter = EnergyMeter(SteadySource(FakeClock(), 1.0))
    with pytest.raises(RuntimeError, match="start"):
        meter.mark()


def test_a_sum_of_different_methods_names_both():
    summed = SummedEnergy([SteadySource(FakeClock(), 1.0), ZeroSource(RAPL)])
    assert summed.method == f"{NVML_ENERGY_COUNTER} + {RAPL}"
    assert describe_method(summed.method) == (
        "the NVIDIA driver's total-energy counter of the GPU (NVML) and "
        "the CPU's RAPL energy counters (Linux powercap), all processor packages"
    )
    summed.close()


class ZeroSource(EnergySource):
    """A source reading nothing, under any method name."""

    def __init__(self, method: str) -> None:
        self.method = method

    def read_joules(self) -> float:
        return 0.0


# --- what stored runs say about their energy -----------------------------------------------------------


def stored_result(**energy) -> dict:
    return {"device": "gpu:0", **energy}


def test_a_runs_energy_in_words_says_how_or_why_not():
    assert energy.run_energy_text(stored_result(energy_method="rapl", energy_j=1234.4)) == "1,234 J (rapl)"
    note = "not measured on this server: no RAPL."
    assert energy.run_energy_text(stored_result(energy_method=energy.NOT_MEASURED, energy_note=note)) == note
    assert energy.run_energy_text(stored_result()) == energy.NOT_RECORDED  # a run from before energy was measured


def test_the_energy_table_takes_the_median_of_the_later_epochs_and_keeps_unmeasured_runs_empty():
    runs = pd.DataFrame(
        {
            "device": ["gpu:0", "cpu:0"],
            "result": [
                stored_result(energy_method="rapl", energy_j=30.0, energy_epoch_j=[20.0, 4.0, 6.0], energy_note="ok"),
                stored_result(energy_method=energy.NOT_MEASURED, energy_note="not measured on this server: x."),
            ],
        }
    )

    table = energy.energy_table(runs, ["fast", "slow"])

    assert table["steady_epoch_j"][0] == 5.0 and math.isnan(table["energy_j"][1])
    assert energy.energy_caption(table) == (
        "Least energy: fast, 30 J for its epochs (idle draw included). Not measured: slow (see How)."
    )
    assert (
        energy.energy_caption(table.iloc[1:])
        == "No compared run has an energy reading: not measured on this server: x."
    )
