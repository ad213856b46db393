"""Where does the GPU win? One click trains the model at several batch sizes on each device, through the queue.

A sweep is one job (`lib.sweep`): every device trains the session's model at each chosen batch size, two
short epochs each (the first compiles, the second is timed), smallest batch first. Each point is a real run,
stored with its batch size. The finished sweep draws throughput and speedup against batch size with the
crossover marked; on a server with no GPU, the CPU's own curve, what a GPU changes, and the stored GPU runs of
the same model. A session has one job at a time, shared with the Train page (`Key.JOB_ID`).
"""

from __future__ import annotations

import streamlit as st

from lib.backend import BackendUnavailableError, backend_name
from lib.datasets import DATASETS, available_sources
from lib.devices import DeviceNotFoundError, has_gpu
from lib.estimates import estimate_request
from lib.formatting import format_seconds
from lib.jobs import JobError, JobRequest, JobSnapshot, JobState
from lib.lesson import PAGE_TITLES
from lib.limits import MAX_SWEEP_POINTS, MIN_SWEEP_POINTS
from lib.links import BATCHES_PARAM, refused_spec_problems
from lib.parallel import device_label
from lib.presets import PRESETS
from lib.spec import SpecError
from lib.store import StoreError
from lib.sweep import (
    DEFAULT_SWEEP_BATCHES,
    SWEEP_BATCH_CHOICES,
    SWEEP_EPOCHS,
    SWEEP_TEST_LIMIT,
    sweep_samples,
    sweep_spec,
)
from ui import lesson, presenter, runtime, session
from ui.job_progress import (
    add_message,
    adopt_linked_job,
    draw_run_progress,
    live_job,
    session_job,
    show_messages,
    stopping,
)
from ui.keys import Key
from ui.page_data import matching_preset, model_summary
from ui.sweep import draw_sweep_result

limits = runtime.server_limits()
training_devices = runtime.training_device_names()
spec = session.current_spec(limits, training_devices)
info = DATASETS[spec.dataset]
batch_choices = [size for size in SWEEP_BATCH_CHOICES if size <= limits.batch_size]


def chosen_devices() -> list[str]:
    """The devices box (the session's devices from the Train page to start with); the lesson's, if it pins them."""
    devices = [device for device in session.run_settings().devices if device in training_devices]
    devices = devices or list(runtime.device_names())
    if lesson.hidden("devices"):
        return devices
    return st.multiselect(
        "Devices (each trains at every batch size)",
        options=training_devices,
        default=devices,
        format_func=device_label,
        key=Key.SWEEP_DEVICES,
        disabled=busy or lesson.locked("devices"),
    )


def chosen_batch_sizes() -> list[int]:
    """The batch sizes box: up to `MAX_SWEEP_POINTS`, from the tutorial's 32 to what fills a GPU.

    The choice is the session's run settings (`RunSettings.sweep_batches`, in the link as `batches=`; empty for
    the default), so a link or a lesson can set it; a lesson may hide or lock the box.
    """
    default = [size for size in DEFAULT_SWEEP_BATCHES if size in batch_choices]
    kept = list(session.run_settings().sweep_batches) or default
    if lesson.hidden(BATCHES_PARAM):
        return kept
    chosen = st.multiselect(
        "Batch sizes to compare",
        options=sorted({*batch_choices, *kept}),  # a link's own sizes too
        default=kept,
        max_selections=MAX_SWEEP_POINTS,
        format_func=lambda size: f"{size:,}",
        key=Key.SWEEP_BATCHES,
        disabled=busy or lesson.locked(BATCHES_PARAM),
    )
    keep_batch_sizes(sorted(chosen), default)
    return chosen


def keep_batch_sizes(chosen: list[int], default: list[int]) -> None:
    """Keeps the box's sizes in the session's settings (and so in the link); the default and a single size as ()."""
    sizes = () if chosen == default or len(chosen) < MIN_SWEEP_POINTS else tuple(chosen)
    session.change_run_settings(sweep_batches=sizes)


def draw_plan(devices: list[str], batch_sizes: list[int], samples: int) -> None:
    """What one click will train, and how long that should take here."""
    runs = len(devices) * len(batch_sizes)
    request = JobRequest(sweep_spec(spec, batch_sizes), tuple(devices), samples, batch_sizes=tuple(batch_sizes))
    estimate = estimate_request(
        request,
        samples,
        runtime.finished_runs(),
        overhead_s=runtime.runner().expected_overhead_s(),
        backend=backend_name(),
    )
    st.caption(
        f"{runs} short run{'s' if runs != 1 else ''}: {samples:,} training samples each, {SWEEP_EPOCHS} epochs "
        f"(the first compiles, the second is timed), no test; about {format_seconds(estimate.total_s)} here. "
        "The sample count is raised where needed so that the largest batch takes several steps."
    )
    if not available_sources(spec.dataset):
        st.caption(f"{info.title} is not on this server, so the sweep times generated images of the same shape.")


