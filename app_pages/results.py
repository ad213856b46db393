"""Results: timing and accuracy charts of finished runs, and the run history with filters and a CSV download.

The charts draw the runs picked under "Compare runs" (by default this session's latest job), so runs
from different jobs, devices or batch sizes can be put side by side.
"""

import streamlit as st

from lib.charts import (
    accuracy_on_test_set_chart,
    epoch_time_chart,
    run_epochs_frame,
    run_summary_frame,
    scaling_chart,
    throughput_chart,
    total_time_chart,
    training_curve_chart,
)
from lib.datasets import DATASETS
from lib.keys import Key
from lib.parallel import scaling_frame
from lib.store import StoreError
from lib.ui_state import default_comparison, history_table, run_filters, run_label
from ui import runtime

st.title("Results")


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
