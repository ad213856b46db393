"""Results: timing and accuracy charts of finished runs, and the run history with filters and a CSV download.

The charts draw the runs picked under "Compare runs" (by default this session's latest job), so runs
from different jobs, devices or batch sizes can be put side by side.
"""

import pandas as pd
import streamlit as st

from lib.ceilings import CeilingError
from lib.charts import (
    CEILING_NOT_MEASURED,
    accuracy_on_test_set_chart,
    epoch_time_chart,
    hardware_efficiency_chart,
    run_epochs_frame,
    run_summary_frame,
    scaling_chart,
    throughput_chart,
    total_time_chart,
    training_curve_chart,
)
from lib.datasets import DATASETS
from lib.diagnosis import assess, efficiency_frame
from lib.keys import Key
from lib.parallel import scaling_frame
from lib.results import DeviceRun
from lib.spec import ModelSpec
from lib.store import StoreError
from lib.ui_state import default_comparison, history_table, run_filters, run_label
from ui import runtime

st.title("Results")
st.caption(
    "Everyone using this server shares one run history: the runs below include other people's, "
    "and yours are visible to them (no names are stored with a run)."
)


def chart_box(chart, caption: str) -> None:
    """One chart in a bordered box with a line saying what to look at."""
    with st.container(border=True):
        st.altair_chart(chart, width="stretch")
        st.caption(caption)


def draw_filters(all_runs) -> dict:
    """Dataset, device, preset and date filters; returns the matching `RunStore.runs()` arguments."""
    columns = st.columns(4)
    datasets = columns[0].multiselect(
        "Dataset",
        sorted(set(all_runs["dataset"])),
        format_func=lambda name: DATASETS[name].title if name in DATASETS else name,
        key=Key.RESULTS_DATASET,
        placeholder="All datasets",
    )
    devices = columns[1].multiselect(
        "Device", sorted(set(all_runs["device"])), key=Key.RESULTS_DEVICE, placeholder="All devices"
    )
    presets = columns[2].multiselect(
        "Preset", sorted(set(all_runs["preset"].dropna())), key=Key.RESULTS_PRESET, placeholder="All models"
    )
    first_day = all_runs["created_at"].min().date()
    since = columns[3].date_input("Runs since", value=first_day, key=Key.RESULTS_DATES, format="YYYY-MM-DD")
    return run_filters(datasets, devices, presets, since if since else None)


def draw_comparison(runs) -> None:
    """The picker of runs to compare and the six charts."""
    done = runs[runs["status"] == "done"]
    labels = {int(row["id"]): run_label(row) for _, row in done.iterrows()}
    chosen = [run_id for run_id in st.session_state.get(Key.RESULTS_COMPARE, []) if run_id in labels]
    if Key.RESULTS_COMPARE not in st.session_state or not chosen:
        chosen = [run_id for run_id in default_comparison(done, st.session_state.get(Key.JOB_ID)) if run_id in labels]
    st.session_state[Key.RESULTS_COMPARE] = chosen
    st.multiselect(
        "Compare runs (default: the latest job)",
        options=list(reversed(labels)),
        format_func=labels.get,
        key=Key.RESULTS_COMPARE,
        placeholder="Pick finished runs to compare",
    )
    compared = done[done["id"].isin(st.session_state[Key.RESULTS_COMPARE])]
    if compared.empty:
        st.info("No finished run matches the filters: change them, or train a model first.")
        return
    summary = run_summary_frame(compared)
    epochs = run_epochs_frame(compared)
    left, right = st.columns(2)
    with left:
        chart_box(
            total_time_chart(summary),
            "Total training time per run: the label says how many times faster than the slowest run.",
        )
        chart_box(
            throughput_chart(summary),
            "Training samples per second in the later epochs: the device's steady speed, compilation excluded.",
        )
        chart_box(
            training_curve_chart(epochs, "train_loss"),
            "The same model should learn the same way on every device: the loss curves should almost overlap.",
        )
    with right:
        chart_box(
            epoch_time_chart(epochs),
            "Epoch 1 is slower: it includes tracing and compiling the model. Compare the later epochs.",
        )
        chart_box(
            accuracy_on_test_set_chart(summary),
            "Accuracy on images the model never saw: the device changes the speed, not what is learned.",
        )
        chart_box(
            training_curve_chart(epochs, "train_accuracy"),
            "Training accuracy per epoch; a big gap to the test accuracy means the model memorises.",
        )
    draw_hardware(compared, dict(zip(summary["run_id"], summary["series"], strict=True)))


