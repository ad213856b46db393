"""Altair chart builders: each takes a tidy pandas DataFrame and returns an `alt.Chart`.

Pages only place the charts; what is drawn, its encodings, units and tooltips are decided here, so
they can be unit-tested by inspecting `chart.to_dict()`. Colours use a colour-blind-safe scheme.
With `lib/sweep_charts.py` (the sweep's charts), the only `lib` modules that import Altair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import altair as alt
import pandas as pd

from lib.comparison import GENERATED_DATA, data_label, run_names
from lib.formatting import DASH
from lib.guesses import VERDICTS
from lib.store import stored_dict

COLOR_SCHEME = "tableau10"  # colour-blind-safe categorical scheme
CHART_HEIGHT = 260  # px of a line chart's plot: with its title, legend and caption it fits a projector's screen
SERIES_LINE_PX = 15  # px a line of a run's name takes on a bar chart's axis
MIN_BAR_ROW_PX = 20  # px of a bar's row when every name fits one line (Vega-Lite's own step)
HEATMAP_ROW_PX = 30  # px of each class's row of the confusion matrix, room for its count
PRESENTER_VIEWPORT_PX = (853, 480)  # CSS px (width, height) of a 1280 x 720 projector with the browser at 150 % zoom
INK = "#000000"  # the presenter view's text, axes and reference lines: black on white
LOG_TICK_STEPS = (1, 2, 5)  # a log axis's ticks per power of ten when it spans few of them (else 1 only)
GRID_GREY = "#767676"  # the presenter view's grid: the lightest grey that keeps 4.5:1 contrast on white

AnyChart = TypeVar("AnyChart", alt.Chart, alt.LayerChart)


@dataclass(frozen=True)
class ChartStyle:
    """How big and how dark every chart is drawn: `SCREEN` at a desk, `PRESENTER` for the presenter view.

    The presenter view sizes charts for a projector of 1280 x 720 px with the browser at 150 % zoom
    (`PRESENTER_VIEWPORT_PX`): larger text, thicker lines, black text and axes, legends of run names beside
    the plot instead of below it, and plots short enough that a Results chart's whole drawing fits one screen.
    """

    plot_height: int = CHART_HEIGHT  # px of a line chart's plot
    name_line_px: int = SERIES_LINE_PX  # px a line of a run's name takes on a bar chart's axis
    min_bar_row_px: int = MIN_BAR_ROW_PX  # px of a bar's row at least, however short its run's name
    heatmap_row_px: int = HEATMAP_ROW_PX  # px of each class's row of the confusion matrix
    legend_orient: Literal["bottom", "right"] = "bottom"  # where legends of run names go
    cell_text_px: int = 11  # px of the confusion matrix's counts
    point_size: int = 90  # px² of the time-per-epoch chart's points (and, when text_px is set, every line's)
    reference_color: str = "gray"  # dashed reference lines (the 100 % rules)
    # Text, colours and lines of the whole chart; None leaves them to Streamlit's theme.
    text_px: int | None = None  # px of axis labels, legend labels and labels on marks
    title_px: int | None = None  # px of a chart's title (its subtitle and axis titles: text_px + 1)
    stroke_px: float | None = None  # px of lines and reference rules


SCREEN = ChartStyle()
PRESENTER = ChartStyle(
    plot_height=180,
    name_line_px=20,
    min_bar_row_px=36,
    heatmap_row_px=24,
    legend_orient="right",
    cell_text_px=15,
    point_size=160,
    reference_color=INK,
    text_px=16,
    title_px=22,
    stroke_px=4,
)


def styled(chart: AnyChart, style: ChartStyle) -> AnyChart:
    """The chart with the style's text sizes, colours and line widths; unchanged when the style leaves them.

    Args:
        chart: A whole chart, as a builder here makes it (not a layer of one).
        style: `SCREEN` or `PRESENTER`.

    Returns:
        The chart, configured: larger black text on white, thicker lines, a darker grid.
    """
    if style.text_px is None:
        return chart
    text, heading = style.text_px, style.text_px + 1
    return (
        chart.configure(background="white")
        .configure_axis(
            labelFontSize=text,
            titleFontSize=heading,
            labelColor=INK,
            titleColor=INK,
            domain=True,  # Streamlit's theme draws neither axis lines nor ticks
            ticks=True,
            domainColor=INK,
            tickColor=INK,
            domainWidth=2,
            tickWidth=2,
            gridColor=GRID_GREY,
            labelLimit=0,  # no label cut with "…": Streamlit's theme cuts at 100 px, sized for its 12 px labels
            labelPadding=4,  # Streamlit's theme leaves a whole rem around labels and titles: room the plot needs
            titlePadding=8,
        )
        .configure_axisX(labelAngle=0)  # epoch numbers upright (an explicit angle, as on class names, still wins)
        .configure_legend(
            labelFontSize=text,
            titleFontSize=heading,
            labelColor=INK,
            titleColor=INK,
            symbolSize=12 * text,
            labelLimit=0,
        )
        .configure_title(fontSize=style.title_px, subtitleFontSize=heading, color=INK, subtitleColor=INK, offset=8)
        .configure_text(fontSize=text)
        .configure_line(strokeWidth=style.stroke_px)
        .configure_point(size=style.point_size)
        .configure_rule(strokeWidth=style.stroke_px / 2)
    )


def log_ticks(values: pd.Series) -> list[float]:
    """The ticks (and grid lines) of a log axis: 1-2-5 steps over a span of up to two powers of ten, else 1s.

    Give them as the axis' `values`: Vega's own ticks on a log scale are one per 1..9 x 10^k, a grid too dense
    to read on a projector.
    """
    finite = [float(value) for value in values if math.isfinite(value) and value > 0]
    if not finite:
        return []
    low, high = math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))
    steps = LOG_TICK_STEPS if high - low <= 2 else (1,)
    return [step * 10.0**power for power in range(low, high + 1) for step in steps]


def chart_title(text: str, subtitle: str = "") -> alt.TitleParams:
    """A short title, and what to read from the chart as a second line.

    Vega-Lite cuts a title line wider than its chart with "…"; two short lines stay whole on a projector.

    Args:
        text: The title (a few words).
        subtitle: How to read the chart ("lower is faster"), or why something is left out; none when empty.

    Returns:
        The title to pass to `.properties(title=...)`.
    """
    return alt.TitleParams(text, subtitle=subtitle) if subtitle else alt.TitleParams(text)


def chart_layout(title: alt.TitleParams, height: int | alt.Step = CHART_HEIGHT) -> dict[str, Any]:
    """A chart's title, plot height and sizing: its width follows the page, its plot keeps its height.

    Streamlit fits a chart's whole drawing into its height unless told otherwise, so a legend below the plot
    or a two-line title would squeeze the plot away; with "fit-x" they add to the height instead.

    Args:
        title: From `chart_title`.
        height: The plot's height in px, or a `alt.Step` per bar.

    Returns:
        Keyword arguments for `.properties(...)`.
    """
    return {"title": title, "height": height, "autosize": alt.AutoSizeParams(type="fit-x", contains="padding")}


# --- Datasets page charts ---

# Tableau 10's own red, green, blue and grey, so RGB channels get their natural colours from the same palette.
CHANNEL_COLORS = {"red": "#e15759", "green": "#59a14f", "blue": "#4e79a7", "gray": "#79706e"}


def class_distribution_chart(counts: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.Chart:
    """Grouped bars of images per class, train and test side by side.

    Args:
        counts: Output of `lib.eda.class_counts` (split, class_index, class_name, count, share).
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Vertical bars, one group per class in label order, one colour per split.
    """
    class_order = counts.sort_values("class_index")["class_name"].drop_duplicates().tolist()
    chart = (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("class_name:N").title("Class").sort(class_order).axis(labelAngle=-40, labelOverlap=False),
            xOffset=alt.XOffset("split:N").sort(["train", "test"]),
            y=alt.Y("count:Q").title("Images (count)"),
            color=alt.Color("split:N").title("Split").sort(["train", "test"]).scale(scheme=COLOR_SCHEME),
            tooltip=[
                alt.Tooltip("class_name:N").title("Class"),
                alt.Tooltip("class_index:Q").title("Label"),
                alt.Tooltip("split:N").title("Split"),
                alt.Tooltip("count:Q").title("Images").format(","),
                alt.Tooltip("share:Q").title("Share of split").format(".1%"),
            ],
        )
        .properties(title="Images per class")
    )
    return styled(chart, style)


def pixel_histogram_chart(histogram: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.Chart:
    """Step lines of how often each pixel intensity occurs, one line per colour channel.

    Args:
        histogram: Output of `lib.eda.pixel_histogram` (channel, bin_start, bin_end, count, share).
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Share of pixels (%) against intensity (0-255), coloured by channel (red/green/blue, or grey).
    """
    channels = histogram["channel"].drop_duplicates().tolist()
    chart = (
        alt.Chart(histogram)
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("bin_start:Q").title("Pixel intensity (0-255)").scale(domain=[0, 256]),
            y=alt.Y("share:Q").title("Share of pixels (%)").axis(format="%"),
            color=alt.Color("channel:N")
            .title("Channel")
            .scale(domain=channels, range=[CHANNEL_COLORS.get(c, CHANNEL_COLORS["gray"]) for c in channels]),
            tooltip=[
                alt.Tooltip("channel:N").title("Channel"),
                alt.Tooltip("bin_start:Q").title("From intensity"),
                alt.Tooltip("bin_end:Q").title("To intensity (excl.)"),
                alt.Tooltip("count:Q").title("Pixels").format(","),
                alt.Tooltip("share:Q").title("Share of pixels").format(".2%"),
            ],
        )
        .properties(title="Pixel intensities")
    )
    return styled(chart, style)


# --- "What is a GPU?" page charts ---


def matmul_time_chart(timings: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.Chart:
    """Lines of the time of one N x N matrix product against N, one line per device, log-log.

    Args:
        timings: Output of `lib.matmul.sweep` (columns device, n, dtype, seconds, gflops_per_s, repeats).
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Lines with points; both axes on log scales, so the N^3 growth shows as a straight slope.
    """
    return _matmul_chart(
        timings,
        alt.Y("seconds:Q").title("Time per product (s, log scale)").scale(type="log"),
        chart_title("Time of one N x N matrix product", "Lower is faster."),
        style,
    )


def matmul_gflops_chart(timings: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.Chart:
    """Lines of achieved GFLOP/s against N, one line per device, log-log.

    Args:
        timings: Output of `lib.matmul.sweep`.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Lines with points; both axes on log scales.
    """
    return _matmul_chart(
        timings,
        alt.Y("gflops_per_s:Q").title("Throughput (GFLOP/s, log scale)").scale(type="log"),
        chart_title("Arithmetic throughput", "Higher is faster."),
        style,
    )


def _matmul_chart(timings: pd.DataFrame, y: alt.Y, title: alt.TitleParams, style: ChartStyle) -> alt.Chart:
    chart = (
        alt.Chart(timings)
        .mark_line(point=True)
        .encode(
            x=alt.X("n:Q").title("Matrix size N (N x N, log scale)").scale(type="log", base=2),
            y=y,
            color=alt.Color("device:N").title("Device").scale(scheme=COLOR_SCHEME),
            tooltip=[
                alt.Tooltip("device:N").title("Device"),
                alt.Tooltip("n:Q").title("N"),
                alt.Tooltip("dtype:N").title("Element type"),
                alt.Tooltip("seconds:Q").title("Time per product (s)").format(".3g"),
                alt.Tooltip("gflops_per_s:Q").title("Throughput (GFLOP/s)").format(",.1f"),
                alt.Tooltip("repeats:Q").title("Repeats (median taken)"),
            ],
        )
        .properties(**chart_layout(title, style.plot_height))
    )
    return styled(chart, style)


# --- Training results charts ---

RESULT_SERIES_TITLE = "Run"  # legend / axis title of the series a chart compares
# Run names join what differs with " · " ("Fashion-MNIST, as in the tutorial · gpu:0 · 5 epochs", from
# lib.comparison.run_names): axes and legends put each part on its own line, so no name is cut with "…".
SERIES_SEPARATOR = " · "
SERIES_LINES = f"split(datum.label, '{SERIES_SEPARATOR}')"
COMPILE_PHASE = "epoch 1 (includes compilation)"
STEADY_PHASE = "later epochs (steady state)"
GENERATED_ACCURACY_TEXT = "no accuracy: generated data, random labels"  # in place of a generated run's bar
_SUMMARY_COLUMNS = (
    "run_id",
    "series",
    "device",
    "preset",
    "dataset",
    "job_id",
    "synthetic",
    "batch_size",
    "num_train",
    "epochs",
    "total_s",
    "first_epoch_s",
    "steady_epoch_s",
    "samples_per_s",
    "test_accuracy",
)
_EPOCH_COLUMNS = ("run_id", "series", "device", "data", "epoch", "phase", "epoch_s", "train_loss", "train_accuracy")


def device_runs_to_frame(device_runs: list[Any], run_id: int | str = "") -> pd.DataFrame:
    """Turns `DeviceRun`s (of one finished job) into a frame shaped like the run store's.

    Args:
        device_runs: `lib.device_run.DeviceRun` objects, one per device.
        run_id: The id shown for each row; empty when the runs are not stored yet.

    Returns:
        One row per device run with the store's summary columns and a `result` dict column.
    """
    rows = []
    for run in device_runs:
        result = run.to_dict()
        rows.append({**result, "id": run_id, "result": result})
    return pd.DataFrame(rows)


def run_summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Makes the tidy per-run frame the bar charts draw, with a speedup label on every row.

    Args:
        runs: Rows from `RunStore.runs()` (or `device_runs_to_frame`), one per device run.

    Returns:
        Columns `_SUMMARY_COLUMNS` plus `data` ("real" or "generated"), `test_accuracy_text` (the accuracy,
        a dash when missing, or a note for generated data, whose `test_accuracy` is left empty), `speedup`
        (slowest total time / this one) and `speedup_text`. Each run's `series` names it by what differs
        (`lib.comparison.run_names`). Rows without a total time (failed or cancelled runs) are dropped.
    """
    extra = ["data", "test_accuracy_text", "speedup", "speedup_text"]
    if runs.empty:
        return pd.DataFrame(columns=[*_SUMMARY_COLUMNS, *extra])
    frame = pd.DataFrame(
        {
            "run_id": _column(runs, "id").fillna("").astype(str),
            "series": run_names(runs),
            **{name: _column(runs, name) for name in _SUMMARY_COLUMNS[2:]},
        }
    )
    frame["synthetic"] = frame["synthetic"].map(lambda value: data_label(value) == GENERATED_DATA)
    frame["data"] = frame["synthetic"].map(data_label)
    frame["test_accuracy"] = frame["test_accuracy"].astype(float).where(~frame["synthetic"])  # random labels
    frame["test_accuracy_text"] = [
        GENERATED_ACCURACY_TEXT if generated else DASH if pd.isna(accuracy) else f"{accuracy:.1%}"
        for generated, accuracy in zip(frame["synthetic"], frame["test_accuracy"], strict=True)
    ]
    frame = frame[frame["total_s"].notna()].reset_index(drop=True)
    return _with_speedup(frame)


