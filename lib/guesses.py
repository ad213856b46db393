"""Predict, then reveal: a student's guess of a speedup before a run, the measurement after it, the class's guesses.

Before pressing Train, each student may guess how many times faster one setting trains than another. What is
guessed depends on the server (`question_for`):

- With a GPU: "how many times faster will the GPU train than the CPU?" One job trains the model on both, so
  the job itself measures it.
- On a CPU-only server: "how many times faster per epoch is batch 1,024 than batch 32?" One job trains one
  batch size, so the measurement comes from stored runs of the same model at both batch sizes on this CPU;
  until both exist, `measure` says which one is missing.

Every speedup here is a ratio of steady-epoch throughputs (samples per second over the later epochs, without
compilation), as on the Results page: with the same samples, the same as the ratio of epoch times.

A guess is stored with its job (`GuessRecord`, `lib.store.RunStore.save_guess`), keyed by the job and the
browser session, so it survives a restart and the class board can read it. The board gets `ClassGuess`es:
a guess and its measurement, never who guessed or which job it was.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.jobs import JobRecord, JobRequest
from lib.parallel import device_kind
from lib.spec import ModelSpec

GUESS_MIN = 0.1  # the smallest guess: ten times slower
GUESS_MAX = 1000.0  # the largest guess
GUESS_MAX_CHARS = 20  # longer text is not a number anyone means as a guess
CLOSE_FACTOR = 2.0  # a guess within this factor of the measurement, either way, counts as close
SMALL_BATCH = 32  # the CPU-only question's batch sizes: the tutorial's, and a large one
LARGE_BATCH = 1024
CLOSE = "within 2x"  # the verdicts, as the board's chart and table name them
TOO_LOW = "guessed too low"
TOO_HIGH = "guessed too high"
VERDICTS = (CLOSE, TOO_LOW, TOO_HIGH)
GUESS_COLUMNS = ("question", "guess", "measured", "verdict")  # `class_guesses_frame` output
ONE_EPOCH_NOTE = (
    " A run of one epoch has only its first epoch, which includes compiling the model: train 2 or more epochs "
    "for a steadier number."
)


class GuessError(ValueError):
    """A guess that is not a number of times faster in the allowed range; the message says what to type."""


@dataclass(frozen=True)
class GuessQuestion:
    """One thing a class can guess before a run, and how its answer is explained."""

    kind: str  # stored with each guess: "gpu_vs_cpu" or "batch_1024_vs_32"
    title: str  # a few words for headings: "GPU over CPU"
    prompt: str  # the guess input's label
    faster: str  # the side expected to be faster, for sentences: "the GPU"
    slower: str  # the other side: "the CPU"
    why: str  # what usually decides the answer, in two sentences


GPU_QUESTION = GuessQuestion(
    kind="gpu_vs_cpu",
    title="GPU over CPU",
    prompt="Your guess: how many times faster will the GPU train one epoch than the CPU?",
    faster="the GPU",
    slower="the CPU",
    why=(
        "A GPU does thousands of multiply-adds at once, so it wins by most when each step has a lot of arithmetic "
        "(wide layers, large batches). With small steps it waits on launching each step and on copying data, "
        "and the gap shrinks: the CPU can even win."
    ),
)
BATCH_QUESTION = GuessQuestion(
    kind="batch_1024_vs_32",
    title=f"Batch {LARGE_BATCH:,} over batch {SMALL_BATCH}",
    prompt=(
        f"Your guess: how many times faster will one epoch train at batch {LARGE_BATCH:,} than at batch "
        f"{SMALL_BATCH} on this CPU?"
    ),
    faster=f"batch {LARGE_BATCH:,}",
    slower=f"batch {SMALL_BATCH}",
    why=(
        "Every training step has a fixed cost (starting the step, updating every weight) on top of the "
        f"arithmetic: batch {LARGE_BATCH:,} pays it once per {LARGE_BATCH:,} images instead of once per "
        f"{SMALL_BATCH}, and large matrix products use the CPU's vector units better. Fewer steps also mean "
        "fewer weight updates per epoch: the Results page shows what that does to the loss."
    ),
)
QUESTIONS: dict[str, GuessQuestion] = {question.kind: question for question in (GPU_QUESTION, BATCH_QUESTION)}


@dataclass(frozen=True)
class GuessRecord:
    """One guess as the run store keeps it: one per job and browser session."""

    job_id: str  # the job the guess was made for
    owner: str  # the browser session that guessed (never shown; the board gets no owners)
    question: str  # `GuessQuestion.kind`
    guess: float  # times faster, GUESS_MIN to GUESS_MAX
    made_at: float  # `time.time()` when the job was submitted with it


@dataclass(frozen=True)
class Measurement:
    """What was measured for a guess, or why nothing is yet."""

    speedup: float | None  # the faster side's throughput over the slower side's; None when not measured (yet)
    text: str  # what was measured, or what is missing and what to do
    missing_batches: tuple[int, ...] = ()  # CPU-only question: the batch sizes with no finished run yet


@dataclass(frozen=True)
class Reveal:
    """A guess against its measurement."""

    guess: float  # times faster, as guessed
    measured: float  # times faster, as measured
    verdict: str  # one of VERDICTS
    text: str  # "You guessed 5x; measured 12.3x: ..."

    @property
    def close(self) -> bool:
        """True when the guess is within CLOSE_FACTOR of the measurement."""
        return self.verdict == CLOSE


@dataclass(frozen=True)
class ClassGuess:
    """One guess as the class board may show it: the question, the guess and its measurement, never who or which job."""

    question: str  # `GuessQuestion.kind`
    guess: float  # times faster, as guessed
    measured: float | None  # times faster, as measured; None when not measured (yet)


@dataclass(frozen=True)
class ClassSummary:
    """The class's guesses of one question: how many, their middle and range, and how close they came."""

    question: GuessQuestion
    count: int  # guesses
    median_guess: float  # times faster
    lowest_guess: float
    highest_guess: float
    measured: int  # guesses whose run has been measured
    median_measured: float | None  # the median measurement of those guesses; None when none is measured
    close: int  # measured guesses within CLOSE_FACTOR of their own measurement

    @property
    def close_text(self) -> str:
        """How many guesses came close: "3 of 7", or "none measured yet"."""
        return f"{self.close} of {self.measured}" if self.measured else "none measured yet"

    @property
    def text(self) -> str:
        """The class's guesses in one or two sentences."""
        spread = (
            f"{self.count} guess{'es' if self.count != 1 else ''}, from {format_times(self.lowest_guess)} to "
            f"{format_times(self.highest_guess)} (median {format_times(self.median_guess)})."
        )
        if self.median_measured is None:
            return f"{spread} No run of these guesses has been measured yet."
        return (
            f"{spread} Measured: median {format_times(self.median_measured)}; {self.close} of {self.measured} "
            f"measured guess{'es' if self.measured != 1 else ''} came within {CLOSE_FACTOR:g}x."
        )


