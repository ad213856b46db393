"""Train: choose devices, epochs and a sample limit, then time the model on each device through the job queue.

Training never runs in this script: the shared job runner queues the job and runs it in a worker
process, and a fragment polls the job's snapshot every second, so every other page stays responsive.
"""

import pandas as pd
import streamlit as st

from lib.backend import BackendUnavailableError
from lib.charts import device_runs_to_frame, run_summary_frame, total_time_chart
from lib.datasets import DATASETS, available_sources, resolve_locations, unavailable_fix
from lib.devices import DeviceNotFoundError, has_gpu
from lib.estimates import format_seconds
from lib.jobs import JobError, JobNotFoundError, JobSnapshot, JobState
from lib.keys import Key
from lib.limits import LIMIT_ENV_VARS
from lib.links import RunSettings
from lib.parallel import ALL_GPUS, describe_data_parallel, describe_gradient_exchange, device_label
from lib.presets import PRESETS
from lib.spec import SpecError, count_params, flops_per_sample
from lib.ui_state import matching_preset
from ui import runtime, session

POLL_S = 1.0  # seconds between two looks at a running job
JOB_STATE_TEXT = {
    JobState.DONE: "finished",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "was cancelled",
    JobState.TIMED_OUT: "hit the server's time limit",
    JobState.INTERRUPTED: "was interrupted by a server restart",
}

limits = runtime.server_limits()
device_names = runtime.device_names()
training_devices = runtime.training_device_names()
spec = session.current_spec(limits, training_devices)
settings = session.run_settings()
info = DATASETS[spec.dataset]
max_samples = min(limits.samples, info.num_train)


def seed_widgets() -> None:
    """Fills the widgets from the session's spec and run settings before they are drawn."""
    if st.session_state.get(Key.EPOCHS) != spec.epochs:
        st.session_state[Key.EPOCHS] = spec.epochs
    if Key.DEVICES not in st.session_state:
        st.session_state[Key.DEVICES] = list(settings.devices) or device_names
    samples = min(settings.sample_limit or max_samples, max_samples)
    if st.session_state.get(Key.SAMPLE_LIMIT) != samples:
        st.session_state[Key.SAMPLE_LIMIT] = samples


def save_settings() -> None:
    """Widget callback: keeps epochs in the spec and devices/samples in the run settings (and the link)."""
    current = session.current_spec(limits, device_names)
    session.set_spec(current.with_changes(epochs=st.session_state[Key.EPOCHS]))
    session.set_run_settings(RunSettings(tuple(st.session_state[Key.DEVICES]), st.session_state[Key.SAMPLE_LIMIT]))


def current_job() -> JobSnapshot | None:
    """This session's latest job, or None (also when the server restarted and forgot it)."""
    job_id = st.session_state.get(Key.JOB_ID)
    if job_id is None:
        return None
    try:
        return runtime.runner().get(job_id)
    except JobNotFoundError:
        return None


def describe_model() -> str:
    """One line naming the model and its training settings."""
    widths = spec.hidden_units
    layers = f"{len(widths)} x Dense {widths[0]}" if len(set(widths)) == 1 else " -> ".join(map(str, widths))
    preset = matching_preset(spec, PRESETS)
    origin = f" (preset: {PRESETS[preset].title})" if preset else ""
    return (
        f"**{info.title}**, {layers} {spec.hidden_activation}, {spec.optimizer} "
        f"(learning rate {spec.learning_rate:g}), batch {spec.batch_size}{origin}."
    )


def dataset_is_local() -> bool:
    """True when the worker can read the dataset from a local copy."""
    return bool(available_sources(spec.dataset))


def start_job(synthetic: bool) -> bool:
    """Sends the request to the job runner and remembers the job, or shows why it was refused.

    Returns:
        True when the job was accepted.
    """
    try:
        job = runtime.runner().submit(
            session.owner_id(),
            spec,
            st.session_state[Key.DEVICES],
            sample_limit=st.session_state[Key.SAMPLE_LIMIT],
            synthetic=synthetic,
            preset=matching_preset(spec, PRESETS),
        )
    except SpecError as error:
        st.error("The model passes a limit; fix it on the Build page:\n" + "\n".join(f"- {p}" for p in error.problems))
        return False
    except (JobError, DeviceNotFoundError, BackendUnavailableError) as error:
        st.error(str(error), icon=":material/block:")
        return False
    st.session_state[Key.JOB_ID] = job.id
    return True


def draw_settings(busy: bool) -> None:
    """The device, epoch and sample widgets, the data choice and the Train button."""
    st.multiselect(
        "Devices (trained one after the other, same model and data)",
        options=training_devices,
        format_func=device_label,
        key=Key.DEVICES,
        on_change=save_settings,
        disabled=busy,
    )
    if ALL_GPUS in st.session_state[Key.DEVICES]:
        gpus = sum(device.kind == "GPU" for device in runtime.devices())
        st.caption(f"{device_label(ALL_GPUS)}: {describe_data_parallel(spec.batch_size, gpus)}")
        exchange = describe_gradient_exchange(count_params(spec), flops_per_sample(spec), spec.batch_size, gpus)
        if exchange:
            st.caption(exchange)
    left, right = st.columns(2)
    left.slider(
        "Epochs",
        min_value=1,
        max_value=limits.epochs,
        key=Key.EPOCHS,
        on_change=save_settings,
        disabled=busy,
        help=f"Server limit: {limits.epochs} ({LIMIT_ENV_VARS['epochs']}).",
    )
    right.number_input(
        "Training samples (fewer = a quicker run)",
        min_value=1,
        max_value=max_samples,
        step=1000,
        key=Key.SAMPLE_LIMIT,
        on_change=save_settings,
        disabled=busy,
        help=f"{info.title} has {info.num_train:,} training images; this server allows {limits.samples:,} per job "
        f"({LIMIT_ENV_VARS['samples']}).",
    )
    local = dataset_is_local()
    if not local:
        st.warning(
            f"{info.title} is not on this server, so this run trains on generated images of the same shape: "
            f"the timings are real, the accuracy means nothing. {unavailable_fix(spec.dataset, resolve_locations())}",
            icon=":material/cloud_off:",
        )
    synthetic = st.checkbox(
        "Use generated images of the same shape (timings only)",
        value=not local,
        key=Key.SYNTHETIC,
        disabled=busy or not local,
    )
    clicked = st.button("Train", key=Key.TRAIN, type="primary", icon=":material/play_arrow:", disabled=busy)
    if clicked and start_job(synthetic or not local):
        st.rerun()


