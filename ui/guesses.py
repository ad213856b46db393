"""Streamlit-side: predict, then reveal (`lib.guesses`) on the Train page and the class board.

Before a run the Train page offers an optional guess (`draw_guess`), kept with the job when Train is pressed
(`keep_guess`); after the run it shows the guess against the measurement (`draw_reveal`). The class board's
"Class guesses" section (`class_guesses_section`) shows today's guesses of the whole class without names.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from lib.charts import guesses_chart
from lib.class_board import start_of_today
from lib.formatting import DASH
from lib.guesses import (
    GPU_QUESTION,
    QUESTIONS,
    ClassSummary,
    GuessError,
    GuessQuestion,
    GuessRecord,
    class_guesses,
    class_guesses_frame,
    class_summaries,
    format_times,
    measure,
    parse_guess,
    question_for,
    question_hint,
    reveal,
)
from lib.jobs import JobSnapshot
from lib.spec import ModelSpec
from lib.store import StoreError
from ui import presenter, runtime, session
from ui.keys import Key

BOARD_GUESSES_S = 10.0  # seconds between two looks at the class's guesses
JOBS_BEFORE_TODAY_S = 86_400.0  # a guess made today may be for a job submitted up to a day before (a joined one)
GUESS_HELP = (
    "Optional. A number of times faster: 5 means five times as fast, 0.5 half as fast. After the run this page "
    "shows your guess against the measurement; the class board shows the class's guesses without names."
)


@dataclass(frozen=True)
class GuessInput:
    """What the guess input holds when Train is pressed."""

    question: GuessQuestion | None  # None: this run answers no question (no input was shown)
    guess: float | None  # None: no guess, or one that could not be read
    problem: str = ""  # why the typed text is not a guess; "" when it is one or the box is empty


def _keep_typed() -> None:
    """Guess input callback: keeps the text for the next view (Streamlit drops a widget's state off its page)."""
    st.session_state[Key.GUESS_KEPT] = st.session_state[Key.GUESS]


def draw_guess(chosen: Sequence[str], server_devices: Sequence[str], busy: bool) -> GuessInput:
    """The optional guess before Train, for the question the chosen devices answer; a clear message for bad text.

    Args:
        chosen: The devices the run trains on.
        server_devices: Every device this server trains on.
        busy: A job of this session is queued or running (the input is disabled).
    """
    question = question_for(chosen, server_devices)
    if question is None:
        hint = question_hint(chosen, server_devices)
        if hint:
            st.caption(hint)
        return GuessInput(None, None)
    if Key.GUESS not in st.session_state:
        st.session_state[Key.GUESS] = st.session_state.get(Key.GUESS_KEPT, "")
    text = st.text_input(
        question.prompt,
        key=Key.GUESS,
        on_change=_keep_typed,
        placeholder="for example 5 (optional)",
        disabled=busy,
        help=GUESS_HELP,
    )
    try:
        return GuessInput(question, parse_guess(text))
    except GuessError as error:
        st.error(str(error), icon=":material/edit:")
        return GuessInput(question, None, str(error))


def keep_guess(job_id: str, guess: GuessInput) -> str:
    """Stores this session's guess with the job it was made for.

    Returns:
        Why the guess could not be kept; "" when it was (or there was none).
    """
    if guess.question is None or guess.guess is None:
        return ""
    record = GuessRecord(job_id, session.owner_id(), guess.question.kind, guess.guess, time.time())
    try:
        runtime.store().save_guess(record)
    except StoreError as error:
        return f"Your guess could not be kept, so this run will not show it: {error}"
    return ""


def _runs_for(record: GuessRecord, job: JobSnapshot) -> pd.DataFrame:
    """The stored runs a guess's measurement needs, read now: the job's own, or all of its dataset's."""
    store = runtime.store()
    if record.question == GPU_QUESTION.kind:
        return store.runs(job_id=job.id, status="done")
    return store.runs(dataset=job.request.spec.dataset, status="done")


def _set_batch(spec: ModelSpec, batch: int) -> None:
    """Button callback: the next run trains the session's model at `batch`."""
    session.set_spec(spec.with_changes(batch_size=batch))


def draw_reveal(job: JobSnapshot, spec: ModelSpec, max_batch: int) -> None:
    """After a run: this session's guess for it against the measurement, or what is still to measure.

    Nothing is drawn when the session made no guess for this job.

    Args:
        job: The session's finished job.
        spec: The session's model now (the batch buttons change its batch size).
        max_batch: The server's largest batch size.
    """
    try:
        record = runtime.store().guess(job.id, session.owner_id())
    except StoreError:  # the reveal is extra: a store that cannot be read only hides it
        return
    if record is None or record.question not in QUESTIONS:
        return
    question = QUESTIONS[record.question]
    try:
        measurement = measure(question, job.request, job.id, _runs_for(record, job))
    except StoreError as error:
        st.warning(f"You guessed {format_times(record.guess)}; the measurement cannot be read now: {error}")
        return
    with st.container(border=True):
        if measurement.speedup is None:
            st.info(f"You guessed {format_times(record.guess)}. {measurement.text}", icon=":material/pending:")
            for batch in measurement.missing_batches:
                if batch == spec.batch_size:
                    st.caption(f"Your model is set to batch {batch:,}: press Train above.")
                elif batch <= max_batch:
                    st.button(
                        f"Set batch {batch:,} for the next run",
                        key=f"{Key.GUESS_SET_BATCH}_{batch}",
                        on_click=_set_batch,
                        args=(spec, batch),
                        icon=":material/tune:",
                    )
            return
        result = reveal(question, record.guess, measurement.speedup)
        (st.success if result.close else st.info)(result.text, icon=":material/lightbulb:")
        st.caption(measurement.text)
        st.caption(f"Why: {question.why}")


def _draw_summary(summary: ClassSummary) -> None:
    """One question's guesses: how many, the median guess and measurement, how many came within 2x."""
    st.subheader(summary.question.title)
    columns = st.columns(4)
    median_measured = DASH if summary.median_measured is None else format_times(summary.median_measured)
    columns[0].metric("Guesses", f"{summary.count:,}")
    columns[1].metric("Median guess", format_times(summary.median_guess))
    columns[2].metric("Median measured", median_measured)
    columns[3].metric("Within 2x", summary.close_text)
    st.markdown(f"##### {summary.text}")


@st.fragment(run_every=BOARD_GUESSES_S)
def class_guesses_section() -> None:
    """The class board's "Class guesses": today's guesses against their measurements, never who guessed."""
    store = runtime.store()
    today = start_of_today()
    records = store.guesses(since=today)
    jobs = {job.job_id: job for job in store.jobs(since=today.timestamp() - JOBS_BEFORE_TODAY_S)}
    guesses = class_guesses(records, jobs, runtime.finished_runs())
    st.header(f"Class guesses: {len(guesses)}")
    if not guesses:
        st.markdown("### No guesses today yet: guess the speedup on the Train page before pressing Train.")
        return
    for summary in class_summaries(guesses):
        _draw_summary(summary)
    frame = class_guesses_frame(guesses)
    if frame.empty:
        return
    with st.container(border=True):
        st.altair_chart(guesses_chart(frame, presenter.chart_style()), width="stretch")
        st.caption("Each dot is one guess, without a name. Dots on the dashed line guessed exactly.")