def format_times(value: float) -> str:
    """A speedup as people write it: "5x", "12.3x", "150x", "0.45x".

    Args:
        value: Times faster (positive).
    """
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 1:
        return f"{value:.1f}".removesuffix(".0") + "x"
    return f"{float(f'{value:.2g}'):g}x"


def question_for(chosen: Sequence[str], server_devices: Sequence[str]) -> GuessQuestion | None:
    """The question a run of these devices answers on this server; None when it answers none.

    Args:
        chosen: The devices the run trains on ("cpu:0", "gpu:0", "gpu:all").
        server_devices: Every device this server can train on.

    Returns:
        The GPU question when the run has a CPU and a GPU; on a server with no GPU, the batch question when
        the run has a CPU; else None (a GPU server's run on one kind of device compares nothing).
    """
    has_cpu = any(device_kind(device) == "cpu" for device in chosen)
    if any(device_kind(device) == "gpu" for device in server_devices):
        return GPU_QUESTION if has_cpu and any(device_kind(device) == "gpu" for device in chosen) else None
    return BATCH_QUESTION if has_cpu else None


def question_hint(chosen: Sequence[str], server_devices: Sequence[str]) -> str:
    """What to choose to get a question, when these devices answer none on a server with a GPU; "" otherwise.

    Args:
        chosen: The devices the run trains on.
        server_devices: Every device this server can train on.
    """
    if question_for(chosen, server_devices) is not None or not any(device_kind(d) == "gpu" for d in server_devices):
        return ""
    return "Choose the CPU and a GPU in Devices to guess the GPU's speedup before the run."