def run_epochs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Makes the tidy per-epoch frame (one row per run and epoch) from the stored per-epoch lists.

    Args:
        runs: Rows from `RunStore.runs()` (or `device_runs_to_frame`) with a `result` column holding
            the `DeviceRun` as a dict (or JSON text).

    Returns:
        Columns `_EPOCH_COLUMNS`; `epoch` is 1-based, `phase` marks epoch 1 as including compilation and
        `data` says "real" or "generated" (whose accuracy means nothing).
    """
    rows = []
    for (_, run), series in zip(runs.iterrows(), run_names(runs), strict=True):
        result = stored_dict(run.get("result"))
        epoch_s = result.get("epoch_s") or []
        losses = result.get("train_loss") or []
        accuracies = result.get("train_accuracy") or []
        for index, seconds in enumerate(epoch_s):
            rows.append(
                {
                    "run_id": str(run.get("id", "")),
                    "series": series,
                    "device": run.get("device", result.get("device", "")),
                    "data": data_label(run.get("synthetic", result.get("synthetic"))),
                    "epoch": index + 1,
                    "phase": COMPILE_PHASE if index == 0 else STEADY_PHASE,
                    "epoch_s": float(seconds),
                    "train_loss": float(losses[index]) if index < len(losses) else None,
                    "train_accuracy": float(accuracies[index]) if index < len(accuracies) else None,
                }
            )
    return pd.DataFrame(rows, columns=list(_EPOCH_COLUMNS))


def total_time_chart(summary: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """Bars of total training time per run, each labelled with its speedup over the slowest.

    Args:
        summary: Output of `run_summary_frame`.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Horizontal bars (seconds) with a text label such as "7.3x faster" at the end of each bar.
    """
    base = alt.Chart(summary).encode(
        y=_series_y().sort("-x"),
        x=alt.X("total_s:Q").title("Total training time (s)"),
        tooltip=_summary_tooltip(),
    )
    bars = base.mark_bar().encode(color=_series_color().legend(None))
    labels = base.mark_text(align="left", dx=4).encode(text=alt.Text("speedup_text:N"))
    title = chart_title("Total training time", "Shorter is faster.")
    return styled(alt.layer(bars, labels).properties(**chart_layout(title, _bar_rows(summary["series"], style))), style)


def epoch_time_chart(epochs: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """Lines of time per epoch per run; epoch 1's point is drawn differently as it includes compilation.

    Args:
        epochs: Output of `run_epochs_frame`.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Lines (seconds per epoch against epoch number) with point shapes marking epoch 1.
    """
    tooltip = [
        alt.Tooltip("series:N").title(RESULT_SERIES_TITLE),
        alt.Tooltip("epoch:O").title("Epoch"),
        alt.Tooltip("epoch_s:Q").title("Epoch time (s)").format(".3f"),
        alt.Tooltip("phase:N").title("Phase"),
    ]
    base = alt.Chart(epochs).encode(
        x=alt.X("epoch:O").title("Epoch"),
        y=alt.Y("epoch_s:Q").title("Time per epoch (s)"),
        color=_series_color(style),
        tooltip=tooltip,
    )
    lines = base.mark_line()
    points = base.mark_point(size=style.point_size, filled=True).encode(
        shape=alt.Shape("phase:N")
        .title("Phase")
        .scale(domain=[COMPILE_PHASE, STEADY_PHASE])
        # Beside the run names there is no room for a second legend: below, in one row.
        .legend(
            orient="bottom" if style.legend_orient == "right" else style.legend_orient,
            direction="horizontal" if style.legend_orient == "right" else "vertical",
            labelLimit=400,
        ),
    )
    title = chart_title("Time per epoch", "Epoch 1 includes compilation.")
    height = _plot_height(epochs["series"], style)
    return styled(alt.layer(lines, points).properties(**chart_layout(title, height)), style)


def throughput_chart(summary: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """Bars of steady-state training throughput per run.

    Args:
        summary: Output of `run_summary_frame`.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Horizontal bars in samples per second, each labelled with its value.
    """
    base = alt.Chart(summary).encode(
        y=_series_y().sort("-x"),
        x=alt.X("samples_per_s:Q").title("Throughput (samples/s)"),
        tooltip=_summary_tooltip(),
    )
    bars = base.mark_bar().encode(color=_series_color().legend(None))
    labels = base.mark_text(align="left", dx=4).encode(text=alt.Text("samples_per_s:Q").format(",.0f"))
    title = chart_title("Training throughput", "Longer is faster.")
    return styled(alt.layer(bars, labels).properties(**chart_layout(title, _bar_rows(summary["series"], style))), style)


def training_curve_chart(epochs: pd.DataFrame, metric: str, style: ChartStyle = SCREEN) -> alt.Chart:
    """Lines of a training metric per epoch per run.

    Generated data has random labels, so its accuracy means nothing: the accuracy chart leaves those runs
    out and says so in its title; their loss is drawn, with the data named in the tooltip.

    Args:
        epochs: Output of `run_epochs_frame`.
        metric: "train_loss" or "train_accuracy".
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        One line with points per run.

    Raises:
        ValueError: `metric` is neither of the two.
    """
    titles = {"train_loss": "Training loss", "train_accuracy": "Training accuracy"}
    if metric not in titles:
        raise ValueError(f"metric must be one of {sorted(titles)}, not {metric!r}.")
    value_format = ".4f" if metric == "train_loss" else ".1%"
    y = alt.Y(f"{metric}:Q").title(titles[metric])
    subtitle = ""
    if metric == "train_accuracy":
        y = y.axis(format="%")
        generated = epochs["data"] == GENERATED_DATA if "data" in epochs else pd.Series(False, index=epochs.index)
        if generated.any():
            epochs = epochs[~generated]
            subtitle = "Real data only: generated data has random labels."
    chart = (
        alt.Chart(epochs)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:O").title("Epoch"),
            y=y,
            color=_series_color(style),
            tooltip=[
                alt.Tooltip("series:N").title(RESULT_SERIES_TITLE),
                alt.Tooltip("epoch:O").title("Epoch"),
                alt.Tooltip(f"{metric}:Q").title(titles[metric]).format(value_format),
                alt.Tooltip("data:N").title("Data"),
            ],
        )
        .properties(
            **chart_layout(chart_title(f"{titles[metric]} per epoch", subtitle), _plot_height(epochs["series"], style))
        )
    )
    return styled(chart, style)


def accuracy_on_test_set_chart(summary: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """Bars of test-set accuracy per run, on a 0-100 % scale; generated-data runs get a note, not a bar.

    Args:
        summary: Output of `run_summary_frame`.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Horizontal bars labelled with the accuracy in percent; a run on generated data (random labels) has
        no bar, only the label `GENERATED_ACCURACY_TEXT` at 0, and the title says why.
    """
    generated = summary["synthetic"].astype(bool)
    frame = summary[summary["test_accuracy"].notna() | generated].copy()
    frame["label_x"] = frame["test_accuracy"].fillna(0.0)
    subtitle = "On images the model never saw."
    if generated.any():
        subtitle = "No bar for generated data: its labels are random."
    base = alt.Chart(frame).encode(y=_series_y(), tooltip=_summary_tooltip())
    bars = base.mark_bar().encode(
        x=alt.X("test_accuracy:Q").title("Test accuracy (%)").scale(domain=[0, 1]).axis(format="%"),
        color=_series_color().legend(None),
    )
    labels = base.mark_text(align="left", dx=4).encode(x=alt.X("label_x:Q"), text=alt.Text("test_accuracy_text:N"))
    layout = chart_layout(chart_title("Test accuracy", subtitle), _bar_rows(frame["series"], style))
    return styled(alt.layer(bars, labels).properties(**layout), style)


def _series_y() -> alt.Y:
    """The bar charts' run axis: each run's name on as many lines as it has parts, whole."""
    return alt.Y("series:N").title(RESULT_SERIES_TITLE).axis(labelExpr=SERIES_LINES, labelLimit=0)


def _bar_rows(series: pd.Series, style: ChartStyle) -> alt.Step:
    """The height of each bar's row: room for its run's name, one line per part."""
    lines = max((str(name).count(SERIES_SEPARATOR) + 1 for name in series), default=1)
    return alt.Step(max(style.min_bar_row_px, style.name_line_px * lines + 4))


def _plot_height(series: pd.Series, style: ChartStyle) -> int:
    """A line chart's plot height: the style's, or taller when the run names' legend beside it needs more."""
    if style.legend_orient != "right":
        return style.plot_height
    names = pd.unique(series.astype(str))
    lines = sum(name.count(SERIES_SEPARATOR) + 1 for name in names)
    legend_px = style.name_line_px * (lines + 2) + 4 * len(names)  # the names, and the legend's title
    return max(style.plot_height, legend_px)


