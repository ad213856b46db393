"""Streamlit-side: a job's live progress and Cancel button, as the Train and sweep pages draw them.

One progress bar per run of the job (`lib.jobs.JobRequest.points`: each device, and in a sweep each device
at each batch size), with where it is, the time so far and the latest loss. Both pages follow the session's
one job (`Key.JOB_ID`: a session has one job at a time), poll it in one fragment (`live_job`, each page
drawing its own progress), show its messages once (`add_message`) and write it into the link (`job=`), so a
reload or a restarted server finds it again (`adopt_linked_job`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import streamlit as st

from lib.class_board import point_label, progress_fraction, progress_text
from lib.formatting import format_seconds
from lib.jobs import JobError, JobNotFoundError, JobSnapshot
from lib.links import RunSettings
from ui import runtime, session
from ui.keys import Key

POLL_S = 1.0  # seconds between two looks at a running job
STOP_WAIT_S = 1.0  # while a job stops, how long one look waits for its end (the runner kills it within ~1 s)
JOB_GONE_MESSAGE = (
    "The job in this link is no longer on this server: it may have ended before the server restarted. "
    "Your settings are still here; start it again when you are ready."
)
TOOK_BACK_MESSAGE = "You took back your request. The run goes on for the other sessions that asked for it."

WAITING_TEXT = "waiting (starting the worker, loading the data)"  # a run with no progress yet


def session_job() -> JobSnapshot | None:
    """This session's latest job (a training job or a sweep), or None (none yet, or it left or lost it)."""
    job_id = st.session_state.get(Key.JOB_ID)
    if job_id is None:
        return None
    try:
        return runtime.runner().get(job_id, session.owner_id())
    except JobNotFoundError:
        st.session_state.pop(Key.JOB_ID, None)
        return None


def adopt_linked_job(settings: RunSettings) -> None:
    """On a session's first view of a link with a job (a reload, a server restart), follows that job.

    The Train and sweep pages both write their job into the link, so a reload of either finds it again; a job
    the server no longer has is taken out of the link with a message, the settings kept.
    """
    job_id = settings.job_id
    if job_id is None or job_id == st.session_state.get(Key.JOB_ID):
        return
    if st.session_state.get(Key.LINKED_JOB_CHECKED) == job_id:
        return
    st.session_state[Key.LINKED_JOB_CHECKED] = job_id
    try:
        job = runtime.runner().adopt(job_id, session.owner_id())
    except JobNotFoundError:
        add_message("warning", JOB_GONE_MESSAGE)
        session.set_run_settings(replace(settings, job_id=None))
        return
    except JobError as error:
        add_message("error", str(error))
        return
    st.session_state[Key.JOB_ID] = job.id


def draw_run_progress(job: JobSnapshot) -> None:
    """One progress bar per run of a running job, in training order."""
    for point in job.request.points():
        event = job.latest_progress(point.key)
        label = point_label(point)
        if event is None:
            st.progress(0.0, text=f"`{label}`: {WAITING_TEXT}")
            continue
        loss = "" if event.loss is None else f", loss {event.loss:.4f}"
        st.progress(
            progress_fraction(event),
            text=f"`{label}`: {progress_text(event)}, {format_seconds(event.elapsed_s)} elapsed{loss}",
        )


def stopping(job: JobSnapshot) -> bool:
    """Whether the job is being stopped: this session pressed Cancel for it, or the server asked it to stop."""
    return job.stop_requested or st.session_state.get(Key.CANCEL_ASKED) == job.id


def add_message(kind: str, text: str) -> None:
    """Keeps a message for the page to show once ("info", "success", "warning" or "error")."""
    st.session_state[Key.JOB_MESSAGES] = [*st.session_state.get(Key.JOB_MESSAGES, []), (kind, text)]


def show_messages() -> None:
    """Shows (once) the messages kept by `add_message`."""
    for kind, text in st.session_state.pop(Key.JOB_MESSAGES, []):
        getattr(st, kind)(text)


def cancel(job_id: str) -> None:
    """Cancel button callback: takes back this session's request (a shared run goes on for the others).

    The session remembers that it asked before the page reruns, so that rerun already draws the button as
    "Stopping..." and disabled, whatever the job's snapshot says by then.
    """
    st.session_state[Key.CANCEL_ASKED] = job_id
    runner = runtime.runner()
    owner = session.owner_id()
    try:
        runner.cancel(job_id, owner=owner)
        runner.get(job_id, owner)
    except JobNotFoundError:  # the run is shared and goes on for the others (or it is gone)
        st.session_state.pop(Key.JOB_ID, None)
        session.change_run_settings(job_id=None)
        add_message("info", TOOK_BACK_MESSAGE)


def draw_cancel(job: JobSnapshot) -> None:
    """The cancel button, "Stopping..." and disabled once pressed; for a shared run it stops only this request."""
    shared = job.requesters > 1
    if shared:
        others = job.requesters - 1
        st.caption(
            f"{others} other session{'s' if others != 1 else ''} also wait for this run: cancelling takes back "
            "only your request, and the run goes on for them."
        )
    if stopping(job):
        label, icon = "Stopping...", ":material/hourglass_top:"
    else:
        label, icon = ("Cancel my request" if shared else "Cancel"), ":material/stop:"
    st.button(label, key=Key.CANCEL, icon=icon, disabled=stopping(job), on_click=cancel, args=(job.id,))


@st.fragment(run_every=POLL_S)
def live_job(job_id: str, draw_progress: Callable[[JobSnapshot], None]) -> None:
    """Polls this session's job: its progress (the page's `draw_progress`) and Cancel, then redraws the page.

    While the job stops, each poll waits for its end (at most `STOP_WAIT_S`), so the page shows "cancelled"
    as soon as the worker has ended instead of at the next poll.
    """
    runner = runtime.runner()
    try:
        job = runner.get(job_id, session.owner_id())
    except JobNotFoundError:
        st.rerun()
    if job.is_final:
        st.rerun()
    draw_progress(job)
    draw_cancel(job)
    if stopping(job) and runner.wait(job_id, timeout_s=STOP_WAIT_S).is_final:
        st.rerun()