def start_sweep(devices: list[str], batch_sizes: list[int], samples: int) -> bool:
    """Queues the sweep as the session's job, or shows why it was refused."""
    if not devices or len(batch_sizes) < 2:
        st.error("Choose at least one device and two batch sizes.", icon=":material/block:")
        return False
    try:
        job = runtime.runner().submit(
            session.owner_id(),
            sweep_spec(spec, batch_sizes),
            devices,
            sample_limit=samples,
            test_limit=SWEEP_TEST_LIMIT,
            synthetic=not available_sources(spec.dataset),
            preset=matching_preset(spec, PRESETS),
            client=st.context.ip_address or None,
            batch_sizes=tuple(batch_sizes),
        )
    except SpecError:
        problems = refused_spec_problems(spec, limits)
        st.error("The model passes a server limit; fix it on the Build page:\n" + "\n".join(f"- {p}" for p in problems))
        return False
    except (JobError, DeviceNotFoundError, BackendUnavailableError) as error:
        st.error(str(error), icon=":material/block:")
        return False
    st.session_state[Key.JOB_ID] = job.id
    session.change_run_settings(job_id=job.id)  # a reload follows it (`job=`)
    return True


def draw_sweep_progress(job: JobSnapshot) -> None:
    """The running sweep: its place in the queue, or one progress bar per point."""
    if job.state == JobState.QUEUED:
        st.info(
            f"Waiting in the queue: position {job.position}, about {format_seconds(job.estimated_start_s or 0.0)} "
            "until it starts.",
            icon=":material/hourglass_top:",
        )
        return
    st.markdown(f"**{'Stopping' if stopping(job) else 'Measuring'}** (job `{job.id}`)")
    draw_run_progress(job)


def draw_finished(job: JobSnapshot) -> None:
    """The session's finished sweep: how it ended, then its charts from the store."""
    if job.state == JobState.DONE:
        st.success(f"Sweep `{job.id}` done.", icon=":material/check_circle:")
    else:
        st.warning(
            f"Sweep `{job.id}` ended early: {job.error} Its finished points are drawn.", icon=":material/warning:"
        )
    draw_stored_sweep(job.id)


def draw_stored_sweep(job_id: str) -> None:
    """A stored sweep's charts; a store that cannot be read says so."""
    try:
        store = runtime.store()
        rows = store.runs(job_id=job_id)
    except StoreError as error:
        st.error(f"The run store cannot be read, so the sweep cannot be drawn: {error}", icon=":material/error:")
        return
    draw_sweep_result(rows, runtime.finished_runs(), presenter.chart_style())


def latest_stored_sweep() -> str | None:
    """The job id of the newest finished sweep on this server, or None (also when the store cannot be read)."""
    try:
        return runtime.store().latest_sweep_id()
    except StoreError:
        return None


st.title(PAGE_TITLES["sweep"])
session.show_link_notices()
st.markdown(
    "A GPU has thousands of simple cores; a batch of 32 images keeps only a few of them busy. "
    "Train the same model at several batch sizes on each device and watch where the GPU overtakes the CPU."
)
st.markdown(f"Model: {model_summary(spec)}")
st.page_link("app_pages/build.py", label="Change the model", icon=":material/construction:")
if not has_gpu(runtime.devices()):
    st.info(
        "This server has no GPU: the sweep draws the CPU's own curve, and says what a GPU changes, "
        "with the GPU runs of this model stored here, if any.",
        icon=":material/info:",
    )
adopt_linked_job(session.run_settings())
show_messages()
job = session_job()
busy = job is not None and not job.is_final
with st.container(border=True):
    devices = chosen_devices()
    batch_sizes = sorted(chosen_batch_sizes())
    samples = sweep_samples(batch_sizes, session.run_settings().sample_limit or 0, min(limits.samples, info.num_train))
    if devices and batch_sizes:
        draw_plan(devices, batch_sizes, samples)
    if busy and not job.request.is_sweep:
        st.info("Your training job (Train page) is queued or running; the sweep can start once it ends.")
    clicked = st.button(
        "Measure where the GPU wins", key=Key.SWEEP_START, type="primary", icon=":material/play_arrow:", disabled=busy
    )
    if clicked and start_sweep(devices, batch_sizes, samples):
        add_message("info", "Sweep queued: each point appears below as it trains.")
        st.rerun()

if busy and job.request.is_sweep:
    live_job(job.id, draw_sweep_progress)
elif job is not None and job.request.is_sweep:
    draw_finished(job)
else:
    latest = latest_stored_sweep()
    if latest is not None:
        st.subheader("The latest sweep on this server")
        draw_stored_sweep(latest)
session.write_link(spec, session.run_settings())