# ASCII digits only: other scripts' digits (which float() would read) are not what a guess box expects.
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?", re.ASCII)  # "1,000" or "1,000.5"
_DECIMAL_COMMA = re.compile(r"\d+,\d+", re.ASCII)  # "1,5": a decimal comma
_PLAIN = re.compile(r"\d+(?:\.\d*)?|\.\d+", re.ASCII)  # "5", "5.", "0.5", ".5"
_TIMES_SUFFIX = re.compile(r"\s*(?:x|×|times)$")  # "5x", "5 ×", "5 times"


def parse_guess(text: str | None) -> float | None:
    """Reads a typed guess: a number of times faster such as "5", "0.5", "12.5x", "1,000" or "2,5".

    Args:
        text: What the student typed; None or blank means no guess.

    Returns:
        The guess, from GUESS_MIN to GUESS_MAX; None for no guess.

    Raises:
        GuessError: The text is not a number of times faster, or it is outside the range.
    """
    if text is None or not text.strip():
        return None
    cleaned = text.strip().lower()
    shown = cleaned if len(cleaned) <= GUESS_MAX_CHARS else cleaned[:GUESS_MAX_CHARS] + "..."
    number = _TIMES_SUFFIX.sub("", cleaned) if len(cleaned) <= GUESS_MAX_CHARS else ""
    if _THOUSANDS.fullmatch(number):
        number = number.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(number):
        number = number.replace(",", ".")
    if not _PLAIN.fullmatch(number):
        raise GuessError(
            f'"{shown}" is not a number of times faster: type a number such as 5, 0.5 (half as fast) or 20x, '
            "or leave the box empty."
        )
    value = float(number)
    if not GUESS_MIN <= value <= GUESS_MAX:
        raise GuessError(
            f"A guess goes from {GUESS_MIN:g} (ten times slower) to {GUESS_MAX:,.0f} times faster; "
            f'"{shown}" is outside that: type a number in that range.'
        )
    return value


def reveal(question: GuessQuestion, guess: float, measured: float) -> Reveal:
    """Compares a guess with its measurement, in words.

    Args:
        question: What was guessed.
        guess: Times faster, as guessed.
        measured: Times faster, as measured (positive).

    Returns:
        The verdict (within CLOSE_FACTOR either way, too low or too high) and a sentence or two.
    """
    said = f"You guessed {format_times(guess)}; measured {format_times(measured)}"
    verdict = _verdict(guess, measured)
    faster = _capital(question.faster)
    texts = {
        CLOSE: f"{said}: within {CLOSE_FACTOR:g}x of the measurement, a good guess.",
        TOO_LOW: f"{said}: {_times(measured / guess)} more than you guessed. {faster} gained more than you expected.",
        TOO_HIGH: f"{said}: {_times(guess / measured)} less than you guessed. {faster} gained less than you expected.",
    }
    text = texts[verdict]
    if measured < 1:
        text += f" Here {question.faster} was slower than {question.slower}."
    return Reveal(guess=guess, measured=measured, verdict=verdict, text=text)