def draw_hardware(compared, series: dict[str, str]) -> None:
    """Achieved FLOP/s of each compared run against this server's measured matmul ceiling, with a diagnosis."""
    st.subheader("How close to the hardware")
    if st.button("Measure this machine's ceiling", key=Key.RESULTS_MEASURE_CEILING, icon=":material/speed:"):
        with st.spinner("Timing large matrix products on every device of this server..."):
            try:
                runtime.measure_ceilings_once()
            except CeilingError as error:
                st.error(f"The ceiling cannot be measured: {error}", icon=":material/error:")
    ceilings = runtime.measured_ceilings()
    if not ceilings:
        st.info(
            "A run's FLOP/s mean little alone: measure the fastest matrix product this machine can do "
            "(once per server, shared by every session) to see how close each run came to it.",
            icon=":material/info:",
        )
        return
    entries = [
        (
            series.get(str(row["id"]), run_label(row)),
            DeviceRun.from_dict(row["result"]),
            ModelSpec.from_dict(row["spec"]),
        )
        for _, row in compared.iterrows()
    ]
    frame = efficiency_frame(entries, ceilings)
    frame["compile_share_of_run"] = [assess(run, spec, ceilings).compile_share_of_run for _, run, spec in entries]
    chart_box(
        hardware_efficiency_chart(frame),
        "Each bar is the run's achieved FLOP/s as a share of its device's fastest matrix product (the dashed "
        "line): short bars mean time goes to overhead or data movement, not arithmetic.",
    )
    for row in frame.itertuples():
        compile_share = (
            "" if pd.isna(row.compile_share_of_run) else f" · compilation {row.compile_share_of_run:.0%} of the run"
        )
        # Without a ceiling only a compilation verdict holds; the rest would compare with nothing.
        unmeasured = pd.isna(row.share_of_ceiling) and row.verdict != "compilation"
        verdict = CEILING_NOT_MEASURED if unmeasured else row.diagnosis
        st.markdown(f"**{row.series}**{compile_share}: {verdict}")


try:
    store = runtime.store()
    all_runs = store.runs()
except StoreError as error:
    st.error(f"The run history cannot be read: {error}", icon=":material/error:")
    st.stop()

if all_runs.empty:
    st.info("No runs yet. Build a model and train it: its timings appear here.", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/play_arrow:")
    st.stop()

filters = draw_filters(all_runs)
runs = store.runs(**filters)
draw_comparison(runs)
scaling = scaling_frame(runs)
if not scaling.empty:
    chart_box(
        scaling_chart(scaling),
        "Data parallel (all GPUs): each GPU trains on its share of every batch. Efficiency = speedup / GPUs; "
        "100% would mean twice the GPUs halve the epoch.",
    )

with st.container(border=True):
    st.markdown(f"**Run history** ({len(runs)} of {len(all_runs)} runs)")
    seconds = st.column_config.NumberColumn(format="%.2f")
    st.dataframe(
        history_table(runs),
        hide_index=True,
        width="stretch",
        column_config={
            "Run": st.column_config.NumberColumn(format="#%d"),
            "Date (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "Total (s)": seconds,
            "Epoch 1 (s)": seconds,
            "Later epochs (s)": seconds,
            "Samples/s": st.column_config.NumberColumn(format="%.0f"),
            "Test accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.caption("One row per device run, newest first. Failed and cancelled runs say why in the CSV's error column.")
    st.download_button(
        "Download CSV",
        data=store.to_csv_bytes(**filters),
        file_name="runs.csv",
        mime="text/csv",
        key=Key.RESULTS_DOWNLOAD,
        icon=":material/download:",
    )
