"""Results: timing and accuracy charts of finished runs, and the run history with filters and a CSV download.

The charts draw the runs picked under "Compare runs". By default that is the most instructive comparison the
store allows (`lib.comparison.choose_comparison`: the latest job's devices, else CPU vs GPU runs of one model,
else runs that differ in one setting), named by what differs; every caption is computed from the numbers drawn.
"What the model learned" shows one compared real-data run's confusion matrix and a few test images it labelled.
Every run names the machine that ran it; when runs come from several machines (a Ray cluster), a Machine filter
and a table of the machines let people compare them, and compared runs of different machines are named by it.
"""

import pandas as pd
import streamlit as st

from lib.backend import BackendUnavailableError
from lib.ceilings import CeilingError
from lib.charts import (
    CEILING_NOT_MEASURED,
    ChartStyle,
    accuracy_on_test_set_chart,
    confusion_matrix_chart,
    epoch_time_chart,
    hardware_efficiency_chart,
    run_epochs_frame,
    run_summary_frame,
    scaling_charts,
    throughput_chart,
    total_time_chart,
    training_curve_chart,
)
from lib.comparison import (
    GENERATED_ACCURACY_NOTE,
    GENERATED_CONFUSION_NOTE,
    accuracy_caption,
    choose_comparison,
    confusion_caption,
    confusion_frame,
    epoch_time_caption,
    learned_runs,
    loss_caption,
    outside_epochs_by_run,
    preset_title,
    run_names,
    sample_caption,
    samples_caption,
    throughput_caption,
    time_gap_text,
    total_time_caption,
    train_accuracy_caption,
)
from lib.datasets import DATASETS, DatasetUnavailableError
from lib.diagnosis import assess, efficiency_frame, roofline_frames
from lib.eda import enlarge
from lib.energy import energy_caption, energy_table
from lib.hardware import machine_name, ran_here
from lib.parallel import scaling_frame
from lib.repeats import repeated_runs, spread_caption, spread_frame
from lib.repeats_charts import spread_chart
from lib.roofline import roofline_caption
from lib.roofline_charts import roofline_chart
from lib.store import RunStore, StoredRun, StoreError
from lib.take_home import stored_runs
from lib.time_to_target import target_caption, target_frame
from ui import presenter, runtime
from ui.cost import draw_costs
from ui.keys import Key
from ui.page_data import history_table, machines_table, run_filters, run_label, run_machines
from ui.take_home import draw_take_home

IMAGE_ENLARGE = 3  # 28 px -> 84 px, 32 px -> 96 px on screen, as on the Datasets page
ENERGY_TABLE_HEADINGS = {  # lib.energy.energy_table column -> the table's heading
    "series": "Run",
    "device": "Device",
    "energy_j": "Energy (J)",
    "steady_epoch_j": "Per later epoch (J)",
    "above_idle_j": "Above idle (J)",
    "idle_w": "Idle draw (W)",
    "how": "How",
}

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
    """Dataset, device, preset and date filters, and machines when several ran; returns `RunStore.runs()` arguments."""
    machines = run_machines(all_runs)
    columns = st.columns(5 if len(machines) > 1 else 4)
    chosen_machines = []
    if len(machines) > 1:
        chosen_machines = columns[4].multiselect(
            "Machine", machines, key=Key.RESULTS_MACHINE, placeholder="All machines"
        )
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
        "Preset",
        sorted(set(all_runs["preset"].dropna())),
        format_func=preset_title,
        key=Key.RESULTS_PRESET,
        placeholder="All models",
    )
    first_day = all_runs["created_at"].min().date()
    since = columns[3].date_input("Runs since", value=first_day, key=Key.RESULTS_DATES, format="YYYY-MM-DD")
    return run_filters(datasets, devices, presets, since if since else None, chosen_machines)