def measure(question: GuessQuestion, request: JobRequest, job_id: str, runs: pd.DataFrame) -> Measurement:
    """What was measured for a guess about a job.

    Args:
        question: What was guessed.
        request: What the job trained (its spec and devices).
        job_id: The job's id, as its runs are stored.
        runs: Stored runs, as `RunStore.runs()` returns them (unfinished runs are left out here); for the batch
            question, those of the job's dataset at least.

    Returns:
        The GPU question: the job's GPU throughput over its CPU throughput. The batch question: this model's
        median throughput at LARGE_BATCH over SMALL_BATCH on the job's CPU and Keras backend (the job's runs',
        else its request's), from any stored runs; the batch sizes still missing otherwise.
    """
    usable = _finished(runs)
    own = usable[usable["job_id"] == job_id]
    if question.kind == GPU_QUESTION.kind:
        return _measure_gpu(request, own)
    backend = str(own["backend"].iloc[0]) if not own.empty and "backend" in own.columns else request.backend
    return _measure_batches(request, usable, backend)


def class_guesses(
    records: Sequence[GuessRecord], jobs: Mapping[str, JobRecord], runs: pd.DataFrame
) -> list[ClassGuess]:
    """The class's guesses as the board shows them: each session's latest guess per question, measured.

    A session that trains twice for one answer (the batch question needs two runs) is counted once.

    Args:
        records: Stored guesses (`RunStore.guesses()`), in any order.
        jobs: The guesses' jobs by id (`RunStore.jobs()`); a guess whose job is unknown is left out.
        runs: Stored runs, as `RunStore.runs()` returns them.

    Returns:
        One `ClassGuess` per session and question, oldest first; no session or job ids.
    """
    latest: dict[tuple[str, str], GuessRecord] = {}
    for record in sorted(records, key=lambda record: record.made_at):
        if record.question in QUESTIONS and record.job_id in jobs:
            latest[(record.owner, record.question)] = record
    chosen = sorted(latest.values(), key=lambda record: record.made_at)
    return [
        ClassGuess(
            question=record.question,
            guess=record.guess,
            measured=measure(QUESTIONS[record.question], jobs[record.job_id].request, record.job_id, runs).speedup,
        )
        for record in chosen
    ]


def class_summaries(guesses: Sequence[ClassGuess]) -> list[ClassSummary]:
    """Sums up the class's guesses per question, in `QUESTIONS` order; questions nobody guessed are left out.

    Args:
        guesses: From `class_guesses`.
    """
    summaries = []
    for question in QUESTIONS.values():
        asked = [guess for guess in guesses if guess.question == question.kind]
        if not asked:
            continue
        values = [guess.guess for guess in asked]
        measured = [guess for guess in asked if guess.measured is not None]
        summaries.append(
            ClassSummary(
                question=question,
                count=len(asked),
                median_guess=statistics.median(values),
                lowest_guess=min(values),
                highest_guess=max(values),
                measured=len(measured),
                median_measured=statistics.median(guess.measured for guess in measured) if measured else None,
                close=sum(_verdict(guess.guess, guess.measured) == CLOSE for guess in measured),
            )
        )
    return summaries


def class_guesses_frame(guesses: Sequence[ClassGuess]) -> pd.DataFrame:
    """The measured guesses as a tidy frame for `lib.charts.guesses_chart`: one row per guess, no ids.

    Args:
        guesses: From `class_guesses`.

    Returns:
        Columns `GUESS_COLUMNS`: the question's title, the guess and the measurement (times faster) and the
        verdict; guesses not measured yet are left out.
    """
    rows = [
        {
            "question": QUESTIONS[guess.question].title,
            "guess": guess.guess,
            "measured": guess.measured,
            "verdict": _verdict(guess.guess, guess.measured),
        }
        for guess in guesses
        if guess.measured is not None and guess.question in QUESTIONS
    ]
    return pd.DataFrame(rows, columns=list(GUESS_COLUMNS))


# --- internals ---


