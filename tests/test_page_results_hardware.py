"""AppTest of the Results page's "How close to the hardware" section: the button, the measured ceiling, diagnoses."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from lib.keys import Key
from lib.presets import PRESETS
from lib.store import RunStore
from tests.test_page_results import charts, device_run, open_results
from ui import runtime

HARDWARE_TITLE = "How close to the hardware"


@pytest.fixture
def cpu_and_gpu_job(runs_db, monkeypatch) -> RunStore:
    """One job trained on cpu:0 and gpu:0, small ceilings (n=256), and no ceiling measured yet in this process."""
    monkeypatch.setattr(runtime, "CEILING_N", 256)
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
    assert pd.isna(rows["gpu:0"]["share_of_ceiling"])  # this CPU-only test machine measured no GPU
    assert rows["gpu:0"]["share_text"] == "ceiling not measured on this server"
    assert any("(the dashed line)" in caption.value for caption in at.caption)
    lines = diagnosis_lines(at)
    assert "compilation 9% of the run" in lines["cpu:0"]  # (9 - 7) s of 23 s
    assert "float32 strict ceiling" in lines["cpu:0"]
    assert "compilation 40% of the run" in lines["gpu:0"]  # (3 - 1) s of 5 s
    assert lines["gpu:0"].endswith("ceiling not measured on this server")


def test_a_measured_ceiling_is_shared_with_every_later_session(cpu_and_gpu_job):
    first = open_results()
    first.button(key=Key.RESULTS_MEASURE_CEILING).click().run()
    assert hardware_charts(first)
    second = open_results()
    assert len(hardware_charts(second)) == 1
    assert "cpu:0" in diagnosis_lines(second)
