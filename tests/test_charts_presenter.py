"""The presenter view's charts (issue 15, point 3): every builder in `lib.charts` draws larger black text on
white, thicker lines and plots sized for a projector (1280 x 720 at 150 % zoom); `SCREEN` leaves the charts
as Streamlit's theme draws them."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from lib import charts, comparison, eda
from lib.datasets import DATASETS, synthetic_dataset
from lib.device_run import DeviceRun
from tests.helpers.runs import device_run

# Streamlit's theme draws axis labels at 12 px and chart titles at 16 px (0.75 rem and 1 rem).
STREAMLIT_LABEL_PX = 12
STREAMLIT_TITLE_PX = 16
RUN_NAME_LINES = 3  # "Fashion-MNIST, as in the tutorial · gpu:0 · 5 epochs": a run's name on three lines


def charted_run(device: str, epoch_s: list[float]) -> DeviceRun:
    """A two-epoch run with no FLOP rate and no test loss: only what the charts draw."""
    return device_run(
        device,
        epoch_s,
        num_test=100,
        achieved_flops_per_s=None,
        train_loss=[0.9, 0.5],
        train_accuracy=[0.6, 0.7],
        test_loss=None,
    )


def runs() -> pd.DataFrame:
    frame = charts.device_runs_to_frame([charted_run("cpu:0", [8.0, 7.0]), charted_run("gpu:0", [2.0, 0.5])])
    frame["id"] = [1, 2]
    return frame


def summary() -> pd.DataFrame:
    return charts.run_summary_frame(runs())


def epochs() -> pd.DataFrame:
    return charts.run_epochs_frame(runs())


def matmul_timings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device": ["cpu:0", "cpu:0", "gpu:0", "gpu:0"],
            "n": [256, 1024, 256, 1024],
            "dtype": "float32",
            "seconds": [1e-4, 5e-3, 5e-5, 2e-4],
            "gflops_per_s": [300.0, 400.0, 600.0, 10000.0],
            "repeats": 5,
        }
    )


def efficiency() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series": ["cpu:0", "gpu:0"],
            "device": ["cpu:0", "gpu:0"],
            "precision": ["float32", "float32"],
            "achieved_tflops": [0.1, 2.0],
            "ceiling_tflops": [1.0, None],
            "share_of_ceiling": [0.1, None],
            "diagnosis": ["memory bound", "not measured"],
        }
    )


def scaling() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "config": "fashion-tuned",
            "num_gpus": [1, 2],
            "epoch_s": [1.0, 0.6],
            "speedup": [1.0, 1.67],
            "efficiency": [1.0, 0.83],
            "runs": [1, 1],
        }
    )


def confusion() -> pd.DataFrame:
    names = DATASETS["fashion_mnist"].class_names
    return comparison.confusion_frame(
        [[5 if t == p else 1 for p in range(len(names))] for t in range(len(names))], names
    )


def dataset():
    return synthetic_dataset("fashion_mnist", 100, 20)


# Every builder, as a page calls it, with the style as its last argument.
BUILDERS: dict[str, Callable[[charts.ChartStyle], object]] = {
    "class_distribution": lambda style: charts.class_distribution_chart(eda.class_counts(dataset()), style),
    "pixel_histogram": lambda style: charts.pixel_histogram_chart(eda.pixel_histogram(dataset().x_train, 8), style),
    "matmul_time": lambda style: charts.matmul_time_chart(matmul_timings(), style),
    "matmul_gflops": lambda style: charts.matmul_gflops_chart(matmul_timings(), style),
    "total_time": lambda style: charts.total_time_chart(summary(), style),
    "epoch_time": lambda style: charts.epoch_time_chart(epochs(), style),
    "throughput": lambda style: charts.throughput_chart(summary(), style),
    "loss": lambda style: charts.training_curve_chart(epochs(), "train_loss", style),
    "accuracy_curve": lambda style: charts.training_curve_chart(epochs(), "train_accuracy", style),
    "test_accuracy": lambda style: charts.accuracy_on_test_set_chart(summary(), style),
    "scaling_epoch": lambda style: charts.scaling_charts(scaling(), style)[0],
    "scaling_efficiency": lambda style: charts.scaling_charts(scaling(), style)[1],
    "hardware": lambda style: charts.hardware_efficiency_chart(efficiency(), style),
    "confusion": lambda style: charts.confusion_matrix_chart(confusion(), style),
}


def layers(spec: dict) -> list[dict]:
    """The spec and each of its layers."""
    return [spec, *spec.get("layer", [])]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_presenter_charts_have_larger_black_text_and_thicker_lines(name):
    config = BUILDERS[name](charts.PRESENTER).to_dict()["config"]
    assert config["axis"]["labelFontSize"] >= 1.25 * STREAMLIT_LABEL_PX
    assert config["title"]["fontSize"] >= 1.25 * STREAMLIT_TITLE_PX
    assert config["legend"]["labelFontSize"] == config["text"]["fontSize"] == charts.PRESENTER.text_px
    for color in (config["axis"]["labelColor"], config["axis"]["titleColor"], config["title"]["color"]):
        assert color == charts.INK
    assert config["axis"]["domain"] is True and config["axis"]["gridColor"] == charts.GRID_GREY
    assert config["line"]["strokeWidth"] >= 3
    assert config["background"] == "white"


@pytest.mark.parametrize("name", list(BUILDERS))
def test_screen_charts_are_left_to_streamlits_theme(name):
    config = BUILDERS[name](charts.SCREEN).to_dict().get("config", {})
    assert set(config) <= {"view"}  # Altair's own default: the size of a chart that sets none


@pytest.mark.parametrize("name", ["epoch_time", "loss", "accuracy_curve", "matmul_time", "scaling_epoch"])
def test_presenter_line_charts_are_short_enough_for_a_projector_screen(name):
    spec = BUILDERS[name](charts.PRESENTER).to_dict()
    assert spec["height"] == charts.PRESENTER.plot_height < charts.CHART_HEIGHT
    # The plot, two title lines and the axis below take at most three quarters of the screen's height.
    title_and_axis_px = 2 * charts.PRESENTER.title_px + 4 * charts.PRESENTER.text_px
    assert spec["height"] + title_and_axis_px <= 0.75 * charts.PRESENTER_VIEWPORT_PX[1]


def test_presenter_run_names_go_beside_the_plot_and_their_bars_get_taller_rows():
    runs_three_lines = runs().assign(batch_size=[32, 1024], epochs=[5, 10])
    named = charts.run_summary_frame(runs_three_lines)
    lines = max(name.count(charts.SERIES_SEPARATOR) + 1 for name in named["series"])
    assert lines == RUN_NAME_LINES
    screen = charts.total_time_chart(named, charts.SCREEN).to_dict()["height"]["step"]
    presenter = charts.total_time_chart(named, charts.PRESENTER).to_dict()["height"]["step"]
    assert presenter == charts.PRESENTER.name_line_px * lines + 4 > screen
    spec = charts.epoch_time_chart(charts.run_epochs_frame(runs_three_lines), charts.PRESENTER).to_dict()
    legends = {
        channel: layer["encoding"][channel]["legend"]
        for layer in layers(spec)
        for channel in ("color", "shape")
        if channel in layer.get("encoding", {})
    }
    assert legends["color"]["orient"] == "right"  # the run names, one part a line, beside the plot
    assert (legends["shape"]["orient"], legends["shape"]["direction"]) == ("bottom", "horizontal")
    # The plot is as tall as the names beside it: two runs of three lines, and the legend's title.
    assert spec["height"] == max(charts.PRESENTER.plot_height, charts.PRESENTER.name_line_px * (2 * lines + 2) + 8)


def test_presenter_confusion_matrix_fits_a_screen_with_readable_counts():
    spec = charts.confusion_matrix_chart(confusion(), charts.PRESENTER).to_dict()
    counts = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert counts["mark"]["fontSize"] == charts.PRESENTER.cell_text_px > 11
    classes = len(DATASETS["fashion_mnist"].class_names)
    assert spec["height"]["step"] * classes <= charts.PRESENTER_VIEWPORT_PX[1] / 2


def test_presenter_reference_lines_are_black():
    rules = [
        layer
        for layer in layers(charts.hardware_efficiency_chart(efficiency(), charts.PRESENTER).to_dict())
        if layer.get("mark", {}).get("type") == "rule"
    ]
    assert [rule["mark"]["color"] for rule in rules] == [charts.INK]