def _times(ratio: float) -> str:
    """A factor in words: "2.5 times", "12 times"."""
    return format_times(ratio).removesuffix("x") + " times"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _verdict(guess: float, measured: float) -> str:
    ratio = measured / guess
    if ratio > CLOSE_FACTOR:
        return TOO_LOW
    if ratio < 1 / CLOSE_FACTOR:
        return TOO_HIGH
    return CLOSE


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs with a positive throughput."""
    needed = {"job_id", "status", "device", "samples_per_s", "batch_size", "epochs", "spec"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=sorted(needed | {"backend"}))
    throughput = pd.to_numeric(runs["samples_per_s"], errors="coerce")
    return runs[(runs["status"] == "done") & (throughput > 0)]


def _first_of_kind(devices: Sequence[str], kind: str) -> str | None:
    return next((device for device in devices if device_kind(device) == kind), None)


def _measure_gpu(request: JobRequest, job_runs: pd.DataFrame) -> Measurement:
    """The job's GPU throughput over its CPU's: its first GPU and first CPU device."""
    cpu, gpu = _first_of_kind(request.devices, "cpu"), _first_of_kind(request.devices, "gpu")
    speeds = {str(row.device): float(row.samples_per_s) for row in job_runs.itertuples(index=False)}
    if cpu not in speeds or gpu not in speeds:
        return Measurement(
            None, "This run did not finish on both the CPU and the GPU, so there is no speedup to compare with."
        )
    speedup = speeds[gpu] / speeds[cpu]
    text = (
        f"{gpu} trained {speeds[gpu]:,.0f} samples/s, {cpu} {speeds[cpu]:,.0f}: {gpu} was "
        f"{format_times(speedup)} as fast, per epoch after the first."
    )
    return Measurement(speedup, text + (ONE_EPOCH_NOTE if request.spec.epochs < 2 else ""))


def _measure_batches(request: JobRequest, runs: pd.DataFrame, backend: str | None) -> Measurement:
    """This model's median throughput at LARGE_BATCH over SMALL_BATCH on the job's CPU, from stored runs."""
    cpu = _first_of_kind(request.devices, "cpu") or "cpu:0"
    wanted = (SMALL_BATCH, LARGE_BATCH)
    candidates = runs[(runs["device"] == cpu) & runs["batch_size"].isin(wanted)]
    if backend is not None and "backend" in candidates.columns:
        candidates = candidates[candidates["backend"] == backend]
    same = [row for row in candidates.itertuples(index=False) if _same_model(row.spec, request.spec)]
    speeds = {batch: [float(row.samples_per_s) for row in same if int(row.batch_size) == batch] for batch in wanted}
    missing = tuple(batch for batch in wanted if not speeds[batch])
    if missing:
        have = [f"batch {batch:,}" for batch in wanted if speeds[batch]]
        has = f" (it has {have[0]})" if have else ""
        needed = " and ".join(f"batch {batch:,}" for batch in missing)
        return Measurement(
            None,
            f"Not measured yet: the answer needs a finished run of this model at batch {SMALL_BATCH} and at batch "
            f"{LARGE_BATCH:,} on {cpu}, and the store has no run at {needed}{has}. Train it at {needed} to see it.",
            missing_batches=missing,
        )
    small, large = statistics.median(speeds[SMALL_BATCH]), statistics.median(speeds[LARGE_BATCH])
    speedup = large / small
    counts = f"{len(speeds[SMALL_BATCH])} + {len(speeds[LARGE_BATCH])} runs" if len(same) > 2 else "2 runs"
    text = (
        f"On {cpu}, this model trained {large:,.0f} samples/s at batch {LARGE_BATCH:,} and {small:,.0f} at batch "
        f"{SMALL_BATCH} ({counts}, per epoch after the first): {format_times(speedup)} as fast."
    )
    single_epoch = any(int(row.epochs) < 2 for row in same)
    return Measurement(speedup, text + (ONE_EPOCH_NOTE if single_epoch else ""))


def _same_model(stored: Any, spec: ModelSpec) -> bool:
    """True when a stored spec is `spec` but for the batch size, epochs and seed (which leave the work per sample)."""
    if not isinstance(stored, dict):
        return False
    try:
        other = ModelSpec.from_dict(stored)
    except (TypeError, ValueError):
        return False
    ignored = {"batch_size": 1, "epochs": 1, "seed": 0}
    return other.with_changes(**ignored) == spec.with_changes(**ignored)
