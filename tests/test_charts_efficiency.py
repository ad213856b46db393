"""Unit tests of the 'how close to the hardware' chart spec, built from a real `efficiency_frame`."""

from __future__ import annotations

from lib.ceilings import Ceiling
from lib.charts import CEILING_NOT_MEASURED, COLOR_SCHEME, hardware_efficiency_chart
from lib.device_run import DeviceRun
from lib.diagnosis import efficiency_frame
from lib.presets import PRESETS


def run_on(device: str, achieved_flops_per_s: float) -> DeviceRun:
    return DeviceRun(
        device=device,
        backend="tensorflow",
        synthetic=False,
        num_train=60000,
        epoch_s=[3.0, 1.0, 1.0],
        first_epoch_s=3.0,
        steady_epoch_s=1.0,
        total_s=5.0,
        achieved_flops_per_s=achieved_flops_per_s,
    )


def chart_spec() -> dict:
    spec = PRESETS["fashion-seed"].spec
    ceilings = [Ceiling("cpu:0", "float32 strict", 256, 0.01, 1e11)]
    entries = [("cpu:0", run_on("cpu:0", 2.5e10), spec), ("gpu:0", run_on("gpu:0", 1e12), spec)]
    return hardware_efficiency_chart(efficiency_frame(entries, ceilings)).to_dict()


def test_bars_show_the_share_of_the_ceiling_in_percent():
    bars, _, _ = chart_spec()["layer"]
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["x"]["field"] == "share_of_ceiling"
    assert "%" in bars["encoding"]["x"]["title"]
    assert bars["encoding"]["x"]["axis"]["format"] == "%"
    assert bars["encoding"]["color"]["scale"]["scheme"] == COLOR_SCHEME


def test_labels_give_the_share_or_say_the_ceiling_is_not_measured():
    spec = chart_spec()
    labels = spec["layer"][1]
    assert labels["encoding"]["text"]["field"] == "share_text"
    rows = {row["series"]: row for row in spec["datasets"][spec["layer"][0]["data"]["name"]]}
    assert rows["cpu:0"]["share_text"] == "25.0% of the float32 strict ceiling"
    assert rows["gpu:0"]["share_text"] == CEILING_NOT_MEASURED
    assert rows["gpu:0"]["label_x"] == 0.0


def test_ceiling_rule_at_100_percent_and_tooltips_on_every_mark():
    spec = chart_spec()
    bars, labels, rule = spec["layer"]
    assert rule["mark"]["type"] == "rule"
    assert spec["datasets"][rule["data"]["name"]] == [
        {"share_of_ceiling": 1.0, "label": "the device's measured matmul ceiling (100%)"}
    ]
    assert all(layer["encoding"]["tooltip"] for layer in (bars, labels, rule))
    titles = [tip["title"] for tip in bars["encoding"]["tooltip"]]
    assert "Achieved (TFLOP/s)" in titles and "Ceiling (TFLOP/s)" in titles and "Diagnosis" in titles
