"""The Results page's roofline chart in Altair, built from `lib.roofline`'s frames.

Each device's two roofs (its memory bandwidth's slope up to the ridge, then its flat compute ceiling) and each
run as a point under them, coloured by what bounds it, on log-log axes. It follows `lib.charts`' conventions
(its `ChartStyle`, a title with a subtitle saying how to read the chart, tooltips on every mark, units in axis
titles, a colour-blind-safe scheme).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from lib.charts import COLOR_SCHEME, SCREEN, ChartStyle, chart_layout, chart_title, log_ticks, styled
from lib.roofline import BOUNDS

ROOFLINE_TITLE = "How close to the hardware: the roofline"
INTENSITY_TITLE = "Arithmetic intensity (FLOP per byte moved, log scale)"
FLOPS_TITLE = "Training speed (FLOP/s, log scale)"
LEGEND_ORIENT = "right"  # three legends (roof, bound, device): side by side below the plot they overflow 853 px
SI_FORMAT = "~s"  # Vega's SI prefixes: 2e10 reads "20G", 1.5e12 "1.5T"


def roofline_chart(points: pd.DataFrame, roofs: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """The runs as points under their devices' roofs, on log-log axes.

    Args:
        points: Output of `lib.roofline.points_frame` (one row per run).
        roofs: Output of `lib.roofline.roofs_frame` (three vertices per device and precision).
        style: `SCREEN`, or `PRESENTER` for the presenter view.

    Returns:
        A line per roof (dashed by roof, in the style's reference colour) and a filled point per run coloured by
        its bound (compute-, memory- or overhead-bound), every mark with its numbers in the tooltip.
    """
    x = _log_axis(alt.X, "intensity:Q", INTENSITY_TITLE, pd.concat([roofs["intensity"], points["intensity"]]))
    speeds = pd.concat([roofs["flops_per_s"], points["achieved_flops_per_s"]])
    roof_lines = _roof_layer(roofs, x, _log_axis(alt.Y, "flops_per_s:Q", FLOPS_TITLE, speeds), style)
    run_points = _point_layer(points, x, _log_axis(alt.Y, "achieved_flops_per_s:Q", FLOPS_TITLE, speeds), style)
    title = chart_title(ROOFLINE_TITLE, "Points under their roof; the nearer a roof, the closer to the hardware.")
    return styled(alt.layer(roof_lines, run_points).properties(**chart_layout(title, style.plot_height)), style)


def _log_axis(channel: type[alt.X] | type[alt.Y], field: str, title: str, values: pd.Series) -> alt.X | alt.Y:
    """A log-scale axis with readable ticks (1-2-5 or powers of ten) and SI labels."""
    return channel(field).title(title).scale(type="log").axis(values=log_ticks(values), format=SI_FORMAT)


def _roof_layer(roofs: pd.DataFrame, x: alt.X, y: alt.Y, style: ChartStyle) -> alt.Chart:
    return (
        alt.Chart(roofs)
        .mark_line(color=style.reference_color)
        .encode(
            x=x,
            y=y,
            strokeDash=alt.StrokeDash("roof:N").title("Roof").legend(orient=LEGEND_ORIENT),
            order=alt.Order("intensity:Q"),
            tooltip=[
                alt.Tooltip("roof:N").title("Roof"),
                alt.Tooltip("part:N").title("Limited by"),
                alt.Tooltip("intensity:Q").title("Intensity (FLOP/byte)").format(",.3~g"),
                alt.Tooltip("flops_per_s:Q").title("Roof (FLOP/s)").format(".3~s"),
            ],
        )
    )


def _point_layer(points: pd.DataFrame, x: alt.X, y: alt.Y, style: ChartStyle) -> alt.Chart:
    return (
        alt.Chart(points)
        .mark_point(filled=True, size=style.point_size, opacity=1)
        .encode(
            x=x,
            y=y,
            color=alt.Color("bound:N")
            .title("Bound")
            .scale(domain=list(BOUNDS), scheme=COLOR_SCHEME)
            .legend(orient=LEGEND_ORIENT),
            shape=alt.Shape("device:N").title("Device").legend(orient=LEGEND_ORIENT),
            tooltip=[
                alt.Tooltip("series:N").title("Run"),
                alt.Tooltip("device:N").title("Device"),
                alt.Tooltip("precision:N").title("Ceiling precision"),
                alt.Tooltip("bound:N").title("Bound"),
                alt.Tooltip("intensity:Q").title("Intensity (FLOP/byte)").format(",.3~g"),
                alt.Tooltip("achieved_flops_per_s:Q").title("Achieved (FLOP/s)").format(".3~s"),
                alt.Tooltip("attainable_flops_per_s:Q").title("Roof at this intensity (FLOP/s)").format(".3~s"),
                alt.Tooltip("share_of_attainable:Q").title("Share of the roof").format(".1%"),
                alt.Tooltip("compute_flops_per_s:Q").title("Compute roof (FLOP/s)").format(".3~s"),
                alt.Tooltip("bandwidth_bytes_per_s:Q").title("Memory bandwidth (bytes/s)").format(".3~s"),
                alt.Tooltip("ridge_intensity:Q").title("Ridge (FLOP/byte)").format(",.3~g"),
            ],
        )
    )