def _series_color(style: ChartStyle = SCREEN) -> alt.Color:
    """One colour per run; the legend, when shown, goes below (or beside) the plot with each name whole."""
    return (
        alt.Color("series:N")
        .title(RESULT_SERIES_TITLE)
        .scale(scheme=COLOR_SCHEME)
        .legend(orient=style.legend_orient, direction="vertical", labelExpr=SERIES_LINES, labelLimit=0)
    )


def _summary_tooltip() -> list[alt.Tooltip]:
    return [
        alt.Tooltip("series:N").title(RESULT_SERIES_TITLE),
        alt.Tooltip("device:N").title("Device"),
        alt.Tooltip("total_s:Q").title("Total time (s)").format(".2f"),
        alt.Tooltip("first_epoch_s:Q").title("Epoch 1 (s)").format(".2f"),
        alt.Tooltip("steady_epoch_s:Q").title("Steady epoch (s)").format(".3f"),
        alt.Tooltip("samples_per_s:Q").title("Throughput (samples/s)").format(",.0f"),
        alt.Tooltip("test_accuracy_text:N").title("Test accuracy"),
        alt.Tooltip("data:N").title("Data"),
        alt.Tooltip("speedup_text:N").title("Speedup"),
    ]


def _with_speedup(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds how many times faster than the slowest run each run finished, as a number and a label."""
    frame = frame.copy()
    if frame.empty:
        frame["speedup"] = pd.Series(dtype=float)
        frame["speedup_text"] = pd.Series(dtype=str)
        return frame
    slowest = frame["total_s"].astype(float).max()
    frame["speedup"] = slowest / frame["total_s"].astype(float)
    frame["speedup_text"] = [
        "baseline (slowest)" if seconds == slowest else f"{speedup:.1f}x faster"
        for speedup, seconds in zip(frame["speedup"], frame["total_s"], strict=True)
    ]
    return frame


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    """A column of the runs frame, or an all-missing column when the frame lacks it."""
    if name in runs:
        return runs[name].reset_index(drop=True)
    return pd.Series([None] * len(runs), dtype=object)


# --- Data-parallel scaling charts ---


def scaling_charts(df: pd.DataFrame, style: ChartStyle = SCREEN) -> tuple[alt.Chart, alt.LayerChart]:
    """Steady epoch time and scaling efficiency against the number of GPUs, one line per configuration.

    Args:
        df: Output of `lib.parallel.scaling_frame` (config, num_gpus, epoch_s, speedup, efficiency, runs).
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Two charts: time per epoch (s) and efficiency (%, with a dashed 100% line meaning perfect scaling),
        both against the number of GPUs. Two charts, not one concatenated chart: Vega-Lite sizes the
        panels of a concatenated chart on their own, wider than a narrow page.
    """
    tooltip = [
        alt.Tooltip("config:N").title("Configuration"),
        alt.Tooltip("num_gpus:Q").title("GPUs"),
        alt.Tooltip("epoch_s:Q").title("Steady epoch (s)").format(".3f"),
        alt.Tooltip("speedup:Q").title("Speedup over 1 GPU").format(".2f"),
        alt.Tooltip("efficiency:Q").title("Scaling efficiency").format(".0%"),
        alt.Tooltip("runs:Q").title("Runs (median taken)"),
    ]
    x = alt.X("num_gpus:Q").title("Number of GPUs").axis(tickMinStep=1, format="d")
    # Configuration labels are long ("fashion-tuned: [500, 500], batch 1024, tensorflow"): whole below the plot.
    color = (
        alt.Color("config:N")
        .title("Configuration")
        .scale(scheme=COLOR_SCHEME)
        .legend(orient="bottom", direction="vertical", labelLimit=0)
    )
    base = alt.Chart(df).encode(x=x, color=color, tooltip=tooltip)
    epoch = (
        base.mark_line(point=True)
        .encode(y=alt.Y("epoch_s:Q").title("Time per epoch (s)"))
        .properties(**chart_layout(chart_title("Time per epoch", "Lower is faster."), style.plot_height))
    )
    ideal = (
        alt.Chart(pd.DataFrame({"efficiency": [1.0], "label": ["perfect scaling (100%)"]}))
        .mark_rule(strokeDash=[4, 4], color=style.reference_color)
        .encode(y="efficiency:Q", tooltip=[alt.Tooltip("label:N").title("Reference")])
    )
    efficiency = base.mark_line(point=True).encode(
        y=alt.Y("efficiency:Q").title("Efficiency (%)").axis(format="%").scale(domainMin=0)
    )
    efficiency_panel = alt.layer(efficiency, ideal).properties(
        **chart_layout(chart_title("Scaling efficiency", "100% is perfect."), style.plot_height)
    )
    return styled(epoch, style), styled(efficiency_panel, style)


# --- Hardware efficiency charts ---

CEILING_NOT_MEASURED = "ceiling not measured on this server"


def hardware_efficiency_chart(df: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """Bars of each run's share of its device's measured matmul ceiling, with a rule at 100 %.

    Args:
        df: Output of `lib.diagnosis.efficiency_frame` (series, device, precision, achieved_tflops,
            ceiling_tflops, share_of_ceiling, compile_share_of_first_epoch, ..., diagnosis); an optional
            `compile_share_of_run` column (0..1) is shown in the tooltip.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Horizontal bars (% of the ceiling) labelled with the share, or with `CEILING_NOT_MEASURED` at 0
        for runs whose device has no measured ceiling, and a dashed rule at the ceiling (100 %).
    """
    frame = df.copy()
    if "compile_share_of_run" not in frame:
        frame["compile_share_of_run"] = None
    share = pd.to_numeric(frame["share_of_ceiling"], errors="coerce")
    frame["label_x"] = share.fillna(0.0)
    frame["share_text"] = [
        CEILING_NOT_MEASURED if pd.isna(value) else f"{value:.1%} of the {precision} ceiling"
        for value, precision in zip(share, frame["precision"], strict=True)
    ]
    tooltip = [
        alt.Tooltip("series:N").title(RESULT_SERIES_TITLE),
        alt.Tooltip("device:N").title("Device"),
        alt.Tooltip("precision:N").title("Ceiling precision"),
        alt.Tooltip("achieved_tflops:Q").title("Achieved (TFLOP/s)").format(".4f"),
        alt.Tooltip("ceiling_tflops:Q").title("Ceiling (TFLOP/s)").format(".4f"),
        alt.Tooltip("share_text:N").title("Share of ceiling"),
        alt.Tooltip("compile_share_of_run:Q").title("Compilation (% of run)").format(".0%"),
        alt.Tooltip("diagnosis:N").title("Diagnosis"),
    ]
    base = alt.Chart(frame).encode(y=_series_y(), tooltip=tooltip)
    bars = base.mark_bar().encode(
        x=alt.X("share_of_ceiling:Q").title("Achieved FLOP/s (% of the device's matmul ceiling)").axis(format="%"),
        color=_series_color().legend(None),
    )
    labels = base.mark_text(align="left", dx=4).encode(x=alt.X("label_x:Q"), text=alt.Text("share_text:N"))
    ceiling = (
        alt.Chart(pd.DataFrame({"share_of_ceiling": [1.0], "label": ["the device's measured matmul ceiling (100%)"]}))
        .mark_rule(strokeDash=[4, 4], color=style.reference_color)
        .encode(x="share_of_ceiling:Q", tooltip=[alt.Tooltip("label:N").title("Reference")])
    )
    title = chart_title("How close to the hardware", "Longer is closer.")
    layout = chart_layout(title, _bar_rows(frame["series"], style))
    return styled(alt.layer(bars, labels, ceiling).properties(**layout), style)


# --- Results page: what the model learned ---

HEATMAP_SCHEME = "blues"  # one-hue sequential scheme: light to dark reads the same with any colour vision


def confusion_matrix_chart(frame: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """A heatmap of one run's test images per true class (rows) and predicted class (columns), counts in the cells.

    Args:
        frame: Output of `lib.comparison.confusion_frame` (true_class, predicted_class, count, share_of_true, ...).
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Cells coloured by their share of the true class's images (a square-root scale, so small mix-ups
        show beside the dark diagonal), each labelled with its count; class names on both axes in label order.
    """
    order = frame.sort_values("true_index")["true_class"].drop_duplicates().tolist()
    base = alt.Chart(frame).encode(
        # Every class named: Streamlit's theme drops labels it finds overlapping (every other one on a projector).
        x=alt.X("predicted_class:N")
        .title("Predicted class")
        .sort(order)
        .axis(labelAngle=-40, orient="top", labelOverlap=False),
        y=alt.Y("true_class:N").title("True class").sort(order).axis(labelOverlap=False),
        tooltip=[
            alt.Tooltip("true_class:N").title("True class"),
            alt.Tooltip("predicted_class:N").title("Predicted class"),
            alt.Tooltip("count:Q").title("Test images").format(","),
            alt.Tooltip("share_of_true:Q").title("Share of the true class").format(".1%"),
            alt.Tooltip("outcome:N").title("Outcome"),
        ],
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share_of_true:Q")
        .title("Share of the true class")
        .scale(scheme=HEATMAP_SCHEME, type="sqrt", domain=[0, 1])
        .legend(format="%", orient=style.legend_orient)
    )
    counts = base.mark_text(fontSize=style.cell_text_px).encode(
        text=alt.Text("count:Q").format(","),
        color=alt.condition("datum.share_of_true > 0.5", alt.value("white"), alt.value("black")),
    )
    title = chart_title("Confusion matrix", "Rows: the true class. The diagonal is right; dark cells off it: mix-ups.")
    return styled(alt.layer(cells, counts).properties(**chart_layout(title, alt.Step(style.heatmap_row_px))), style)


# --- Class board: predict, then reveal ---


def guesses_chart(frame: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """The class's guesses against their measurements: one dot per guess, no names, on log scales.

    Args:
        frame: `lib.guesses.class_guesses_frame` output (question, guess, measured, verdict), not empty.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Dots (measured across, guessed up, coloured by verdict) over the dashed line where a guess equals its
        measurement: above the line a guess was too high, below it too low.
    """
    low = float(min(frame["guess"].min(), frame["measured"].min()))
    high = float(max(frame["guess"].max(), frame["measured"].max()))
    exact = pd.DataFrame({"measured": [low, high], "guess": [low, high]})
    x = alt.X("measured:Q").title("Measured (times faster)").scale(type="log")
    y = alt.Y("guess:Q").title("Guessed (times faster)").scale(type="log")
    line = (
        alt.Chart(exact)
        .mark_line(strokeDash=[6, 4], color=style.reference_color)
        .encode(x=x, y=y, tooltip=[alt.Tooltip("measured:Q").title("Guess = measurement").format(".3~g")])
    )
    dots = (
        alt.Chart(frame)
        .mark_circle(size=style.point_size * 2, opacity=0.85)
        .encode(
            x=x,
            y=y,
            color=alt.Color("verdict:N")
            .title("Guess")
            .scale(domain=list(VERDICTS), scheme=COLOR_SCHEME)
            .legend(orient=style.legend_orient),
            shape=alt.Shape("question:N").title("Question").legend(orient=style.legend_orient),
            tooltip=[
                alt.Tooltip("question:N").title("Question"),
                alt.Tooltip("guess:Q").title("Guessed (times faster)").format(".3~g"),
                alt.Tooltip("measured:Q").title("Measured (times faster)").format(".3~g"),
                alt.Tooltip("verdict:N").title("Guess"),
            ],
        )
    )
    title = chart_title("Guessed against measured", "On the dashed line a guess was exact; above it, too high.")
    return styled(alt.layer(line, dots).properties(**chart_layout(title, style.plot_height)), style)
