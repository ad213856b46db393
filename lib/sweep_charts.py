"""Charts of "Where does the GPU win?": a batch-size sweep in Altair, built from `lib.sweep`'s frames.

Throughput and speedup against batch size, both on a log2 batch axis labelled with the measured sizes.
They follow `lib.charts`' conventions (its `ChartStyle`, titles with a subtitle saying how to read the chart,
tooltips on every mark, units in axis titles, a colour-blind-safe scheme); with `lib.charts`, the only `lib`
module that imports Altair.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from lib.charts import COLOR_SCHEME, SCREEN, ChartStyle, chart_layout, chart_title, log_ticks, styled
from lib.sweep import Crossover, crossover_frame

STORED_RUN_LABEL = "stored GPU run"  # the legend entry of stored GPU runs drawn beside a CPU-only sweep
AS_FAST_LABEL = "as fast as the CPU"  # the dashed rule at 1x
CROSSOVER_LABEL_STEP_PX = 16  # px between the labels of several crossovers, so they do not overlap


def sweep_throughput_chart(
    points: pd.DataFrame, stored_gpu: pd.DataFrame | None = None, style: ChartStyle = SCREEN
) -> alt.LayerChart:
    """Throughput against batch size, one line per device; stored GPU runs as hollow diamonds when given.

    Args:
        points: `lib.sweep.sweep_points` output (device, batch_size, samples_per_s, steady_epoch_s).
        stored_gpu: `lib.sweep.stored_gpu_runs` output, for a server without a GPU; None or empty draws none.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Lines with points on log scales (samples/s against batch size, log2), the batch axis labelled with
        the measured sizes; a layer of stored GPU runs, with its own legend entry, when there are some.
    """
    x = _batch_x(points["batch_size"])
    stored = () if stored_gpu is None else (stored_gpu["samples_per_s"],)
    shown = pd.concat([points["samples_per_s"], *stored])
    y = _log_y("samples_per_s:Q", "Throughput (samples/s, log scale)", shown)
    lines = _device_lines(
        points,
        x,
        y,
        [
            alt.Tooltip("samples_per_s:Q").title("Throughput (samples/s)").format(",.0f"),
            alt.Tooltip("steady_epoch_s:Q").title("Steady epoch (s)").format(".3f"),
        ],
        style,
    )
    layers = [lines]
    if stored_gpu is not None and not stored_gpu.empty:
        layers.append(_stored_runs_layer(stored_gpu, x, y, style))
    title = chart_title("Throughput against batch size", "Higher is faster; both axes are log scales.")
    return styled(alt.layer(*layers).properties(**chart_layout(title, style.plot_height)), style)


def sweep_speedup_chart(
    speedups: pd.DataFrame, crossovers: Sequence[Crossover], style: ChartStyle = SCREEN
) -> alt.LayerChart:
    """Each device's speedup over the CPU against batch size, with the 1x line and the crossovers marked.

    Args:
        speedups: `lib.sweep.speedup_points` output (device, baseline, batch_size, speedup, ...).
        crossovers: `lib.sweep.sweep_crossovers` output; those that cross 1x get a vertical rule and a label.
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        Lines with points (speedup on a log scale, batch size on a log2 scale), a dashed rule at 1x labelled
        `AS_FAST_LABEL`, and a rule at each interpolated crossover batch size labelled with where it is.
    """
    x = _batch_x(speedups["batch_size"])
    y = _log_y("speedup:Q", "Speedup over the CPU (times, log scale)", speedups["speedup"])
    lines = _device_lines(
        speedups,
        x,
        y,
        [
            alt.Tooltip("speedup:Q").title("Times faster than the CPU").format(".3~g"),
            alt.Tooltip("samples_per_s:Q").title("Throughput (samples/s)").format(",.0f"),
            alt.Tooltip("baseline:N").title("CPU device"),
            alt.Tooltip("baseline_samples_per_s:Q").title("CPU throughput (samples/s)").format(",.0f"),
        ],
        style,
    )
    layers = [lines, *_as_fast_layers(style)]
    crossings = crossover_frame(crossovers)
    if not crossings.empty:
        layers += _crossover_layers(crossings, x, style)
    title = chart_title("Speedup over the CPU", "Above the dashed line the device is faster; log scales.")
    return styled(alt.layer(*layers).properties(**chart_layout(title, style.plot_height)), style)


def _log_y(field: str, title: str, values: pd.Series) -> alt.Y:
    """A log-scale y axis with readable ticks (`log_ticks`) over the values drawn."""
    return alt.Y(field).title(title).scale(type="log").axis(values=log_ticks(values))


def _device_lines(frame: pd.DataFrame, x: alt.X, y: alt.Y, tooltip: list[alt.Tooltip], style: ChartStyle) -> alt.Chart:
    """One line with points per device against batch size; the tooltip names the device and batch first."""
    device_and_batch = [
        alt.Tooltip("device:N").title("Device"),
        alt.Tooltip("batch_size:Q").title("Batch size").format(","),
    ]
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(x=x, y=y, color=_device_color(style), tooltip=[*device_and_batch, *tooltip])
    )


def _batch_x(batch_sizes: pd.Series) -> alt.X:
    """The batch-size axis: log2, its labels the measured batch sizes."""
    measured = sorted({int(size) for size in batch_sizes})
    return (
        alt.X("batch_size:Q")
        .title("Batch size (samples per step, log2 scale)")
        .scale(type="log", base=2)
        .axis(values=measured, format=",d")
    )


def _device_color(style: ChartStyle) -> alt.Color:
    return alt.Color("device:N").title("Device").scale(scheme=COLOR_SCHEME).legend(orient=style.legend_orient)


def _stored_runs_layer(stored_gpu: pd.DataFrame, x: alt.X, y: alt.Y, style: ChartStyle) -> alt.Chart:
    """Stored GPU runs of the same model as hollow diamonds, with a legend entry of their own."""
    frame = stored_gpu.assign(source=STORED_RUN_LABEL)
    return (
        alt.Chart(frame)
        .mark_point(filled=False, size=style.point_size * 1.5, strokeWidth=2)
        .encode(
            x=x,
            y=y,
            color=_device_color(style),
            shape=alt.Shape("source:N")
            .title("Not from this sweep")
            .scale(domain=[STORED_RUN_LABEL], range=["diamond"])
            .legend(orient=style.legend_orient),
            tooltip=[
                alt.Tooltip("source:N").title("Run"),
                alt.Tooltip("device:N").title("Device"),
                alt.Tooltip("batch_size:Q").title("Batch size").format(","),
                alt.Tooltip("samples_per_s:Q").title("Throughput (samples/s)").format(",.0f"),
                alt.Tooltip("machine:N").title("Machine"),
                alt.Tooltip("backend:N").title("Backend"),
                alt.Tooltip("data:N").title("Data"),
                alt.Tooltip("created_at:T").title("Stored").format("%Y-%m-%d %H:%M"),
            ],
        )
    )


def _as_fast_layers(style: ChartStyle) -> list[alt.Chart]:
    """The dashed rule at 1x and its label, at the plot's left edge."""
    frame = pd.DataFrame({"speedup": [1.0], "label": [AS_FAST_LABEL]})
    tooltip = [alt.Tooltip("label:N").title("Reference")]
    base = alt.Chart(frame).encode(y="speedup:Q", tooltip=tooltip)
    rule = base.mark_rule(strokeDash=[4, 4], color=style.reference_color)
    label = base.mark_text(align="left", baseline="bottom", dx=4, dy=-2, color=style.reference_color).encode(
        x=alt.value(0), text="label:N"
    )
    return [rule, label]


def _crossover_layers(crossings: pd.DataFrame, x: alt.X, style: ChartStyle) -> list[alt.Chart]:
    """A vertical rule at each crossover batch size in its device's colour, each labelled near the plot's top."""
    tooltip = [
        alt.Tooltip("device:N").title("Device"),
        alt.Tooltip("batch_size:Q").title("Crossover (batch size, interpolated)").format(",.0f"),
        alt.Tooltip("label:N").title("Crossover"),
    ]
    rules = alt.Chart(crossings).mark_rule().encode(x=x, color=_device_color(style), tooltip=tooltip)
    labels = [
        alt.Chart(crossings.iloc[[index]])
        .mark_text(align="left", baseline="top", dx=4)
        .encode(x=x, y=alt.value(4 + CROSSOVER_LABEL_STEP_PX * index), text="label:N", tooltip=tooltip)
        for index in range(len(crossings))
    ]
    return [rules, *labels]