def pick_runs(done) -> list[int]:
    """The "Compare runs" picker, filled with the default comparison until the user picks; returns the pick."""
    several = len(run_machines(done)) > 1
    labels = {int(row["id"]): run_label(row, with_machine=several) for _, row in done.iterrows()}
    default = choose_comparison(done, st.session_state.get(Key.JOB_ID))
    chosen = [run_id for run_id in st.session_state.get(Key.RESULTS_COMPARE, []) if run_id in labels]
    if Key.RESULTS_COMPARE not in st.session_state or not chosen:
        chosen = [run_id for run_id in default.run_ids if run_id in labels]
    st.session_state[Key.RESULTS_COMPARE] = chosen
    st.multiselect(
        "Compare runs",
        options=list(reversed(labels)),
        format_func=labels.get,
        key=Key.RESULTS_COMPARE,
        placeholder="Pick finished runs to compare",
    )
    picked = st.session_state[Key.RESULTS_COMPARE]
    if sorted(picked) == list(default.run_ids):
        st.caption(f"Default view. {default.reason}")
    elif default.run_ids:
        st.caption(f"Your pick. Clear it to see the default again: {default.reason}")
    return picked


def outside_epochs(store: RunStore, compared) -> dict[str, float]:
    """Seconds each compared run's job spent outside its epochs (data, model building, evaluation), if known."""
    job_ids = sorted(set(compared["job_id"].dropna()))
    if not job_ids:
        return {}
    try:
        return outside_epochs_by_run(store.runs(job_id=job_ids), [store.job(job_id) for job_id in job_ids])
    except StoreError:
        return {}


def draw_comparison(store: RunStore, runs, style: ChartStyle) -> None:
    """The picker of runs to compare, the six charts and the captions computed from them."""
    done = runs[runs["status"] == "done"]
    compared = done[done["id"].isin(pick_runs(done))]
    if compared.empty:
        st.info("No finished run matches the filters: change them, or train a model first.")
        return
    summary = run_summary_frame(compared)
    epochs = run_epochs_frame(compared)
    # One chart per row: side by side, a projector's screen leaves each chart too narrow to read its axes.
    chart_box(total_time_chart(summary, style), total_time_caption(summary))
    chart_box(throughput_chart(summary, style), throughput_caption(summary))
    gap = time_gap_text(summary, outside_epochs(store, compared))
    if gap:
        with st.container(border=True):
            st.markdown(gap)
    names = run_names(compared)  # each compared run's name, as the charts name it
    draw_costs(compared, names)
    draw_energy(compared, names)
    draw_time_to_target(compared, names)
    draw_repeats(compared, style)
    chart_box(epoch_time_chart(epochs, style), epoch_time_caption(summary))
    chart_box(training_curve_chart(epochs, "train_loss", style), loss_caption(epochs, compared))
    if not summary.empty and summary["synthetic"].all():
        st.info(f"No accuracy is drawn: every compared run used {GENERATED_ACCURACY_NOTE}.", icon=":material/info:")
    else:
        chart_box(accuracy_on_test_set_chart(summary, style), accuracy_caption(summary, compared))
        chart_box(training_curve_chart(epochs, "train_accuracy", style), train_accuracy_caption(summary, epochs))
    series = dict(zip(summary["run_id"], summary["series"], strict=True))
    stored = stored_runs(store, compared["id"])  # each compared run decoded once: spec, result, machine
    draw_learned(compared, series, style)
    draw_take_home(stored, Key.RESULTS_SCRIPT, Key.RESULTS_NOTEBOOK, Key.RESULTS_TAKE_HOME_RUNS)
    draw_hardware(compared, stored, series, style)


def draw_energy(compared, names: list[str]) -> None:
    """Each compared run's energy as measured on its machine (NVML, RAPL), or why it was not measured."""
    table = energy_table(compared, names)
    with st.container(border=True, key=Key.RESULTS_ENERGY):
        st.markdown("**Energy**")
        joules = st.column_config.NumberColumn(format="%.1f")
        st.dataframe(
            table.rename(columns=ENERGY_TABLE_HEADINGS),
            hide_index=True,
            width="stretch",
            column_config={heading: joules for heading in list(ENERGY_TABLE_HEADINGS.values())[2:6]},
        )
        st.caption(energy_caption(table))


def draw_repeats(compared, style: ChartStyle) -> None:
    """Devices whose job repeated them: every run's time, the kept runs' median and range."""
    points = repeated_runs(compared)
    spreads = spread_frame(points)
    if spreads.empty:
        return
    with st.container(border=True, key=Key.RESULTS_REPEATS):
        st.altair_chart(spread_chart(points, spreads, style), width="stretch")
        st.caption(spread_caption(spreads))


