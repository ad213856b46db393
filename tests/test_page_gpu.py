"""AppTests of the "What is a GPU?" page, run through the router like a visitor would reach it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import lib.devices
import lib.matmul
from lib.devices import DeviceInfo, cuda_build_info, gpu_setup_hint, list_devices
from lib.matmul import gflops_per_second
from tests.conftest import REPO_ROOT
from tests.test_router import HeldBackendImport, backend_held
from ui import runtime
from ui.keys import Key

PAGE = "app_pages/gpu.py"


@pytest.fixture
def held_backend(monkeypatch) -> Iterator[HeldBackendImport]:
    """A driver that finds a CPU and a GPU, and a backend import that waits until the test releases it."""
    with backend_held(monkeypatch) as held:
        yield held


@pytest.fixture(autouse=True)
def fresh_caches():
    """The page caches the device list per process; tests that fake devices must not leak them."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def open_page() -> AppTest:
    """The page once Keras has loaded its backend (tests/test_router.py covers the page before that)."""
    runtime.wait_for_backend()
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page(PAGE)
    return at.run()


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("vega_lite_chart")]


def test_page_renders_explanation_and_device_table():
    at = open_page()
    assert not at.exception
    assert at.title[0].value == "What is a GPU?"
    text = " ".join(markdown.value for markdown in at.markdown)
    for idea in ("latency", "throughput", "Parallelism", "virtual desktops (VDI)", "high-performance computing"):
        assert idea in text
    table = at.dataframe[0].value
    assert list(table.columns) == ["Device", "Type", "Description", "Memory", "Compute capability"]
    assert table["Device"].tolist() == [device.name for device in list_devices()]
    assert any("built with" in caption.value for caption in at.caption)


def test_slider_is_capped_by_the_server_limit(monkeypatch):
    monkeypatch.setenv("GPUX_MAX_MATMUL_N", "100")
    at = open_page()
    assert not at.exception
    slider = at.select_slider(key=Key.MATMUL_SIZES)
    assert slider.options == ["16", "32", "64"]
    assert any("allows N up to 100." in caption.value for caption in at.caption)
    assert not any("GPUX_" in caption.value for caption in at.caption)
    owner = next(expander for expander in at.expander if "server's owner" in expander.label)
    assert owner.markdown[0].value == "- `GPUX_MAX_MATMUL_N=100`"  # where it is set: for the owner, folded away


def test_bad_limit_setting_is_shown_not_raised(monkeypatch):
    monkeypatch.setenv("GPUX_MAX_MATMUL_N", "lots")
    at = open_page()
    assert not at.exception
    assert any("GPUX_MAX_MATMUL_N='lots'" in error.value for error in at.error)


def test_run_button_times_every_device_and_draws_both_charts():
    at = open_page()
    at.select_slider(key=Key.MATMUL_SIZES).set_range(16, 32).run()
    at.button(key=Key.MATMUL_RUN).click().run()
    assert not at.exception
    results = at.session_state[Key.MATMUL_RESULTS]
    devices = list_devices()
    assert sorted(set(results["device"])) == sorted(device.name for device in devices)
    assert sorted(set(results["n"])) == [16, 32]
    specs = chart_specs(at)
    assert len(specs) == 2
    assert {spec["encoding"]["y"]["field"] for spec in specs} == {"seconds", "gflops_per_s"}


def fake_sweep_of(timings: dict[tuple[str, int], float]):
    """A stand-in for `lib.matmul.sweep` that returns these (device, N) -> seconds timings at once."""

    def fake_sweep(devices, sizes, repeats, dtype, limits, available=None, on_timing=None):
        rows = [
            {"device": d, "n": n, "dtype": dtype, "seconds": timings[d, n], "repeats": repeats}
            for d in devices
            for n in sizes
        ]
        frame = pd.DataFrame(rows)
        return frame.assign(gflops_per_s=gflops_per_second(frame["n"], frame["seconds"]))

    return fake_sweep


