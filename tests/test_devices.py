"""Tests of lib.devices: listing, naming and describing CPUs and GPUs for each Keras backend."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from lib import devices as devices_module
from lib.backend import backend_name
from lib.devices import (
    BACKEND_SOURCE,
    DeviceInfo,
    DeviceNotFoundError,
    cuda_build_info,
    cuda_build_summary,
    device_names,
    device_table,
    driver_gpu_memory_bytes,
    gpu_setup_hint,
    has_gpu,
    keras_device_name,
    list_devices,
    normalize_device_name,
    resolve_device,
)
from lib.formatting import format_bytes
from tests.conftest import REPO_ROOT
from tests.test_probe import fake_pynvml

H100_MIB = 81559  # what the driver reports for an H100 80GB HBM3


def make_device(name: str) -> DeviceInfo:
    kind = name.split(":")[0].upper()
    return DeviceInfo(name, kind, f"a {kind}", None, "9.0" if kind == "GPU" else None, "tensorflow")


@pytest.fixture
def fake_driver(monkeypatch):
    """Makes the NVIDIA driver (a fake pynvml) report two H100s, the second with half the memory."""
    gpus = [
        ("NVIDIA H100 80GB HBM3", H100_MIB * 2**20, (9, 0), "GPU-0000"),
        ("NVIDIA H100 80GB HBM3", H100_MIB // 2 * 2**20, (9, 0), "GPU-1111"),
    ]
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_cpu_is_listed_with_description_and_memory():
    devices = list_devices()
    cpu = devices[0]
    assert cpu.name == "cpu:0"
    assert cpu.kind == "CPU"
    assert "core" in cpu.description
    assert cpu.memory_bytes is not None and cpu.memory_bytes > 2**28
    assert cpu.compute_capability is None
    assert cpu.backend == backend_name()
    assert {device.source for device in devices} == {BACKEND_SOURCE}
    assert all(device.name == normalize_device_name(device.name) for device in devices)


def test_device_names_and_has_gpu_agree_with_list():
    devices = list_devices()
    assert device_names(devices) == [device.name for device in devices]
    assert "cpu:0" in device_names()
    assert has_gpu(devices) == any(device.name.startswith("gpu:") for device in devices)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CPU", "cpu:0"),
        ("cpu", "cpu:0"),
        ("/CPU:0", "cpu:0"),
        ("/device:CPU:0", "cpu:0"),
        ("GPU:0", "gpu:0"),
        ("gpu", "gpu:0"),
        (" Gpu:2 ", "gpu:2"),
        ("cuda:1", "gpu:1"),
        ("/physical_device:GPU:1", "gpu:1"),
        ("/job:localhost/replica:0/task:0/device:GPU:3", "gpu:3"),
        ("tpu", None),
        ("cpu:", None),
        ("gpu:0:1", None),
        ("", None),
    ],
)
def test_normalize_device_name(raw, expected):
    assert normalize_device_name(raw) == expected


@pytest.mark.parametrize("raw", ["CPU", "cpu", "/CPU:0", "cpu:0"])
def test_resolve_device_finds_present_cpu(raw):
    assert resolve_device(raw) == "cpu:0"


def test_resolve_device_missing_lists_present_devices():
    with pytest.raises(DeviceNotFoundError, match=r"'GPU:3' is not present.*Present devices: cpu:0, gpu:0"):
        resolve_device("GPU:3", available=["cpu:0", "gpu:0"])


def test_resolve_device_rejects_non_device_names():
    with pytest.raises(DeviceNotFoundError, match=r"'banana' is not a device name.*Present devices: cpu:0"):
        resolve_device("banana", available=["cpu:0"])
    assert issubclass(DeviceNotFoundError, ValueError)


def test_resolve_device_absent_gpu_lists_this_machines_devices():
    present = device_names()
    absent = f"gpu:{sum(name.startswith('gpu:') for name in present)}"
    with pytest.raises(DeviceNotFoundError, match=f"Present devices: {', '.join(present)}"):
        resolve_device(absent.upper())


def test_torch_gpus_are_described(monkeypatch):
    properties = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=H100_MIB * 2**20)
    fake_torch = SimpleNamespace(
        cuda=SimpleNamespace(
            is_available=lambda: True, device_count=lambda: 1, get_device_properties=lambda i: properties
        )
    )
    monkeypatch.setattr(devices_module, "import_backend_module", lambda name: fake_torch)
    devices = list_devices("torch")
    assert [device.name for device in devices] == ["cpu:0", "gpu:0"]
    gpu = devices[1]
    assert (gpu.kind, gpu.description, gpu.compute_capability) == ("GPU", "NVIDIA H100 80GB HBM3", "9.0")
    assert gpu.memory_bytes == H100_MIB * 2**20
    assert gpu.backend == "torch"
    assert has_gpu(devices)


def test_tensorflow_gpus_are_described_with_the_drivers_memory(monkeypatch, fake_driver):
    physical = [
        SimpleNamespace(name="/physical_device:GPU:1", device_type="GPU"),
        SimpleNamespace(name="/physical_device:CPU:0", device_type="CPU"),
        SimpleNamespace(name="/physical_device:GPU:0", device_type="GPU"),
    ]
    details = {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": (9, 0)}
    fake_tf = SimpleNamespace(
        config=SimpleNamespace(
            list_physical_devices=lambda: physical,
            experimental=SimpleNamespace(get_device_details=lambda device: details),
        )
    )
    monkeypatch.setattr(devices_module, "import_backend_module", lambda name: fake_tf)
    devices = list_devices("tensorflow")
    assert [device.name for device in devices] == ["cpu:0", "gpu:0", "gpu:1"]
    assert [device.memory_bytes for device in devices[1:]] == [H100_MIB * 2**20, H100_MIB // 2 * 2**20]
    assert {device.compute_capability for device in devices[1:]} == {"9.0"}


def test_driver_memory_respects_cuda_visible_devices(fake_driver):
    assert driver_gpu_memory_bytes({}) == [H100_MIB * 2**20, H100_MIB // 2 * 2**20]
    assert driver_gpu_memory_bytes({"CUDA_VISIBLE_DEVICES": "1"}) == [H100_MIB // 2 * 2**20]
    assert driver_gpu_memory_bytes({"CUDA_VISIBLE_DEVICES": "GPU-1"}) == [H100_MIB // 2 * 2**20]
    assert driver_gpu_memory_bytes({"CUDA_VISIBLE_DEVICES": "GPU-1234-uuid"}) == []


def test_no_driver_library_gives_no_memory(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert driver_gpu_memory_bytes({}) == []


def test_cuda_build_info_reports_tensorflow_build():
    info = cuda_build_info("tensorflow")
    import tensorflow as tf

    assert info["backend"] == "tensorflow"
    assert info["built_with_cuda"] is bool(tf.test.is_built_with_cuda())
    if info["built_with_cuda"]:
        assert info["cuda_version"] == tf.sysconfig.get_build_info()["cuda_version"]


def test_cuda_build_info_never_fails():
    info = cuda_build_info("mxnet")
    assert info["backend"] == "mxnet"
    assert info["built_with_cuda"] is None
    assert "KERAS_BACKEND" in info["note"]


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (
            {"backend": "tensorflow", "built_with_cuda": True, "cuda_version": "12.5.1", "cudnn_version": "9"},
            "CUDA 12.5.1 and cuDNN 9",
        ),
        ({"backend": "jax", "built_with_cuda": False, "note": ""}, "built without CUDA"),
        ({"backend": "torch", "built_with_cuda": None, "note": "boom"}, "unknown. boom"),
    ],
)
def test_cuda_build_summary(info, expected):
    assert expected in cuda_build_summary(info)


def test_gpu_setup_hint_names_the_gpu_build():
    assert 'pip install "tensorflow[and-cuda]"' in gpu_setup_hint({"backend": "tensorflow", "built_with_cuda": False})
    assert "nvidia-smi" in gpu_setup_hint({"backend": "tensorflow", "built_with_cuda": True})
    assert 'pip install "jax[cuda12]"' in gpu_setup_hint({"backend": "jax", "built_with_cuda": False})


def test_device_table_and_format_bytes():
    gpu = DeviceInfo("gpu:0", "GPU", "NVIDIA H100", 80 * 2**30, "9.0", "jax")
    rows = device_table([make_device("cpu:0"), gpu])
    assert rows[1] == {
        "Device": "gpu:0",
        "Type": "GPU",
        "Description": "NVIDIA H100",
        "Memory": "80.0 GiB",
        "Compute capability": "9.0",
    }
    assert rows[0]["Memory"] == "unknown"
    assert rows[0]["Compute capability"] == "-"
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 2**30) == "3.0 GiB"
    assert format_bytes(3 * 2**40) == "3.0 TiB"


def test_has_gpu_on_given_lists():
    assert not has_gpu([make_device("cpu:0")])
    assert has_gpu([make_device("cpu:0"), make_device("gpu:0")])


def test_devices_under_jax_backend_in_subprocess():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    command = [sys.executable, "-m", "tests.helpers.fresh_reports", "devices"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    name, devices, build = json.loads(result.stdout.strip().splitlines()[-1])
    assert name == "jax"
    assert devices[0]["name"] == "cpu:0"
    assert {(device["backend"], device["source"]) for device in devices} == {("jax", BACKEND_SOURCE)}
    assert build["backend"] == "jax"
    # JAX finds CUDA through a plugin package: the build is CUDA's exactly when one is installed.
    plugins = [major for major in ("12", "13") if importlib.util.find_spec(f"jax_cuda{major}_plugin")]
    assert build["built_with_cuda"] is bool(plugins)
    assert build["cuda_version"] == (max(plugins) if plugins else None)


@pytest.mark.parametrize(
    ("name", "backend", "expected"),
    [
        ("cpu:0", "torch", "cpu"),  # Keras' torch variables lose their gradients under "cpu:0"
        ("gpu:0", "torch", "gpu:0"),
        ("cpu:0", "tensorflow", "cpu:0"),
        ("cpu:1", "jax", "cpu:1"),
    ],
)
def test_keras_device_name_works_around_torch_cpu_index(name, backend, expected):
    assert keras_device_name(name, backend) == expected