def draw_progress(job: JobSnapshot) -> None:
    """Queue position, or each device's epoch, batch, elapsed time and loss."""
    if job.state == JobState.QUEUED:
        start = format_seconds(job.estimated_start_s or 0.0)
        st.info(
            f"Waiting in the queue: position {job.position}, about {start} until it starts. "
            "Jobs run one at a time so every timing is honest.",
            icon=":material/hourglass_top:",
        )
        return
    st.markdown(f"**Training** (job `{job.id}`)")
    for device in job.request.devices:
        event = job.latest_progress(device)
        if event is None:
            st.progress(0.0, text=f"`{device}`: waiting (starting the worker, loading the data)")
            continue
        done = (max(event.epoch - 1, 0) + (event.batch / event.batches if event.batches else 0)) / max(event.epochs, 1)
        if event.kind in ("epoch", "device_done"):
            done = event.epoch / max(event.epochs, 1)
        loss = "" if event.loss is None else f", loss {event.loss:.4f}"
        st.progress(
            min(done, 1.0),
            text=f"`{device}`: epoch {event.epoch}/{event.epochs}, batch {event.batch}/{event.batches}, "
            f"{format_seconds(event.elapsed_s)} elapsed{loss}",
        )


@st.fragment(run_every=POLL_S)
def live_job(job_id: str) -> None:
    """Polls this session's job: progress and a cancel button while it is active, then redraws the page."""
    job = runtime.runner().get(job_id)
    if job.is_final:
        st.rerun()
    draw_progress(job)
    if st.button("Cancel", key=Key.CANCEL, icon=":material/stop:", disabled=job.stop_requested):
        runtime.runner().cancel(job_id, owner=session.owner_id())
        st.rerun()


def result_table(job: JobSnapshot) -> pd.DataFrame:
    """One row per device: status, times, throughput and test accuracy."""
    return pd.DataFrame(
        {
            "Device": [run.device for run in job.results],
            "Status": [run.status for run in job.results],
            "Total time (s)": [run.total_s for run in job.results],
            "Epoch 1, with compilation (s)": [run.first_epoch_s for run in job.results],
            "Later epochs (s)": [run.steady_epoch_s for run in job.results],
            "Samples/s": [run.samples_per_s for run in job.results],
            "Test accuracy": [run.test_accuracy for run in job.results],
            "Note": [run.error for run in job.results],
        }
    )


def draw_result(job: JobSnapshot) -> None:
    """The finished job: a message, the table and the total-time chart."""
    text = f"Job `{job.id}` {JOB_STATE_TEXT.get(job.state, job.state.value)}."
    if job.state == JobState.DONE:
        st.success(text, icon=":material/check_circle:")
    else:
        st.warning(f"{text} {job.error}", icon=":material/warning:")
    if not job.results:
        return
    seconds = st.column_config.NumberColumn(format="%.2f")
    st.dataframe(
        result_table(job),
        hide_index=True,
        width="stretch",
        column_config={
            "Total time (s)": seconds,
            "Epoch 1, with compilation (s)": seconds,
            "Later epochs (s)": seconds,
            "Samples/s": st.column_config.NumberColumn(format="%.0f"),
            "Test accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )
    summary = run_summary_frame(device_runs_to_frame(list(job.results)))
    if not summary.empty:
        with st.container(border=True):
            st.altair_chart(total_time_chart(summary), width="stretch")
            st.caption("Shorter bars are faster; the label says how many times faster than the slowest device.")
    st.page_link("app_pages/results.py", label="See all charts on the Results page", icon=":material/bar_chart:")


st.title("Train")
session.show_link_notices()
st.markdown(f"Model: {describe_model()}")
st.page_link("app_pages/build.py", label="Change the model", icon=":material/construction:")
if not has_gpu(runtime.devices()):
    st.info(
        "This server has no GPU, so every run here is on the CPU. You can still compare: train the same model "
        "at batch 32 and at batch 1024 (Build page), or with the tuned preset, and put the runs side by side "
        "on the Results page.",
        icon=":material/info:",
    )

job = current_job()
busy = job is not None and not job.is_final
seed_widgets()
with st.container(border=True):
    draw_settings(busy)
    others = runtime.runner().queue_length() - (1 if busy else 0)
    if others > 0 and not busy:
        st.caption(
            f"{others} job(s) from other users are queued or running; yours would start in about "
            f"{format_seconds(runtime.runner().estimated_wait_s())}."
        )

if busy:
    live_job(job.id)
elif job is not None:
    draw_result(job)

session.write_link(session.current_spec(limits, device_names), session.run_settings())
