"""Tests of lib.probe: the device list from the operating system and the NVIDIA driver, without a backend."""

from __future__ import annotations

import subprocess
import sys
import types

import psutil
import pytest

from lib.backend import backend_name
from lib.devices import BACKEND_SOURCE, DeviceInfo
from lib.probe import PROBE_SOURCE, driver_gpus, probe_devices, visible_gpu_order
from tests.conftest import REPO_ROOT

H100 = ("NVIDIA H100 80GB HBM3", 80 * 2**30, (9, 0), "GPU-11111111-aaaa-bbbb-cccc-000000000000")
A100 = ("NVIDIA A100-SXM4-40GB", 40 * 2**30, (8, 0), "GPU-22222222-aaaa-bbbb-cccc-000000000000")


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


def fake_pynvml(gpus, *, fail_init: bool = False, fail_on: str | None = None) -> types.ModuleType:
    """A stand-in for `pynvml` reporting `gpus` (name, memory, (major, minor), uuid) in driver order."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError
    module.calls = []

    def call(name, result):
        def function(*args):
            module.calls.append(name)
            if name == fail_on:
                raise FakeNVMLError(f"{name} failed")
            return result(*args)

        return function

    def init():
        module.calls.append("nvmlInit")
        if fail_init:
            raise FakeNVMLError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlShutdown = call("nvmlShutdown", lambda: None)
    module.nvmlDeviceGetCount = call("nvmlDeviceGetCount", lambda: len(gpus))
    module.nvmlDeviceGetHandleByIndex = call("nvmlDeviceGetHandleByIndex", lambda index: index)
    module.nvmlDeviceGetName = call("nvmlDeviceGetName", lambda handle: gpus[handle][0].encode())
    module.nvmlDeviceGetMemoryInfo = call(
        "nvmlDeviceGetMemoryInfo", lambda handle: types.SimpleNamespace(total=gpus[handle][1], used=0, free=0)
    )
    module.nvmlDeviceGetCudaComputeCapability = call("nvmlDeviceGetCudaComputeCapability", lambda h: gpus[h][2])
    module.nvmlDeviceGetUUID = call("nvmlDeviceGetUUID", lambda handle: gpus[handle][3])
    return module


@pytest.fixture
def driver(monkeypatch):
    """Installs a fake pynvml with the given GPUs; returns it so tests can read its calls."""

    def install(gpus, **failures):
        module = fake_pynvml(gpus, **failures)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    return install


def test_cpu_entry_has_sane_psutil_facts(driver):
    driver([])
    (cpu,) = probe_devices({})
    assert (cpu.name, cpu.kind, cpu.source, cpu.compute_capability) == ("cpu:0", "CPU", PROBE_SOURCE, None)
    assert cpu.memory_bytes == psutil.virtual_memory().total and cpu.memory_bytes > 2**28
    cores = len(psutil.Process().cpu_affinity())
    assert 1 <= cores <= psutil.cpu_count(logical=True)
    assert cpu.description.endswith(f", {cores} core{'s' if cores != 1 else ''}")


def test_backend_field_names_the_backend_that_will_list_them(driver):
    driver([H100])
    environ = {"KERAS_BACKEND": "jax"}
    assert {device.backend for device in probe_devices(environ)} == {backend_name(environ)}


def test_two_gpus_are_listed_with_name_memory_and_capability(driver):
    nvml = driver([H100, A100])
    devices = probe_devices({})
    backend = backend_name({})
    assert devices[1:] == [
        DeviceInfo("gpu:0", "GPU", H100[0], H100[1], "9.0", backend, PROBE_SOURCE),
        DeviceInfo("gpu:1", "GPU", A100[0], A100[1], "8.0", backend, PROBE_SOURCE),
    ]
    assert nvml.calls[-1] == "nvmlShutdown"


def test_cuda_visible_devices_picks_the_second_gpu_as_gpu_0(driver):
    driver([H100, A100])
    devices = probe_devices({"CUDA_VISIBLE_DEVICES": "1"})
    assert [device.name for device in devices] == ["cpu:0", "gpu:0"]
    assert (devices[1].description, devices[1].memory_bytes, devices[1].compute_capability) == (A100[0], A100[1], "8.0")


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, [0, 1, 2]),
        ("2,0", [2, 0]),
        (" 1 , 2 ", [1, 2]),
        ("", []),
        ("-1", []),
        ("0,7,1", [0]),  # CUDA stops at the first entry that names no GPU
        ("1,1", [1]),
        ("GPU-bbb", [1]),
        ("gpu-CCC,0", [2, 0]),
        ("GPU-", []),  # the prefix of every UUID names no single GPU
        ("MIG-1234", []),
    ],
)
def test_visible_gpu_order_follows_cuda(visible, expected):
    assert visible_gpu_order(visible, ["GPU-aaa1", "GPU-bbb2", "GPU-ccc3"]) == expected


def test_uuid_in_cuda_visible_devices_selects_that_gpu(driver):
    driver([H100, A100])
    assert [gpu.name for gpu in driver_gpus({"CUDA_VISIBLE_DEVICES": A100[3][:12]})] == [A100[0]]


def test_missing_library_means_no_gpus(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    devices = probe_devices({})
    assert [device.name for device in devices] == ["cpu:0"]


@pytest.mark.parametrize(
    "failures",
    [
        {"fail_init": True},
        {"fail_on": "nvmlDeviceGetCount"},
        {"fail_on": "nvmlDeviceGetName"},
        {"fail_on": "nvmlDeviceGetCudaComputeCapability"},
    ],
)
def test_any_nvml_failure_means_no_gpus_and_no_raise(driver, failures):
    nvml = driver([H100, A100], **failures)
    assert [device.name for device in probe_devices({})] == ["cpu:0"]
    assert driver_gpus({}) == []
    if "fail_init" not in failures:
        assert nvml.calls[-1] == "nvmlShutdown"  # what was initialised is released


def test_backend_lists_stay_marked_as_backend():
    device = DeviceInfo("cpu:0", "CPU", "a CPU", None, None, "tensorflow")
    assert device.source == BACKEND_SOURCE != PROBE_SOURCE


def test_probe_imports_no_backend_library():
    command = [sys.executable, "-m", "tests.helpers.fresh_reports", "probe"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
