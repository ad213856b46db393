from __future__ import annotations

import json

from lib.devices import DeviceInfo
from lib.hardware import describe_hardware, hardware_summary

H100 = "NVIDIA H100 80GB HBM3"


def fake_proc(tmp_path, *, gpus: list[str]):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU 9000\n")
    (tmp_path / "meminfo").write_text("MemTotal:       16384000 kB\nMemFree:        1000 kB\n")
    for index, name in enumerate(gpus):
        folder = tmp_path / "driver" / "nvidia" / "gpus" / f"0000:0{index}:00.0"
        folder.mkdir(parents=True)
        (folder / "information").write_text(f"Model: \t\t {name}\nIRQ:   \t\t 42\n")
    return tmp_path


def test_reads_cpu_ram_and_gpus_from_proc(tmp_path):
    hardware = describe_hardware(proc_root=fake_proc(tmp_path, gpus=[H100, H100]))
    assert hardware["cpu_model"] == "Test CPU 9000"
    assert hardware["ram_bytes"] == 16384000 * 1024
    assert hardware["gpus"] == [H100, H100]
    assert hardware["logical_cores"] >= 1 and 1 <= hardware["usable_cores"] <= hardware["logical_cores"]
    assert hardware["python"].count(".") == 2
    json.dumps(hardware)  # stored as JSON with every run


def test_gpu_names_come_from_given_devices(tmp_path):
    devices = [
        DeviceInfo("cpu:0", "CPU", "Test CPU, 2 cores", 1, None, "jax"),
        DeviceInfo("gpu:0", "GPU", "NVIDIA A100-SXM4-40GB", 40 * 2**30, "8.0", "jax"),
    ]
    hardware = describe_hardware(devices, proc_root=fake_proc(tmp_path, gpus=[H100]))
    assert hardware["gpus"] == ["NVIDIA A100-SXM4-40GB"]


def test_missing_proc_files_never_raise(tmp_path):
    hardware = describe_hardware(proc_root=tmp_path / "nowhere")
    assert hardware["gpus"] == []
    assert hardware["ram_bytes"] is None or hardware["ram_bytes"] > 0
    assert "GPUs: none" in hardware_summary(hardware)


def test_real_machine_description_is_complete():
    hardware = describe_hardware()
    assert hardware["ram_bytes"] > 0
    assert hardware["logical_cores"] >= 1
    assert isinstance(hardware["gpus"], list)


def test_summary_line(tmp_path):
    summary = hardware_summary(describe_hardware(proc_root=fake_proc(tmp_path, gpus=[H100])))
    assert summary.startswith("Test CPU 9000, ")
    assert "15.6 GiB RAM" in summary
    assert summary.endswith(f"GPUs: {H100}")
    assert hardware_summary({}) == "unknown CPU, cores unknown, RAM unknown, GPUs: none"