def draw_time_to_target(compared, names: list[str]) -> None:
    """The compared runs that stopped at a target accuracy: each one's time to it, the first named."""
    targets = target_frame(compared, names)
    if targets.empty:
        return
    with st.container(border=True, key=Key.RESULTS_TIME_TO_TARGET):
        st.markdown("**Time to accuracy**")
        table = targets.loc[:, ["series", "text"]].rename(columns={"series": "Run", "text": "Time to target"})
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(target_caption(targets))


def draw_learned(compared, series: dict[str, str], style: ChartStyle) -> None:
    """One compared run's confusion matrix (the most accurate by default) and a few test images it labelled."""
    learned = learned_runs(compared)
    if learned.empty:
        if compared["synthetic"].any():
            st.info(GENERATED_CONFUSION_NOTE, icon=":material/info:")
        return
    st.subheader("What the model learned")
    names = {int(row["id"]): series.get(str(row["id"]), run_label(row)) for _, row in learned.iterrows()}
    if st.session_state.get(Key.RESULTS_LEARNED_RUN) not in names:
        st.session_state[Key.RESULTS_LEARNED_RUN] = next(iter(names))  # the most accurate
    run_id = st.selectbox("Run", options=list(names), format_func=names.get, key=Key.RESULTS_LEARNED_RUN)
    row = learned[learned["id"] == run_id].iloc[0]
    result, info = row["result"], DATASETS[row["dataset"]]
    chart_box(
        confusion_matrix_chart(confusion_frame(result["confusion"], info.class_names), style),
        confusion_caption(result["confusion"], info.class_names),
    )
    draw_sample_predictions(info, result.get("sample_predictions") or [])


def draw_sample_predictions(info, samples: list[dict]) -> None:
    """A few of the run's test images, each captioned with the model's answer and the true class."""
    if not samples:
        return
    try:
        dataset = runtime.dataset(info.name)
    except (DatasetUnavailableError, BackendUnavailableError) as error:
        st.info(f"The test images cannot be shown: {error}", icon=":material/info:")
        return
    with st.container(border=True):
        st.image(
            [enlarge(dataset.x_test[sample["index"]], IMAGE_ENLARGE) for sample in samples],
            caption=[sample_caption(sample, info.class_names) for sample in samples],
            width=info.image_shape[1] * IMAGE_ENLARGE,
        )
        st.caption(samples_caption(samples))


def draw_hardware(compared, stored: list[StoredRun], series: dict[str, str], style: ChartStyle) -> None:
    """Each compared run under this server's measured roofs (matmul ceiling, memory bandwidth), with a diagnosis."""
    st.subheader("How close to the hardware")
    if st.button("Measure this machine's ceiling", key=Key.RESULTS_MEASURE_CEILING, icon=":material/speed:"):
        measure_hardware()
    ceilings, bandwidths = runtime.measured_ceilings(), runtime.measured_bandwidths()
    if not ceilings:
        st.info(
            "A run's FLOP/s mean little alone: measure the fastest matrix product this machine can do and how fast "
            "its memory moves data (once per server, shared by every session) to see how close each run came to them.",
            icon=":material/info:",
        )
        return
    pairs = list(zip(compared.iterrows(), stored, strict=True))
    elsewhere = sorted({machine_name(run.hardware) for _, run in pairs if not ran_here(run.hardware)})
    if elsewhere:  # this server's ceiling says nothing about another machine's run
        st.caption(f"Left out: the runs of {', '.join(elsewhere)}; this server's ceiling is not theirs.")
    entries = [
        (series.get(str(row["id"]), run_label(row)), run.run, run.spec)
        for (_, row), run in pairs
        if ran_here(run.hardware)
    ]
    if not entries:
        return
    frame = efficiency_frame(entries, ceilings, bandwidths)
    frame["compile_share_of_run"] = [
        assess(run, spec, ceilings, bandwidths).compile_share_of_run for _, run, spec in entries
    ]
    draw_hardware_chart(frame, *roofline_frames(entries, ceilings, bandwidths), style)
    for row in frame.itertuples():
        compile_share = (
            "" if pd.isna(row.compile_share_of_run) else f" · compiling took {row.compile_share_of_run:.0%} of the run"
        )
        # Without a ceiling only a compilation verdict holds; the rest would compare with nothing.
        unmeasured = pd.isna(row.share_of_ceiling) and row.verdict != "compilation"
        verdict = CEILING_NOT_MEASURED if unmeasured else row.diagnosis
        st.markdown(f"**{row.series}**{compile_share}: {verdict}")


