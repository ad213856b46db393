"""AppTest of the Results page's "How close to the hardware" section: the button, the measured ceiling, diagnoses."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from lib.ceilings import Ceiling
from lib.presets import PRESETS
from lib.store import RunStore
from tests.test_page_results import charts, device_run, open_results
from ui import runtime
from ui.keys import Key

HARDWARE_TITLE = "How close to the hardware"


@pytest.fixture
def cpu_and_gpu_job(runs_db, monkeypatch) -> RunStore:
    """One job trained on cpu:0 and gpu:0 of a CPU-only server, small ceilings (n=256), none measured yet."""
    monkeypatch.setattr(runtime, "CEILING_N", 256)
    monkeypatch.setattr(runtime, "device_names", lambda: ["cpu:0"])  # the server measures only its own devices
    runtime._measured_devices.clear()
    runtime._device_ceilings.clear()
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    store.record(seed, device_run("gpu:0", [3.0, 1.0, 1.0]), preset="fashion-seed", job_id="job-a")
    yield store
    runtime._measured_devices.clear()
    runtime._device_ceilings.clear()


def hardware_charts(at) -> list[dict]:
    return [spec for spec in charts(at) if HARDWARE_TITLE in json.dumps(spec.get("title"))]


def bar_rows(at) -> dict[str, dict]:
    """The rows under the hardware chart's bars, by series (Streamlit sends chart data beside the spec)."""
    (element,) = [chart for chart in at.get("vega_lite_chart") if HARDWARE_TITLE in chart.proto.spec]
    name = json.loads(element.proto.spec)["layer"][0]["data"]["name"]
    (dataset,) = [dataset for dataset in element.proto.datasets if dataset.name == name]
    frame = convert_arrow_bytes_to_pandas_df(dataset.data.data)
    return {row["series"]: row for row in frame.to_dict("records")}


def diagnosis_lines(at) -> dict[str, str]:
    lines = [block.value for block in at.markdown if block.value.startswith("**")]
    return {line.split("**")[1]: line for line in lines}


def test_before_measuring_only_the_button_shows(cpu_and_gpu_job):
    at = open_results()
    assert at.button(key=Key.RESULTS_MEASURE_CEILING).label == "Measure this machine's ceiling"
    assert not hardware_charts(at)
    assert len(charts(at)) == 6
    assert any("measure the fastest matrix product" in info.value for info in at.info)


def test_measuring_draws_the_chart_and_one_diagnosis_per_run(cpu_and_gpu_job):
    at = open_results()
    at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert not at.exception
    assert not at.error
    assert len(hardware_charts(at)) == 1
    rows = bar_rows(at)
    assert 0 < rows["cpu:0"]["share_of_ceiling"] < 1.1  # 1 GFLOP/s against a measured CPU ceiling
    assert pd.isna(rows["gpu:0"]["share_of_ceiling"])  # this CPU-only server measured no GPU
    assert rows["gpu:0"]["share_text"] == "ceiling not measured on this server"
    assert any("(the dashed line)" in caption.value for caption in at.caption)
    lines = diagnosis_lines(at)
    assert "compiling took 9% of the run" in lines["cpu:0"]  # (9 - 7) s of 23 s
    assert "float32 strict ceiling" in lines["cpu:0"]
    assert "compiling took 40% of the run" in lines["gpu:0"]  # (3 - 1) s of 5 s
    assert lines["gpu:0"].endswith("ceiling not measured on this server")


def test_each_diagnosis_reads_its_figures_in_plain_words(cpu_and_gpu_job, monkeypatch):
    # A 1 TFLOP/s CPU ceiling: the 1 GFLOP/s run reaches 0.1 % of it, 7 s epochs of 31.25 steps of batch 32.
    monkeypatch.setattr(
        runtime, "measure_ceilings", lambda device, n: [Ceiling(device, "float32 strict", n, 0.01, 1e12)]
    )
    at = open_results()
    at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert not at.exception
    line = diagnosis_lines(at)["cpu:0"]
    assert "(0.1% of the float32 strict ceiling): each step took 224.0 ms" in line
    assert "but its arithmetic needs only 0.22 ms at this device's top speed" in line
    assert "rather than multiplying matrices; try a larger batch or more steps per execution" in line
    assert "µs" not in line


def test_a_measured_ceiling_is_shared_with_every_later_session(cpu_and_gpu_job):
    first = open_results()
    first.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert hardware_charts(first)
    second = open_results()
    assert len(hardware_charts(second)) == 1
    assert "cpu:0" in diagnosis_lines(second)


def test_runs_of_other_machines_are_left_out_of_this_servers_ceiling(runs_db, monkeypatch):
    monkeypatch.setattr(runtime, "CEILING_N", 256)
    monkeypatch.setattr(runtime, "device_names", lambda: ["cpu:0"])
    runtime._measured_devices.clear()
    runtime._device_ceilings.clear()
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    cluster = {"host": "lab-04", "node": "machine-2", "cpu_model": "Xeon", "gpus": []}
    store.record(seed, device_run("cpu:0", [5.0, 4.0, 4.0]), preset="fashion-seed", job_id="job-b", hardware=cluster)
    try:
        at = open_results()
        at.multiselect(key=Key.RESULTS_COMPARE).set_value([1, 2]).run()
        at.button(key=Key.RESULTS_MEASURE_CEILING).click().run()

        assert not at.exception
        assert any("Left out: the runs of machine-2" in caption.value for caption in at.caption)
        assert len(bar_rows(at)) == 1  # only the run of this server is set against its ceiling
    finally:
        runtime._measured_devices.clear()
        runtime._device_ceilings.clear()