def test_on_a_cpu_only_server_the_gpu_setup_hint_is_said_once(monkeypatch):
    cpu = DeviceInfo("cpu:0", "CPU", "Test CPU, 2 cores", 2**34, None, "tensorflow")
    monkeypatch.setattr(runtime, "list_devices", lambda backend=None: [cpu])
    monkeypatch.setattr(lib.matmul, "sweep", fake_sweep_of({("cpu:0", 16): 1e-5, ("cpu:0", 32): 8e-5}))
    at = open_page()
    at.select_slider(key=Key.MATMUL_SIZES).set_range(16, 32).run()
    at.button(key=Key.MATMUL_RUN).click().run()
    assert not at.exception
    hint = gpu_setup_hint(cuda_build_info())
    notices = [element.value for kind in ("info", "warning", "success", "markdown") for element in at.get(kind)]
    assert sum(hint in notice for notice in notices) == 1
    assert any(notice.startswith("**No GPU found.**") for notice in notices)
    only_cpu = next(notice for notice in notices if notice.startswith("**Only the CPU was timed**"))
    assert "*This machine* above says how to change that" in only_cpu and hint not in only_cpu
    assert len(chart_specs(at)) == 2


def test_results_survive_a_rerun_without_recomputing(monkeypatch):
    at = open_page()
    at.select_slider(key=Key.MATMUL_SIZES).set_range(16, 16).run()
    at.button(key=Key.MATMUL_RUN).click().run()
    first = at.session_state[Key.MATMUL_RESULTS]

    def must_not_run(*args, **kwargs):
        raise AssertionError("a rerun recomputed the sweep")

    monkeypatch.setattr(lib.matmul, "sweep", must_not_run)
    at.selectbox(key=Key.MATMUL_DTYPE).select("bfloat16").run()
    assert not at.exception
    assert at.session_state[Key.MATMUL_RESULTS] is first
    assert len(chart_specs(at)) == 2


def test_with_a_gpu_the_page_says_where_it_overtakes(monkeypatch):
    cpu = DeviceInfo("cpu:0", "CPU", "Test CPU, 2 cores", 2**34, None, "tensorflow")
    gpu = DeviceInfo("gpu:0", "GPU", "NVIDIA H100 80GB HBM3", 80 * 2**30, "9.0", "tensorflow")
    timings = {("cpu:0", 16): 1e-5, ("gpu:0", 16): 4e-5, ("cpu:0", 32): 8e-5, ("gpu:0", 32): 4e-5}
    monkeypatch.setattr(runtime, "list_devices", lambda backend=None: [cpu, gpu])
    monkeypatch.setattr(lib.matmul, "sweep", fake_sweep_of(timings))
    at = open_page()
    assert at.dataframe[0].value["Compute capability"].tolist() == ["-", "9.0"]
    assert not at.info
    at.select_slider(key=Key.MATMUL_SIZES).set_range(16, 32).run()
    at.button(key=Key.MATMUL_RUN).click().run()
    assert not at.exception
    assert "The GPU overtakes the CPU from N = 32 on." in at.success[0].value
    assert "2.0 times faster" in at.success[0].value


def open_page_while_keras_loads() -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page(PAGE)
    return at.run()


def test_before_keras_loads_the_table_is_the_drivers_and_says_so(held_backend):
    at = open_page_while_keras_loads()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["Device"].tolist() == ["cpu:0", "gpu:0"]
    assert table["Description"].tolist() == ["Probed CPU, 2 cores", "NVIDIA H200"]
    captions = [caption.value for caption in at.main.caption]
    assert runtime.BACKEND_LOADING_NOTE in captions
    assert not any("built with" in caption for caption in captions)
    assert at.button(key=Key.MATMUL_RUN).label == "Run on cpu:0, gpu:0"


def test_the_race_waits_for_keras_then_times_the_backends_devices(held_backend, monkeypatch):
    timed = []

    def fake_sweep(devices, sizes, repeats, dtype, limits, available=None, on_timing=None):
        timed.append(list(devices))
        frame = pd.DataFrame(
            [{"device": d, "n": n, "dtype": dtype, "seconds": 1e-4, "repeats": repeats} for d in devices for n in sizes]
        )
        return frame.assign(gflops_per_s=gflops_per_second(frame["n"], frame["seconds"]))

    monkeypatch.setattr(lib.matmul, "sweep", fake_sweep)
    at = open_page_while_keras_loads()
    at.select_slider(key=Key.MATMUL_SIZES).set_range(16, 32).run()
    held_backend.released.set()
    at.button(key=Key.MATMUL_RUN).click().run()
    assert not at.exception
    assert timed == [["cpu:0"]]  # the backend's list, not the driver's
    at.run()  # what the sidebar's check does once the backend has loaded: the table above is redrawn too
    assert at.dataframe[0].value["Description"].tolist() == ["Listed CPU, 2 cores"]
    assert any("built with" in caption.value for caption in at.main.caption)