def measure_hardware() -> None:
    """Measures this server's matmul ceilings and memory bandwidths (once per process), or says why not."""
    with st.spinner("Timing large matrix products and memory copies on every device of this server..."):
        try:
            runtime.measure_ceilings_once()
            runtime.measure_bandwidths_once()
        except CeilingError as error:  # lib.roofline.BandwidthError is one too
            st.error(f"The ceiling cannot be measured: {error}", icon=":material/error:")


def draw_hardware_chart(frame: pd.DataFrame, points: pd.DataFrame, roofs: pd.DataFrame, style: ChartStyle) -> None:
    """The roofline of the runs whose device has both roofs measured; else the bars of the share of the ceiling."""
    if points.empty:
        chart_box(
            hardware_efficiency_chart(frame, style),
            "Each bar is the run's achieved FLOP/s as a share of its device's fastest matrix product (the dashed "
            "line): short bars mean time goes to overhead or data movement, not arithmetic.",
        )
        return
    left_out = [name for name in frame["series"] if name not in set(points["series"])]
    chart_box(roofline_chart(points, roofs, style), roofline_caption(points, left_out))


def draw_machines(runs: pd.DataFrame) -> None:
    """The machines that ran the listed runs (drawn when runs come from several)."""
    with st.container(border=True):
        st.markdown("**Machines**")
        st.dataframe(machines_table(runs), hide_index=True, width="stretch")
        st.caption(
            "The machines that ran the runs listed below. To compare machines, pick the same model's runs on "
            "each under Compare runs (their names then say the machine), or keep one machine with the filter."
        )


def draw_history(store: RunStore, runs: pd.DataFrame, total: int, filters: dict) -> None:
    """The filtered run history, newest first, and its CSV download."""
    with st.container(border=True):
        st.markdown(f"**Run history** ({len(runs):,} of {total:,} runs)")
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
            },
        )
        st.caption(
            "One row per device run, newest first. Failed and cancelled runs say why in the CSV's error column. "
            f"Runs on generated data show no accuracy ({GENERATED_ACCURACY_NOTE}); the CSV leaves it empty."
        )
        st.download_button(
            "Download CSV",
            data=store.to_csv_bytes(**filters),
            file_name="runs.csv",
            mime="text/csv",
            key=Key.RESULTS_DOWNLOAD,
            icon=":material/download:",
        )


def draw_results(store: RunStore, all_runs: pd.DataFrame) -> None:
    """The filters, the charts of the compared runs, the machines and the run history."""
    style = presenter.chart_style()  # the presenter view's: each chart's drawing fits one projector screen
    filters = draw_filters(all_runs)
    runs = store.runs(**filters)
    draw_comparison(store, runs, style)
    scaling = scaling_frame(runs)
    if not scaling.empty:
        epoch_chart, efficiency_chart = scaling_charts(scaling, style)
        chart_box(epoch_chart, "Data parallel (all GPUs): each GPU trains on its share of every batch.")
        chart_box(efficiency_chart, "Efficiency = speedup / GPUs; 100% would mean twice the GPUs halve the epoch.")
    if len(run_machines(all_runs)) > 1:
        draw_machines(runs)
    draw_history(store, runs, len(all_runs), filters)


def read_runs() -> tuple[RunStore, pd.DataFrame] | None:
    """The run store and every run in it; None (and why, on the page) when it cannot be read."""
    try:
        store = runtime.store()
        return store, store.runs()
    except StoreError as error:
        st.error(f"The run history cannot be read: {error}", icon=":material/error:")
        return None


# No st.stop() below: in lesson mode the router draws "Next" after the page, whatever it showed.
stored = read_runs()
if stored is not None and stored[1].empty:
    st.info("No runs yet. Build a model and train it: its timings appear here.", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/play_arrow:")
elif stored is not None:
    draw_results(*stored)
