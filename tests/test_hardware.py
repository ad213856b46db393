"""Tests of lib.hardware: CPU and RAM facts from psutil, GPU names from the driver, the one-line summary."""

from __future__ import annotations

import json
import platform
import sys
from types import SimpleNamespace

import psutil
import pytest

from lib.devices import DeviceInfo
from lib.hardware import (
    cpu_description,
    cpu_model,
    describe_hardware,
    hardware_known,
    hardware_summary,
    machine_name,
    machine_text,
    ram_bytes,
    usable_cores,
)
from tests.test_probe import A100, H100, fake_pynvml

CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU 9000\n"


def fake_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    return path


def fake_machine(monkeypatch, *, ram: int | None, cores: int | None, affinity: list[int] | None) -> None:
    """Makes psutil report `ram` bytes, `cores` logical cores and this process's `affinity`; None: not said."""

    def fails(*args, **kwargs):
        raise AttributeError("not on this system")  # as psutil's cpu_affinity on macOS

    def memory():
        if ram is None:
            raise OSError("no /proc/meminfo")
        return SimpleNamespace(total=ram)

    monkeypatch.setattr(psutil, "virtual_memory", memory)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: cores)
    monkeypatch.setattr(psutil.Process, "cpu_affinity", fails if affinity is None else lambda self: affinity)


def test_cpu_model_comes_from_cpuinfo_else_platform(tmp_path, monkeypatch):
    assert cpu_model(fake_cpuinfo(tmp_path)) == "Test CPU 9000"
    monkeypatch.setattr(platform, "processor", lambda: "x86_64")
    assert cpu_model(tmp_path / "nowhere") == "x86_64"
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_model(tmp_path / "nowhere") is None


def test_cores_and_ram_come_from_psutil(monkeypatch):
    fake_machine(monkeypatch, ram=16 * 2**30, cores=8, affinity=[0, 2, 5])
    assert ram_bytes() == 16 * 2**30
    assert usable_cores() == 3  # a container or taskset allows 3 of the 8


def test_cores_and_ram_when_the_system_does_not_say(monkeypatch):
    fake_machine(monkeypatch, ram=None, cores=8, affinity=None)
    assert ram_bytes() is None
    assert usable_cores() == 8  # no affinity (macOS): every logical core
    fake_machine(monkeypatch, ram=None, cores=None, affinity=None)
    assert usable_cores() == 1


@pytest.mark.parametrize(("affinity", "expected"), [([0], "Test CPU 9000, 1 core"), ([0, 1], "Test CPU 9000, 2 cores")])
def test_cpu_description_names_model_and_usable_cores(tmp_path, monkeypatch, affinity, expected):
    fake_machine(monkeypatch, ram=2**30, cores=4, affinity=affinity)
    assert cpu_description(fake_cpuinfo(tmp_path)) == expected


def test_describes_cpu_ram_and_the_drivers_visible_gpus(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([H100, A100]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    fake_machine(monkeypatch, ram=16 * 2**30, cores=8, affinity=[0, 1])
    hardware = describe_hardware(cpuinfo=fake_cpuinfo(tmp_path))
    assert hardware["cpu_model"] == "Test CPU 9000"
    assert (hardware["ram_bytes"], hardware["logical_cores"], hardware["usable_cores"]) == (16 * 2**30, 8, 2)
    assert hardware["gpus"] == [A100[0], H100[0]]
    assert hardware["python"] == platform.python_version()
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


@pytest.mark.parametrize(
    ("hardware", "name"),
    [
        ({"node": "machine-1", "host": "ip-10-0-0-5", "cpu_model": "Test CPU"}, "machine-1"),  # a cluster's node
        ({"host": "gpu-box", "cpu_model": "Test CPU"}, "gpu-box"),  # a run on this server, with its host name
        ({"cpu_model": "Test CPU", "gpus": []}, "this server"),  # stored before runs kept a host name
        ({"node": " ", "host": ""}, "this server"),
        ({}, "this server"),
        (None, "this server"),  # a frame's missing cell
    ],
)
def test_machine_name_is_the_node_else_the_host_else_this_server(hardware, name):
    assert machine_name(hardware) == name


def test_machine_text_names_the_machine_its_host_and_what_it_has():
    node = {
        "node": "machine-1",
        "host": "ip-10-0-0-5",
        "cpu_model": "Test CPU 9000",
        "logical_cores": 8,
        "ram_bytes": 16 * 2**30,
        "gpus": ["NVIDIA L4"],
    }
    assert machine_text(node) == (
        "machine-1 (host ip-10-0-0-5): Test CPU 9000, 8 logical cores, 16.0 GiB RAM, GPUs: NVIDIA L4"
    )
    assert machine_text({**node, "node": "ip-10-0-0-5"}).startswith("ip-10-0-0-5: Test CPU 9000")  # no host twice
    assert machine_text({"cpu_model": "Test CPU 9000"}) == (
        "this server: Test CPU 9000, cores unknown, RAM unknown, GPUs: none"
    )
    assert machine_text({}) == "this server"  # nothing known: no "unknown CPU, ..." line


def test_this_machines_description_names_it_by_its_host(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(platform, "node", lambda: "test-host")
    hardware = describe_hardware(cpuinfo=fake_cpuinfo(tmp_path))
    assert machine_name(hardware) == "test-host"
    assert hardware_known(hardware) and not hardware_known({"host": "test-host"})
    assert machine_text(hardware).startswith("test-host: Test CPU 9000, ")


def test_a_run_ran_here_unless_a_cluster_node_or_another_host_ran_it():
    import platform

    from lib.hardware import ran_here

    assert ran_here({}) and ran_here(None)  # runs stored before hosts were kept ran on this server
    assert ran_here({"host": platform.node(), "cpu_model": "x"})
    assert not ran_here({"host": "elsewhere"})
    assert not ran_here({"host": platform.node(), "node": "machine-1"})  # a cluster node, even on this host
