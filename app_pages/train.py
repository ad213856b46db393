"""Train: choose devices, epochs and a sample limit, then time the model on each device through the job queue.

Training never runs in this script: the shared job runner queues the job (or joins an identical one that
is already queued or running) and runs it in a worker process, on this server or on a machine of a Ray
cluster; a fragment polls the job every second. The page says where jobs run, which machine ran (or runs)
this session's job, and, while a cluster's head does not answer, that queued jobs are kept.

What the page shows is what the job trains. The choices live in the session's own state (devices and the
sample limit in `RunSettings`, epochs in the model spec); the widgets only show them, and Train sends
exactly those values. Two ways a widget's value went astray under load are closed here:

- A widget whose value the page set through session state was drawn with an empty default. When the
  browser's rerun requests went out before it had recorded that value, it later sent the widget's own
  default (an empty Devices box) as if the user had cleared it. Each widget is now drawn with the session's
  value as its default, and set through session state only in a run where it shows something else.
- While a job runs the widgets are disabled, and Streamlit drops a disabled widget's browser value and
  shows its value from before the last full rerun, which was the value from before the user's edits when
  Train was pressed in the same request as an edit. Disabled widgets are therefore always set from the
  session's state.

The sample limit starts at a class-sized suggestion (about 45 s here, `lib.estimates.suggest_sample_limit`),
kept as shown until the model or the devices change; a number the user typed, or a link's `samples`, wins
over it and is never replaced by a suggestion.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from lib.backend import BackendUnavailableError, backend_name
from lib.charts import device_runs_to_frame, run_summary_frame, total_time_chart
from lib.class_board import cluster_problem_text, where_jobs_run
from lib.datasets import DATASETS, OWNER_FIX_TITLE, available_sources, resolve_locations, unavailable_fix
from lib.device_run import DeviceRun
from lib.devices import DeviceNotFoundError, has_gpu
from lib.energy import run_energy_text
from lib.estimates import SampleSuggestion, estimate_job, suggest_sample_limit
from lib.formatting import format_seconds
from lib.hardware import machine_text
from lib.jobs import JobError, JobSnapshot, JobState, QueueFullError
from lib.limits import OWNER_SETTINGS_TITLE, owner_settings
from lib.links import REPEATS_PARAM, TARGET_PARAM, TARGET_RANGE, RunSettings, refused_spec_problems
from lib.parallel import ALL_GPUS, describe_data_parallel, describe_gradient_exchange, device_label
from lib.presets import PRESETS
from lib.repeats import TRIM_FROM
from lib.spec import SpecError, count_params, flops_per_sample
from lib.store import StoreError
from lib.take_home import job_runs
from lib.time_to_target import default_target, target_text
from ui import lesson, presenter, runtime, session
from ui.guesses import draw_guess, draw_reveal, keep_guess
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
from ui.take_home import draw_take_home

MISSING = "—"  # what the result table shows for a value a run does not have (Streamlit's default: "None")
SAMPLE_STEP = 1000  # the samples input's +/- step
JOB_STATE_TEXT = {
    JobState.DONE: "finished",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "was cancelled",
    JobState.TIMED_OUT: "hit the server's time limit",
    JobState.INTERRUPTED: "was interrupted by a server restart",
}
NO_DEVICE_MESSAGE = (
    "Choose at least one device in the Devices box above (cpu:0 is this server's processor), then press Train again."
)
CHANGED_WHILE_CLICKED_MESSAGE = (
    "Your settings changed while you pressed Train, so nothing was started: check them above and press Train again."
)
# The limits a Train click meets.
TRAIN_LIMITS = ("epochs", "samples", "repeats", "job_seconds", "queue", "jobs_per_client")
GENERATED_NOTE = "Generated images: no test accuracy (it would say nothing about the real dataset)."
GENERATED_CAPTION = (
    "This run trained on generated images of the dataset's shape: the timings are real, but an accuracy on "
    "them says nothing about the real dataset, so the table leaves it out."
)

limits = runtime.server_limits()
training_devices = runtime.training_device_names()
spec = session.current_spec(limits, training_devices)
info = DATASETS[spec.dataset]
max_samples = min(limits.samples, info.num_train)


def session_settings() -> RunSettings:
    """The session's run settings, its devices filled in on the first view and limited to this server's.

    The first view takes the link's devices, else every device of this server (not data parallel). A device
    that is no longer offered (the server's list becomes exact once the backend has loaded) leaves the
    session's choice with a message, never silently.
    """
    settings = session.run_settings()
    if not st.session_state.get(Key.DEVICES_RESOLVED):
        st.session_state[Key.DEVICES_RESOLVED] = True
        if not settings.devices:
            settings = replace(settings, devices=tuple(runtime.device_names()))
    offered = tuple(device for device in settings.devices if device in training_devices)
    gone = [device_label(device) for device in settings.devices if device not in training_devices]
    if gone:
        verb, pronoun = ("is", "it") if len(gone) == 1 else ("are", "they")
        add_message("warning", f"{', '.join(gone)} {verb} not on this server now, so {pronoun} left your devices.")
        settings = replace(settings, devices=offered)
    session.set_run_settings(settings)
    return settings


def job_overhead_s() -> float:
    """Seconds a job spends outside training here (worker start, imports, data), for the estimates."""
    return runtime.runner().expected_overhead_s()


def estimate_devices(devices: tuple[str, ...]) -> tuple[str, ...]:
    """The devices an estimate is made for: the chosen ones, else this server's (while none is chosen)."""
    return devices or tuple(runtime.device_names())


def sample_suggestion(devices: tuple[str, ...]) -> SampleSuggestion:
    """The class-sized sample limit for this model and these devices, kept as shown until either changes.

    Past runs come in all the time; a suggestion that moved between the view and the click would train a
    number the user never saw, so one is made once per model, devices and dataset size.
    """
    made_for = (spec, estimate_devices(devices), max_samples)
    kept = st.session_state.get(Key.SAMPLE_SUGGESTION)
    if kept is not None and kept[0] == made_for:
        return kept[1]
    suggestion = suggest_sample_limit(
        spec,
        made_for[1],
        runtime.finished_runs(),
        overhead_s=job_overhead_s(),
        max_samples=max_samples,
        backend=backend_name(),
    )
    st.session_state[Key.SAMPLE_SUGGESTION] = (made_for, suggestion)
    return suggestion


def shown_samples(settings: RunSettings, suggestion: SampleSuggestion) -> int:
    """The sample limit the page shows and Train sends: the user's (or link's) choice, else the suggestion."""
    if settings.sample_limit is None:
        return suggestion.samples
    return min(settings.sample_limit, max_samples)


def widget_default(key: str, value: Any, busy: bool) -> Any:
    """Makes a widget show `value`; returns the default to draw it with (None when it was set through state).

    The default is the value itself, so a browser that lost the widget's value falls back to it. The value
    goes through session state only when the widget would show something else (a page switch dropped it,
    or the session's state changed), and always while the widget is disabled.
    """
    if busy or st.session_state.get(key) != value:
        st.session_state[key] = value
        return None
    return value


def on_devices_change() -> None:
    """Devices box callback: the session's devices become what the box shows."""
    session.change_run_settings(devices=tuple(st.session_state[Key.DEVICES]))


def on_epochs_change() -> None:
    """Epochs slider callback: the session's spec trains that many epochs."""
    session.set_spec(session.current_spec(limits, training_devices).with_changes(epochs=st.session_state[Key.EPOCHS]))


def on_samples_change() -> None:
    """Samples input callback: the typed number becomes the session's choice (a suggestion no longer applies)."""
    session.change_run_settings(sample_limit=int(st.session_state[Key.SAMPLE_LIMIT]))


def choose_samples(samples: int | None) -> None:
    """Button callback: trains on `samples` (None: back to the suggestion)."""
    session.change_run_settings(sample_limit=samples)


def client_address() -> str | None:
    """The browser's network address, for the fair queue; None when Streamlit does not know it."""
    return st.context.ip_address or None


def dataset_is_local() -> bool:
    """True when the worker can read the dataset from a local copy."""
    return bool(available_sources(spec.dataset))


def target_unavailable(generated: bool) -> str:
    """Why this run cannot stop at a target accuracy ("" when it can)."""
    if generated:
        return "generated images have random labels"
    if spec.device_resident:
        return "it needs model.fit: turn off keeping the data on the device (Build page)"
    return ""


def draw_target(busy: bool, generated: bool) -> float | None:
    """Time to accuracy: a switch and the target test accuracy (the dataset's default first); None when off.

    The choice is the session's run settings (`RunSettings.target_accuracy`, in the link as `target=`), so it
    survives a visit to another page; a lesson may hide or lock it.
    """
    why_not = target_unavailable(generated)
    kept = session.run_settings().target_accuracy
    if lesson.hidden(TARGET_PARAM):
        return None if why_not else kept
    locked = lesson.locked(TARGET_PARAM)
    left, right = st.columns(2)
    on = left.toggle(
        "Stop at a test accuracy (time to accuracy)",
        value=kept is not None and not why_not,
        key=Key.TARGET_ON,
        disabled=busy or bool(why_not) or locked,
        help="After each epoch the model is evaluated on the test images (its time counts) and training stops "
        "once the accuracy reaches the target: MLPerf's time to accuracy.",
    )
    if why_not:
        left.caption(f"Not for this run: {why_not}.")
        return None
    low, high = TARGET_RANGE
    target = None
    if on:
        target = right.number_input(
            "Target test accuracy",
            min_value=low,
            max_value=high,
            value=min(max(kept or default_target(spec.dataset), low), high),
            step=0.01,
            format="%.2f",
            key=Key.TARGET_ACCURACY,
            disabled=busy or locked,
        )
    session.change_run_settings(target_accuracy=None if target is None else round(float(target), 4))
    return session.run_settings().target_accuracy


def draw_repeats(busy: bool) -> int:
    """Runs per device: 1, or several (each with its own seed) for a median and a spread.

    Kept in the session's run settings (`RunSettings.repeats`, in the link as `repeats=`); a lesson may hide or
    lock it.
    """
    kept = min(session.run_settings().repeats, limits.repeats)
    if lesson.hidden(REPEATS_PARAM):
        return kept
    repeats = st.number_input(
        "Runs per device (several give a median and a spread)",
        min_value=1,
        max_value=limits.repeats,
        value=kept,
        step=1,
        key=Key.REPEATS,
        disabled=busy or lesson.locked(REPEATS_PARAM),
        help=f"Each run trains with its own seed. With {TRIM_FROM} or more, the fastest and the slowest are "
        f"dropped before the median, as MLPerf does. Server limit: {limits.repeats} runs per device.",
    )
    session.change_run_settings(repeats=int(repeats))
    return session.run_settings().repeats


def start_job(
    settings: RunSettings, samples: int, synthetic: bool, target: float | None = None, repeats: int = 1
) -> bool:
    """Sends the session's request to the job runner and remembers the job, or shows why it was refused.

    Returns:
        True when the job was accepted (queued, or joined to an identical one).
    """
    if not settings.devices:
        st.error(NO_DEVICE_MESSAGE, icon=":material/block:")
        return False
    try:
        job = runtime.runner().submit(
            session.owner_id(),
            spec,
            settings.devices,
            sample_limit=samples,
            synthetic=synthetic,
            preset=matching_preset(spec, PRESETS),
            client=client_address(),
            target_accuracy=target,
            repeats=repeats,
        )
    except SpecError:
        problems = refused_spec_problems(spec, limits)
        st.error("The model passes a server limit; fix it on the Build page:\n" + "\n".join(f"- {p}" for p in problems))
        return False
    except QueueFullError as error:
        st.error(str(error), icon=":material/hourglass_disabled:")
        return False
    except (JobError, DeviceNotFoundError, BackendUnavailableError) as error:
        st.error(str(error), icon=":material/block:")
        return False
    st.session_state[Key.JOB_ID] = job.id
    session.set_run_settings(replace(settings, job_id=job.id))
    return True


def draw_samples(settings: RunSettings, samples: int, suggestion: SampleSuggestion, busy: bool) -> int:
    """The samples input, how long that takes here, and the suggestion and the whole dataset a click away."""
    typed = st.number_input(
        "Training samples (fewer = a quicker run)",
        min_value=1,
        max_value=max_samples,
        value=widget_default(Key.SAMPLE_LIMIT, samples, busy) or "min",
        step=SAMPLE_STEP,
        key=Key.SAMPLE_LIMIT,
        on_change=on_samples_change,
        disabled=busy,
        help=f"{info.title} has {info.num_train:,} training images; this server allows {limits.samples:,} per job.",
    )
    if settings.sample_limit is not None and settings.sample_limit > max_samples:
        st.caption(f"You chose {settings.sample_limit:,}; {info.title} has {max_samples:,} here, so all of them train.")
    devices = estimate_devices(settings.devices)
    runs, overhead_s = runtime.finished_runs(), job_overhead_s()  # read once for both estimates below
    if samples == suggestion.samples:
        label = "the whole training set" if suggestion.whole_dataset else "suggested for a class"
        st.caption(f"{samples:,} samples, {label}: {suggestion.text}.")
        estimate = suggestion.estimate
    else:
        estimate = estimate_job(spec, samples, devices, runs, overhead_s=overhead_s, backend=backend_name())
        st.caption(f"{samples:,} samples: {estimate.seconds_text} here ({estimate.source_text}).")
        st.button(
            f"Back to the suggested {suggestion.samples:,} ({suggestion.estimate.seconds_text})",
            key=Key.USE_SUGGESTED_SAMPLES,
            on_click=choose_samples,
            args=(None,),
            disabled=busy,
        )
    if estimate.samples_note:  # what trains differs from what was asked: say so, in numbers
        st.caption(estimate.samples_note)
    if samples < max_samples:
        whole = estimate_job(spec, max_samples, devices, runs, overhead_s=overhead_s, backend=backend_name())
        st.button(
            f"Use all {max_samples:,} samples",
            key=Key.USE_ALL_SAMPLES,
            on_click=choose_samples,
            args=(max_samples,),
            disabled=busy,
            help=f"The whole training set: {whole.seconds_text} here ({whole.source_text}).",
        )
    return typed


def draw_settings(settings: RunSettings, samples: int, suggestion: SampleSuggestion, busy: bool) -> None:
    """The device, epoch and sample widgets, the data choice and the Train button."""
    chosen = list(settings.devices)  # a lesson may hide a control: its value is the session's (the lesson's)
    if not lesson.hidden("devices"):
        fixed = busy or lesson.locked("devices")
        chosen = st.multiselect(
            "Devices (trained one after the other, same model and data)",
            options=training_devices,
            default=widget_default(Key.DEVICES, list(settings.devices), fixed),
            format_func=device_label,
            key=Key.DEVICES,
            on_change=on_devices_change,
            disabled=fixed,
        )
    if ALL_GPUS in chosen:
        gpus = sum(device.kind == "GPU" for device in runtime.devices())
        st.caption(f"{device_label(ALL_GPUS)}: {describe_data_parallel(spec.batch_size, gpus)}")
        exchange = describe_gradient_exchange(count_params(spec), flops_per_sample(spec), spec.batch_size, gpus)
        if exchange:
            st.caption(exchange)
    left, right = st.columns(2)
    epochs, typed = spec.epochs, samples
    if not lesson.hidden("epochs"):
        fixed = busy or lesson.locked("epochs")
        epochs = left.slider(
            "Epochs",
            min_value=1,
            max_value=limits.epochs,
            value=widget_default(Key.EPOCHS, spec.epochs, fixed),
            key=Key.EPOCHS,
            on_change=on_epochs_change,
            disabled=fixed,
            help=f"Server limit: {limits.epochs:,} epochs.",
        )
    if not lesson.hidden("samples"):
        with right:
            typed = draw_samples(settings, samples, suggestion, busy or lesson.locked("samples"))
    local = dataset_is_local()
    if not local:
        st.warning(
            f"{info.title} is not on this server, so this run trains on generated images of the same shape: "
            "the timings are real, the accuracy means nothing.",
            icon=":material/cloud_off:",
        )
        with st.expander(OWNER_FIX_TITLE.format(title=info.title), icon=":material/build:"):
            st.markdown(unavailable_fix(spec.dataset, resolve_locations()))
    synthetic = st.checkbox(
        "Use generated images of the same shape (timings only)",
        value=not local,
        key=Key.SYNTHETIC,
        disabled=busy or not local,
    )
    target = draw_target(busy, synthetic or not local)
    repeats = draw_repeats(busy)
    guess = draw_guess(chosen, training_devices, busy)
    clicked = st.button("Train", key=Key.TRAIN, type="primary", icon=":material/play_arrow:", disabled=busy)
    if not clicked:
        return
    if (tuple(chosen), epochs, typed) != (settings.devices, spec.epochs, samples):
        st.error(CHANGED_WHILE_CLICKED_MESSAGE, icon=":material/sync_problem:")
    elif guess.problem:
        st.error(f"{guess.problem} Then press Train again.", icon=":material/edit:")
    elif start_job(settings, samples, synthetic or not local, target, repeats):
        problem = keep_guess(st.session_state[Key.JOB_ID], guess)
        if problem:
            add_message("warning", problem)
        st.rerun()


def draw_shared(job: JobSnapshot) -> None:
    """Says so when one run serves several sessions: it is one measurement, shared."""
    if job.requesters > 1:
        verb = "serves" if not job.is_final else "served"
        st.info(
            f"One run {verb} {job.requesters} requests: {job.requesters} sessions asked for exactly this model "
            "and these settings, so they share this one measurement (it is timed once, not once per session).",
            icon=":material/group:",
        )


def draw_progress(job: JobSnapshot) -> None:
    """Queue position, or each device's epoch, batch, elapsed time and loss."""
    draw_shared(job)
    if job.state == JobState.QUEUED:
        problem = cluster_problem_text(runtime.runner().executor_status(), queued=True)
        if problem:  # no start time can be promised while the cluster does not answer
            st.warning(problem, icon=":material/cloud_off:")
            st.info(f"Waiting in the queue: position {job.position}.", icon=":material/hourglass_top:")
            return
        start = format_seconds(job.estimated_start_s or 0.0)
        st.info(
            f"Waiting in the queue: position {job.position}, about {start} until it starts. "
            "Jobs run one at a time so every timing is honest.",
            icon=":material/hourglass_top:",
        )
        return
    doing = "Stopping after the current training step" if stopping(job) else "Training"
    st.markdown(f"**{doing}** (job `{job.id}`)")
    if job.hardware:  # known once the worker has said where it runs
        st.caption(f"On {machine_text(job.hardware)}.")
    draw_run_progress(job)


def result_table(job: JobSnapshot) -> pd.DataFrame:
    """One row per device: status, times, throughput, test accuracy (none on generated images) and a note.

    Missing values are None (NaN in the number columns), which the table shows as `MISSING`.
    """
    return pd.DataFrame(
        {
            "Device": [run.device for run in job.results],
            **({"Run": [run.repeat for run in job.results]} if job.request.repeats > 1 else {}),
            "Status": [run.status for run in job.results],
            "Total time (s)": [run.total_s for run in job.results],
            "Epoch 1, with compilation (s)": [run.first_epoch_s for run in job.results],
            "Later epochs (s)": [run.steady_epoch_s for run in job.results],
            "Samples/s": [run.samples_per_s for run in job.results],
            "Test accuracy": [None if run.synthetic else run.test_accuracy for run in job.results],
            **target_column(job.results),
            "Energy": [run_energy_text(run.to_dict()) for run in job.results],
            "Note": [run_note(run) for run in job.results],
        }
    )


def target_column(runs: tuple[DeviceRun, ...]) -> dict[str, list[str]]:
    """The "Time to target" column, when the job had a target accuracy."""
    if not any(run.target_accuracy is not None for run in runs):
        return {}
    target = next(run.target_accuracy for run in runs if run.target_accuracy is not None)
    return {f"Time to {target:.0%}": [target_text(run.to_dict()) for run in runs]}


def run_note(run: DeviceRun) -> str | None:
    """A run's note: why it did not finish, and that its accuracy on generated images means nothing."""
    notes = [run.error, GENERATED_NOTE if run.synthetic and run.test_accuracy is not None else ""]
    return " ".join(note for note in notes if note) or None


def draw_result(job: JobSnapshot) -> None:
    """The finished job: a message, the table and the total-time chart."""
    text = f"Job `{job.id}` {JOB_STATE_TEXT.get(job.state, job.state.value)}."
    if job.state == JobState.DONE:
        st.success(text, icon=":material/check_circle:")
    else:
        st.warning(f"{text} {job.error}", icon=":material/warning:")
    if job.hardware:
        st.caption(f"Ran on {machine_text(job.hardware)}.")
    if job.request.is_sweep:  # its runs differ in batch size: the sweep's own page draws them
        st.page_link("app_pages/sweep.py", label="See this sweep's charts", icon=":material/show_chart:")
        return
    draw_reveal(job, spec, limits.batch_size)
    draw_shared(job)
    if not job.results:
        return
    if any(run.synthetic for run in job.results):
        st.caption(GENERATED_CAPTION)
    seconds = st.column_config.NumberColumn(format="%.2f")
    st.dataframe(
        result_table(job),
        hide_index=True,
        width="stretch",
        placeholder=MISSING,
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
            st.altair_chart(total_time_chart(summary, presenter.chart_style()), width="stretch")
            st.caption("Shorter bars are faster; the label says how many times faster than the slowest device.")
    with contextlib.suppress(StoreError):  # the downloads are extra: a store that cannot be read only hides them
        stored = job_runs(runtime.store(), job.id)
        draw_take_home(stored, Key.TRAIN_SCRIPT, Key.TRAIN_NOTEBOOK, Key.TRAIN_TAKE_HOME_RUNS)
    st.page_link("app_pages/results.py", label="See all charts on the Results page", icon=":material/bar_chart:")
    if any(run.confusion for run in job.results):
        st.caption("There too: what the model learned, the classes it mixes up and test images with its answers.")


def draw_queue_note(busy: bool) -> None:
    """Where jobs run, how many other jobs wait, and when a job started now would begin.

    While a cluster's head does not answer, a warning says so (a queued job of this session says it in its
    own progress, polled every second).
    """
    runner = runtime.runner()
    status = runner.executor_status()  # cached by the executor: cheap on every rerun
    st.caption(where_jobs_run(status))
    if status.problem and not busy:
        st.warning(cluster_problem_text(status, queued=False), icon=":material/cloud_off:")
        return
    others = runner.queue_length() - (1 if busy else 0)
    if others > 0 and not busy:
        st.caption(
            f"{others:,} {'job' if others == 1 else 'jobs'} from other users {'is' if others == 1 else 'are'} "
            "queued or running; yours would start in about "
            f"{format_seconds(runner.estimated_wait_s(client_address()))}."
        )


st.title("Train")
session.show_link_notices()
st.markdown(f"Model: {model_summary(spec)}")
st.page_link("app_pages/build.py", label="Change the model", icon=":material/construction:")
if not has_gpu(runtime.devices()):
    st.info(
        "This server has no GPU, so every run here is on the CPU. You can still compare: *Where does the GPU "
        "win?* trains this model at several batch sizes in one click, and says what a GPU would change.",
        icon=":material/info:",
    )

adopt_linked_job(session_settings())
settings = session.run_settings()
show_messages()
job = session_job()
busy = job is not None and not job.is_final
suggestion = sample_suggestion(settings.devices)
with st.container(border=True):
    draw_settings(settings, shown_samples(settings, suggestion), suggestion, busy)
    draw_queue_note(busy)

if busy:
    live_job(job.id, draw_progress)
elif job is not None:
    draw_result(job)
with st.expander(OWNER_SETTINGS_TITLE):
    st.markdown(owner_settings(limits, TRAIN_LIMITS))

session.write_link(session.current_spec(limits, training_devices), session.run_settings())
