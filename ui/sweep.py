"""Streamlit-side: what a finished sweep shows ("Where does the GPU win?"): its charts, captions and points.

The numbers and words come from `lib.sweep`, the charts from `lib.sweep_charts`; this module only places
them. With a GPU in the sweep: throughput and speedup against batch size, the crossover marked. Without
one: the CPU's own curve, what a GPU changes, and the stored GPU runs of the same model drawn beside it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.charts import ChartStyle
from lib.hardware import machine_text
from lib.links import escape_markdown
from lib.spec import ModelSpec
from lib.sweep import (
    failed_point_texts,
    speedup_caption,
    speedup_points,
    stored_gpu_runs,
    sweep_crossovers,
    sweep_points,
    throughput_caption,
    unfinished_point_count,
    what_a_gpu_changes,
)
from lib.sweep_charts import sweep_speedup_chart, sweep_throughput_chart
from ui.page_data import model_summary

POINT_TABLE_COLUMNS = {  # sweep_points column -> the table's heading
    "device": "Device",
    "batch_size": "Batch size",
    "samples_per_s": "Samples/s (epoch 2)",
    "steady_epoch_s": "Epoch 2 (s)",
}


def source_text(rows: pd.DataFrame) -> str:
    """Which model the sweep trained, on which machine and when (it may not be the model being built now)."""
    first = rows.iloc[0]
    spec = ModelSpec.from_dict(first["spec"]).with_changes(batch_size=int(rows["batch_size"].min()))
    when = pd.Timestamp(rows["created_at"].max()).strftime("%Y-%m-%d %H:%M UTC")
    data = ", generated images" if bool(first["synthetic"]) else ""
    model = model_summary(spec).replace(f"batch {spec.batch_size:,}", "each batch size")
    return f"Swept: {model} On {machine_text(first['hardware'])}, {when}{data}."


def draw_sweep_result(rows: pd.DataFrame, stored_runs: pd.DataFrame, style: ChartStyle) -> None:
    """A sweep's charts, captions and table of points.

    Args:
        rows: The sweep job's stored runs (`RunStore.runs(job_id=...)`), one per device and batch size.
        stored_runs: Finished runs of this server's store, for the GPU runs a CPU-only sweep cites.
        style: The charts' style (the presenter view's or the desk's).
    """
    st.caption(source_text(rows))
    failures = failed_point_texts(rows)
    if failures:
        lines = "\n".join(f"- {escape_markdown(line)}" for line in failures)
        st.warning(f"These points failed, so the charts leave them out:\n{lines}", icon=":material/warning:")
    points = sweep_points(rows)
    if points.empty:
        st.warning("No point of this sweep finished, so there is no curve to draw.", icon=":material/warning:")
        return
    speedups = speedup_points(points)
    stored_gpu = None
    if speedups.empty:  # no GPU measured in this sweep: the CPU's own curve, and what stored GPU runs say
        first = rows.iloc[0]
        stored_gpu = stored_gpu_runs(stored_runs, str(first["dataset"]), first["hidden_units"])
    with st.container(border=True):
        st.altair_chart(sweep_throughput_chart(points, stored_gpu, style), width="stretch")
        st.caption(throughput_caption(points, unfinished_point_count(rows)))
    if speedups.empty:
        st.info(what_a_gpu_changes(points, stored_gpu), icon=":material/lightbulb:")
    else:
        crossovers = sweep_crossovers(speedups)
        with st.container(border=True):
            st.altair_chart(sweep_speedup_chart(speedups, crossovers, style), width="stretch")
            st.caption(speedup_caption(crossovers))
    table = points.loc[:, list(POINT_TABLE_COLUMNS)].rename(columns=POINT_TABLE_COLUMNS)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "Samples/s (epoch 2)": st.column_config.NumberColumn(format="%.0f"),
            "Epoch 2 (s)": st.column_config.NumberColumn(format="%.3f"),
        },
    )
