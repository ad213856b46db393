"""Unit tests of the sweep's chart specs (lib.sweep_charts), built from lib.sweep's frames."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.charts import COLOR_SCHEME, PRESENTER, SCREEN, ChartStyle
from lib.sweep import speedup_points, stored_gpu_runs, sweep_crossovers, sweep_points
from lib.sweep_charts import AS_FAST_LABEL, STORED_RUN_LABEL, sweep_speedup_chart, sweep_throughput_chart

BATCHES = (32, 128, 512, 2048)


def sweep_frame(gpu_start: float = 200.0) -> pd.DataFrame:
    """A finished sweep: cpu:0 at 1,000 * (b/32)^0.3 samples/s, gpu:0 at gpu_start * (b/32)."""
    rows = [("cpu:0", size, 1000.0 * (size / 32) ** 0.3) for size in BATCHES]
    rows += [("gpu:0", size, gpu_start * (size / 32)) for size in BATCHES]
    return pd.DataFrame(
        [
            {
                "device": device,
                "batch_size": size,
                "samples_per_s": rate,
                "steady_epoch_s": 4096 / rate,
                "status": "done",
            }
            for device, size, rate in rows
        ]
    )


def stored_frame() -> pd.DataFrame:
    runs = pd.DataFrame(
        {
            "status": ["done"],
            "device": ["gpu:0"],
            "batch_size": [1024],
            "samples_per_s": [250000.0],
            "dataset": ["fashion_mnist"],
            "hidden_units": [[500, 500]],
            "hardware": [{"node": "machine-1"}],
            "backend": ["jax"],
            "synthetic": [False],
            "created_at": pd.to_datetime(["2026-01-02T03:04:05Z"]),
        }
    )
    return stored_gpu_runs(runs, "fashion_mnist", [500, 500])


def layer_data(spec: dict, layer: dict) -> list[dict]:
    return spec["datasets"][layer["data"]["name"]]


def test_throughput_chart_is_log2_in_batch_and_log_in_throughput():
    points = sweep_points(sweep_frame())
    spec = sweep_throughput_chart(points).to_dict()
    (lines,) = spec["layer"]
    x, y = lines["encoding"]["x"], lines["encoding"]["y"]
    assert x["scale"] == {"type": "log", "base": 2}
    assert x["axis"]["values"] == list(BATCHES)
    assert y["scale"]["type"] == "log"
    assert "samples/s" in y["title"] and "log" in y["title"]
    assert "log" in spec["title"]["subtitle"]
    assert lines["mark"] == {"type": "line", "point": True}
    assert lines["encoding"]["color"]["scale"]["scheme"] == COLOR_SCHEME
    assert lines["encoding"]["tooltip"]


def test_throughput_chart_draws_stored_gpu_runs_only_when_given():
    points = sweep_points(sweep_frame()).query("device == 'cpu:0'")
    assert len(sweep_throughput_chart(points, stored_gpu=None).to_dict()["layer"]) == 1
    assert len(sweep_throughput_chart(points, stored_gpu=stored_frame().iloc[:0]).to_dict()["layer"]) == 1
    spec = sweep_throughput_chart(points, stored_gpu=stored_frame()).to_dict()
    _, stored = spec["layer"]
    assert stored["mark"]["type"] == "point" and stored["mark"]["filled"] is False
    assert stored["encoding"]["shape"]["scale"]["domain"] == [STORED_RUN_LABEL]
    assert stored["encoding"]["x"]["scale"] == {"type": "log", "base": 2}
    tips = {tip["field"]: tip for tip in stored["encoding"]["tooltip"]}
    assert {"machine", "created_at", "samples_per_s", "batch_size"} <= set(tips)
    assert tips["created_at"]["type"] == "temporal"
    (row,) = layer_data(spec, stored)
    assert (row["machine"], row["source"], row["created_at"][:10]) == ("machine-1", STORED_RUN_LABEL, "2026-01-02")


def speedup_spec(gpu_start: float = 200.0, style: ChartStyle = SCREEN) -> dict:
    speedups = speedup_points(sweep_points(sweep_frame(gpu_start)))
    return sweep_speedup_chart(speedups, sweep_crossovers(speedups), style).to_dict()


def test_speedup_chart_has_a_dashed_rule_at_1x():
    spec = speedup_spec()
    lines, rule, label = spec["layer"][:3]
    assert lines["encoding"]["y"]["field"] == "speedup"
    assert lines["encoding"]["x"]["scale"] == {"type": "log", "base": 2}
    assert rule["mark"]["type"] == "rule" and rule["mark"]["strokeDash"]
    assert layer_data(spec, rule) == [{"speedup": 1.0, "label": AS_FAST_LABEL}]
    assert label["mark"]["type"] == "text" and label["encoding"]["text"]["field"] == "label"


def test_speedup_chart_marks_the_interpolated_crossover():
    spec = speedup_spec()
    crossover_rule, crossover_label = spec["layer"][3:]
    assert crossover_rule["mark"]["type"] == "rule"
    assert crossover_rule["encoding"]["x"]["field"] == "batch_size"
    (row,) = layer_data(spec, crossover_rule)
    assert row["batch_size"] == pytest.approx(32 * 5 ** (1 / 0.7))  # where 200 (b/32) meets 1,000 (b/32)^0.3
    assert row["label"] == "gpu:0 overtakes cpu:0 at about batch 320"
    assert crossover_label["encoding"]["text"]["field"] == "label"


def test_speedup_chart_without_a_crossover_has_no_crossover_rule():
    spec = speedup_spec(gpu_start=5000.0)  # faster at every batch size
    assert len(spec["layer"]) == 3
    assert not [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule" and "x" in layer["encoding"]]


def test_every_mark_has_a_tooltip():
    specs = [speedup_spec(), sweep_throughput_chart(sweep_points(sweep_frame()), stored_frame()).to_dict()]
    for spec in specs:
        assert all(layer["encoding"]["tooltip"] for layer in spec["layer"])


def test_presenter_style_configures_both_charts():
    points = sweep_points(sweep_frame())
    throughput = sweep_throughput_chart(points, style=PRESENTER).to_dict()
    speedup = speedup_spec(style=PRESENTER)
    for spec in (throughput, speedup):
        assert spec["config"]["axis"]["labelFontSize"] == PRESENTER.text_px
        assert spec["height"] == PRESENTER.plot_height


def test_a_log_axis_has_a_readable_grid_that_covers_every_value_drawn():
    points = sweep_points(sweep_frame(gpu_start=1000.0))  # 1,000 to 64,000 samples/s: within 10^3..10^5
    (lines,) = sweep_throughput_chart(points).to_dict()["layer"]
    ticks = lines["encoding"]["y"]["axis"]["values"]
    assert ticks == [1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000]  # 1-2-5 steps

    with_stored = sweep_throughput_chart(points, stored_frame()).to_dict()["layer"][0]
    assert with_stored["encoding"]["y"]["axis"]["values"] == [1000, 10_000, 100_000, 1_000_000]  # 250,000 too
