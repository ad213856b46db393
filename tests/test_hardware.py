"""Tests of lib.hardware: CPU and RAM facts from psutil, GPU names from the driver, the one-line summary."""

from __future__ import annotations

import json
import platform
import sys

import psutil

from lib.devices import DeviceInfo
from lib.hardware import cpu_description, cpu_model, describe_hardware, hardware_summary, ram_bytes, usable_cores
from tests.test_probe import A100, H100, fake_pynvml

CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU 9000\n"


def fake_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    return path


def test_cpu_model_comes_from_cpuinfo(tmp_path):
    assert cpu_model(fake_cpuinfo(tmp_path)) == "Test CPU 9000"
    assert cpu_model(tmp_path / "nowhere") == (platform.processor() or None)


def test_cores_and_ram_come_from_psutil():
    assert ram_bytes() == psutil.virtual_memory().total > 0
    assert usable_cores() == len(psutil.Process().cpu_affinity())
    assert 1 <= usable_cores() <= psutil.cpu_count(logical=True)


def test_cpu_description_names_model_and_usable_cores(tmp_path):
    cores = usable_cores()
    assert cpu_description(fake_cpuinfo(tmp_path)) == f"Test CPU 9000, {cores} core{'s' if cores != 1 else ''}"


def test_describes_cpu_ram_and_the_drivers_visible_gpus(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([H100, A100]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    hardware = describe_hardware(cpuinfo=fake_cpuinfo(tmp_path))
    assert hardware["cpu_model"] == "Test CPU 9000"
    assert hardware["ram_bytes"] == psutil.virtual_memory().total
    assert hardware["logical_cores"] == psutil.cpu_count(logical=True)
    assert hardware["gpus"] == [A100[0], H100[0]]
    assert hardware["python"].count(".") == 2
    json.dumps(hardware)  # stored as JSON with every run


def test_gpu_names_come_from_given_devices(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([H100]))
    devices = [
        DeviceInfo("cpu:0", "CPU", "Test CPU, 2 cores", 1, None, "jax"),
        DeviceInfo("gpu:0", "GPU", "NVIDIA A100-SXM4-40GB", 40 * 2**30, "8.0", "jax"),
    ]
    assert describe_hardware(devices, cpuinfo=fake_cpuinfo(tmp_path))["gpus"] == ["NVIDIA A100-SXM4-40GB"]


def test_no_driver_library_never_raises(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    hardware = describe_hardware(cpuinfo=tmp_path / "nowhere")
    assert hardware["gpus"] == []
    assert "GPUs: none" in hardware_summary(hardware)


def test_summary_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([H100]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    hardware = describe_hardware(cpuinfo=fake_cpuinfo(tmp_path)) | {"ram_bytes": 16384000 * 1024}
    summary = hardware_summary(hardware)
    assert summary.startswith("Test CPU 9000, ")
    assert "15.6 GiB RAM" in summary
    assert summary.endswith(f"GPUs: {H100[0]}")
    assert hardware_summary({}) == "unknown CPU, cores unknown, RAM unknown, GPUs: none"
