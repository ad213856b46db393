"""Class board: what the whole class's server is doing, large enough to read on a projector.

The queue in serving order (place, anonymous name, what each job asks for, how many requests one run
serves), the running job's live progress (each device; in a batch-size sweep each device at each batch),
the jobs that finished today with each model's speedup (fastest against slowest device of the same job; a
sweep's at its largest batch), and the class's guesses of the speedup against the measurements
(`ui.guesses`). Everyone sees the same page: no job ids and no session ids are shown, only the
runner's anonymous names ("Owl 7"); guesses have no names at all.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.class_board import FinishedJob, finished_jobs, model_text, point_label, progress_fraction, start_of_today
from lib.datasets import DATASETS
from lib.formatting import format_seconds
from lib.jobs import BoardEntry, BoardSnapshot
from lib.parallel import device_label
from lib.presets import PRESETS
from ui import runtime
from ui.guesses import class_guesses_section

LIVE_S = 1.0  # seconds between two looks at the queue and the running job
FINISHED_S = 10.0  # seconds between two looks at today's finished runs
FINISHED_SHOWN = 12  # finished jobs listed, newest first
FINISHED_PER_ROW = 2  # few columns: readable from the back of a room


def asked_for(job: BoardEntry | FinishedJob) -> str:
    """What a job trains, in a few words: the preset's title (it names the dataset), else the model and dataset."""
    if job.preset in PRESETS:
        return PRESETS[job.preset].title
    dataset = DATASETS[job.dataset].title if job.dataset in DATASETS else job.dataset
    return f"{model_text(job.hidden_units, job.hidden_activation)} on {dataset}"


def settings_text(entry: BoardEntry) -> str:
    """Devices (and a sweep's batch sizes), samples and epochs of a job, and generated data when it uses it."""
    devices = ", ".join(device_label(device) for device in entry.devices)
    if entry.batch_sizes:
        devices += f" at batch {', '.join(f'{size:,}' for size in entry.batch_sizes)}"
    data = ", generated images" if entry.synthetic else ""
    return f"{devices} · {entry.samples:,} samples · {entry.epochs} epoch{'s' if entry.epochs != 1 else ''}{data}"


def requesters_text(requesters: int) -> str:
    """How many sessions one run serves, said as one shared measurement."""
    if requesters <= 1:
        return ""
    return f"One run serves {requesters} requests: {requesters} sessions share this measurement."


def draw_running(entry: BoardEntry) -> None:
    """One running job: who, what, and each device's progress."""
    with st.container(border=True):
        st.subheader(f"{entry.name}: {asked_for(entry)}")
        st.markdown(f"#### {settings_text(entry)}")
        shared = requesters_text(entry.requesters)
        if shared:
            st.markdown(f"#### {shared}")
        for point in entry.points():
            event = entry.progress.get(point.key)
            if event is None:
                st.markdown(f"#### {point_label(point)}: starting")
                st.progress(0.0)
                continue
            st.markdown(
                f"#### {point_label(point)}: epoch {event.epoch} of {event.epochs} · "
                f"{format_seconds(event.elapsed_s)} so far"
            )
            st.progress(progress_fraction(event))


def draw_queued(entries: tuple[BoardEntry, ...]) -> None:
    """The waiting jobs in serving order: place, name, what they ask for and when they should start."""
    for entry in entries:
        with st.container(border=True):
            st.subheader(f"{entry.position}. {entry.name}: {asked_for(entry)}")
            start = format_seconds(entry.estimated_start_s or 0.0)
            st.markdown(f"#### {settings_text(entry)} · starts in about {start}")
            shared = requesters_text(entry.requesters)
            if shared:
                st.markdown(f"#### {shared}")


@st.fragment(run_every=LIVE_S)
def live_board() -> None:
    """The running job and the queue, redrawn every second."""
    board: BoardSnapshot = runtime.runner().board()
    st.header("Training now")
    if not board.running:
        st.markdown("### Nothing is training right now.")
    for entry in board.running:
        draw_running(entry)
    st.header(f"Waiting: {len(board.queued)}")
    if not board.queued:
        st.markdown("### The queue is empty: press Train on the Train page to add a job.")
    draw_queued(board.queued)


def speedup_text(job: FinishedJob) -> str:
    """The job's speedup in words, or its one device's time; a sweep's at its largest batch size."""
    sweep = f" at batch {job.sweep_batch:,} (a batch-size sweep)" if job.sweep_batch else ""
    if job.speedup is None:
        return f"{device_label(job.fastest.device)} only{sweep}"
    return f"{device_label(job.fastest.device)} vs {device_label(job.slowest.device)}{sweep}"


def draw_finished(job: FinishedJob, column: DeltaGenerator) -> None:
    """One finished job: what it trained, then a big number: its speedup, or its time on its one device."""
    title = asked_for(job)
    details = f"{job.samples:,} samples · {job.epochs} epoch{'s' if job.epochs != 1 else ''} · {speedup_text(job)}"
    value = format_seconds(job.fastest.total_s) if job.speedup is None else f"{job.speedup:.1f}x faster"
    with column.container(border=True):
        st.markdown(f"#### {title}")
        st.metric(title, value, label_visibility="collapsed")
        st.markdown(f"##### {details}")


@st.fragment(run_every=FINISHED_S)
def finished_today() -> None:
    """Today's finished jobs, newest first, with each model's speedup."""
    jobs = finished_jobs(runtime.store().runs(status="done", since=start_of_today()))
    st.header(f"Finished today: {len(jobs)}")
    if not jobs:
        st.markdown("### No run has finished today yet.")
        return
    st.markdown("##### Speedup: the slowest device's training time divided by the fastest's, in the same job.")
    shown = jobs[:FINISHED_SHOWN]
    for start in range(0, len(shown), FINISHED_PER_ROW):
        columns = st.columns(FINISHED_PER_ROW)
        for job, column in zip(shown[start : start + FINISHED_PER_ROW], columns, strict=False):
            draw_finished(job, column)


st.title("Class board")
st.markdown("### Everyone on this server sees this page. Names are anonymous: each session gets one.")
live_board()
finished_today()
class_guesses_section()
