"""The repeats' chart: each repeated run's training time as a dot, the kept runs' range and their median.

Built from `lib.repeats` frames; conventions as in `lib.charts` (a `ChartStyle`, titles with subtitles,
tooltips on every mark, units in axis titles, the colour-blind-safe scheme).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from lib.charts import COLOR_SCHEME, SCREEN, ChartStyle, chart_layout, chart_title, styled

ROW_PX = 44  # px per device row: room for the dots, the range and the median tick


def spread_chart(points: pd.DataFrame, spreads: pd.DataFrame, style: ChartStyle = SCREEN) -> alt.LayerChart:
    """Each device's repeated runs: a dot per run, a rule over the kept runs' range, a tick at their median.

    Runs dropped as the fastest or slowest have their own shape in the legend.

    Args:
        points: `lib.repeats.repeated_runs` output.
        spreads: `lib.repeats.spread_frame` output.
        style: `SCREEN`, or `PRESENTER` for the presenter view.
    """
    y = alt.Y("device:N").title(None)
    x = alt.X("total_s:Q").title("Training time of one run (s)").scale(zero=False)
    color = alt.Color("device:N").scale(scheme=COLOR_SCHEME).legend(None)
    dots = (
        alt.Chart(points.assign(counted=points["kept"].map({True: "kept", False: "dropped (fastest or slowest)"})))
        .mark_point(size=style.point_size, filled=True)
        .encode(
            x=x,
            y=y,
            color=color,
            shape=alt.Shape("counted:N").title("Run").legend(orient=style.legend_orient),
            tooltip=[
                alt.Tooltip("device:N").title("Device"),
                alt.Tooltip("repeat:Q").title("Run"),
                alt.Tooltip("total_s:Q").title("Training time (s)").format(".3f"),
                alt.Tooltip("counted:N").title("In the median"),
            ],
        )
    )
    spread_tooltip = [
        alt.Tooltip("device:N").title("Device"),
        alt.Tooltip("median_s:Q").title("Median (s)").format(".3f"),
        alt.Tooltip("low_s:Q").title("Fastest kept (s)").format(".3f"),
        alt.Tooltip("high_s:Q").title("Slowest kept (s)").format(".3f"),
        alt.Tooltip("spread_pct:Q").title("Spread (% of the median)").format(".1f"),
    ]
    ranges = (
        alt.Chart(spreads)
        .mark_rule(strokeWidth=style.stroke_px or 2)
        .encode(x="low_s:Q", x2="high_s:Q", y=y, color=color, tooltip=spread_tooltip)
    )
    medians = (
        alt.Chart(spreads)
        .mark_tick(thickness=3, size=ROW_PX * 0.6)
        .encode(x="median_s:Q", y=y, color=color, tooltip=spread_tooltip)
    )
    title = chart_title("Repeated runs", "Each dot is one run; the line spans the kept runs, the tick is their median.")
    rows = max(spreads["device"].nunique() if not spreads.empty else 1, 1)
    chart = alt.layer(ranges, dots, medians).properties(**chart_layout(title, rows * ROW_PX))
    return styled(chart, style)
