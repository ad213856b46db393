"""AppTest of the Results page's "How close to the hardware" section: the button, the roofline, the diagnoses."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from lib.ceilings import Ceiling
from lib.presets import PRESETS
from lib.roofline import BOUND_EXPLANATIONS, Bandwidth, BandwidthError
from lib.store import RunStore
from tests.helpers.runs import device_run
from tests.test_page_results import charts, open_results
from ui import runtime
from ui.keys import Key

HARDWARE_TITLE = "How close to the hardware"
CPU_CEILING_FLOPS = 1e12  # the patched measurement: a 1 TFLOP/s CPU ...
CPU_BANDWIDTH = 1e10  # ... with 10 GB/s memory: the ridge at 100 FLOP/byte


def fixed_ceilings(device: str, n: int | None) -> list[Ceiling]:
    return [Ceiling(device, "float32 strict", n or 4096, 0.01, CPU_CEILING_FLOPS)]


def fixed_bandwidth(device: str, *, size_bytes: int | None = None) -> Bandwidth:
    return Bandwidth(device, CPU_BANDWIDTH, size_bytes or 2**28, "tensorflow")


def clear_measurements() -> None:
    for cached in (runtime._measured_devices, runtime._device_ceilings, runtime._bandwidth_devices):
        cached.clear()
    runtime._device_bandwidth.clear()


@pytest.fixture
def measured_here(monkeypatch) -> None:
    """A CPU-only server whose measurements are patched: a 1 TFLOP/s ceiling and 10 GB/s, none measured yet."""
    monkeypatch.setattr(runtime, "device_names", lambda: ["cpu:0"])  # the server measures only its own devices
    monkeypatch.setattr(runtime, "measure_ceilings", fixed_ceilings)
    monkeypatch.setattr(runtime, "measure_bandwidth", fixed_bandwidth)
    clear_measurements()
    yield
    clear_measurements()


@pytest.fixture
def cpu_and_gpu_job(runs_db, measured_here) -> RunStore:
    """One job trained on cpu:0 and gpu:0 (1 GFLOP/s each) of a CPU-only server."""
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    store.record(seed, device_run("gpu:0", [3.0, 1.0, 1.0]), preset="fashion-seed", job_id="job-a")
    return store


def hardware_charts(at) -> list[dict]:
    return [spec for spec in charts(at) if HARDWARE_TITLE in json.dumps(spec.get("title"))]


def layer_rows(at, layer: int) -> dict[str, dict]:
    """The rows under one layer of the hardware chart, by series (Streamlit sends chart data beside the spec)."""
    (element,) = [chart for chart in at.get("vega_lite_chart") if HARDWARE_TITLE in chart.proto.spec]
    name = json.loads(element.proto.spec)["layer"][layer]["data"]["name"]
    (dataset,) = [dataset for dataset in element.proto.datasets if dataset.name == name]
    frame = convert_arrow_bytes_to_pandas_df(dataset.data.data)
    return {row["series"]: row for row in frame.to_dict("records")}


def diagnosis_lines(at) -> dict[str, str]:
    lines = [block.value for block in at.markdown if block.value.startswith("**")]
    return {line.split("**")[1]: line for line in lines}


def hardware_caption(at) -> str:
    return next(caption.value for caption in at.caption if "of what its roofs allow" in caption.value)


def test_before_measuring_only_the_button_shows(cpu_and_gpu_job):
    at = open_results()
    assert at.button(key=Key.RESULTS_MEASURE_CEILING).label == "Measure this machine's ceiling"
    assert not hardware_charts(at)
    assert len(charts(at)) == 6
    assert any("measure the fastest matrix product" in info.value for info in at.info)


def test_measuring_draws_the_roofline_and_one_diagnosis_per_run(cpu_and_gpu_job):
    at = open_results()
    at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert not at.exception
    assert not at.error
    (chart,) = hardware_charts(at)
    assert "roofline" in chart["title"]["text"]
    points = layer_rows(at, 1)
    assert list(points) == ["cpu:0"]  # this CPU-only server measured no GPU roofs
    # Fashion seed, batch 32: 4.7 FLOP/byte, so the memory roof (47 GFLOP/s) is the lower; 1 GFLOP/s is 2 % of it.
    assert points["cpu:0"]["bound"] == "overhead-bound"
    assert points["cpu:0"]["attainable_flops_per_s"] == pytest.approx(CPU_BANDWIDTH * points["cpu:0"]["intensity"])
    caption = hardware_caption(at)
    assert caption.startswith("The run is overhead-bound: it reaches 2% of what its roofs allow.")
    assert BOUND_EXPLANATIONS["overhead-bound"] in caption
    assert caption.endswith("Not drawn (no roofs measured for their device here): gpu:0.")
    lines = diagnosis_lines(at)
    assert "compiling took 9% of the run" in lines["cpu:0"]  # (9 - 7) s of 23 s
    assert "bound by per-step overhead (2.1% of what its roofs allow at 4.7 FLOP per byte" in lines["cpu:0"]
    assert "compiling took 40% of the run" in lines["gpu:0"]  # (3 - 1) s of 5 s
    assert lines["gpu:0"].endswith("ceiling not measured on this server")


def test_each_diagnosis_reads_its_figures_in_plain_words(cpu_and_gpu_job):
    # 7 s epochs of 31.25 steps of batch 32; at 2.1 % of its roof a step's work needs 2.1 % of its time.
    at = open_results()
    at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert not at.exception
    line = diagnosis_lines(at)["cpu:0"]
    assert "each step took 224.0 ms, but its arithmetic and memory traffic need only 4.7 ms" in line
    assert "at this device's roofs" in line
    assert line.endswith("try a larger batch or more steps per execution")
    assert "µs" not in line


def test_without_a_bandwidth_the_bars_and_thresholds_stay(cpu_and_gpu_job, monkeypatch):
    def no_bandwidth(device: str, *, size_bytes: int | None = None) -> Bandwidth:
        raise BandwidthError("TensorFlow sees no cpu:0")

    monkeypatch.setattr(runtime, "measure_bandwidth", no_bandwidth)
    at = open_results()
    at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert not at.exception
    assert "TensorFlow sees no cpu:0" in at.error[0].value
    rows = layer_rows(at, 0)
    assert rows["cpu:0"]["share_of_ceiling"] == pytest.approx(1e-3)  # 1 GFLOP/s of 1 TFLOP/s
    assert pd.isna(rows["gpu:0"]["share_of_ceiling"])
    assert rows["gpu:0"]["share_text"] == "ceiling not measured on this server"
    assert any("(the dashed line)" in caption.value for caption in at.caption)
    assert "(0.1% of the float32 strict ceiling): each step took 224.0 ms" in diagnosis_lines(at)["cpu:0"]


def test_measurements_are_shared_with_every_later_session(cpu_and_gpu_job):
    first = open_results()
    first.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert hardware_charts(first)
    second = open_results()
    assert len(hardware_charts(second)) == 1
    assert "cpu:0" in layer_rows(second, 1)
    assert "cpu:0" in diagnosis_lines(second)


def test_runs_of_other_machines_are_left_out_of_this_servers_roofline(runs_db, measured_here):
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    cluster = {"host": "lab-04", "node": "machine-2", "cpu_model": "Xeon", "gpus": []}
    store.record(seed, device_run("cpu:0", [5.0, 4.0, 4.0]), preset="fashion-seed", job_id="job-b", hardware=cluster)
    at = open_results()
    at.multiselect(key=Key.RESULTS_COMPARE).set_value([1, 2]).run()
    at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()

    assert not at.exception
    assert any("Left out: the runs of machine-2" in caption.value for caption in at.caption)
    assert len(layer_rows(at, 1)) == 1  # only the run of this server is set under its roofs
