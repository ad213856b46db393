"""Where does the GPU win? One job that trains the same model at several batch sizes on each device.

A sweep is an ordinary `lib.jobs.JobRequest` whose `batch_sizes` is not empty: the worker trains every
(batch size, device) point in turn, smallest batch first, each a real, short, timed run (`SWEEP_EPOCHS`
epochs: the first with compilation, the second the steady one that gives the throughput). The queue, the
limits, cancelling and the run store treat it as one job; each point is stored as its own run, with its
batch size in the spec columns.

This module says what a sweep asks for (`sweep_spec`, `sweep_samples`) and checks its batch sizes
(`check_batch_sizes`); what its runs show is worked out further down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import pandas as pd

from lib.comparison import data_label
from lib.guesses import format_times
from lib.hardware import machine_name
from lib.jobs import LimitError
from lib.limits import MAX_SWEEP_POINTS, MIN_SWEEP_POINTS
from lib.parallel import device_kind
from lib.spec import ModelSpec

SWEEP_BATCH_CHOICES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)  # the batch sizes the page offers
DEFAULT_SWEEP_BATCHES = (32, 128, 512, 2048)  # the page's first choice: the tutorial's 32 to a GPU-sized batch
SWEEP_EPOCHS = 2  # epoch 1 compiles; epoch 2 is the steady epoch whose throughput the chart draws
SWEEP_MIN_STEPS = 4  # training steps per epoch at the largest batch, at least, where the sample limit allows
MAX_REASON_CHARS = 300  # of a failed point's reason, shown under the sweep's charts
SWEEP_TEST_LIMIT = 0  # a sweep measures speed: evaluating each point would only add time


def sweep_samples(batch_sizes: Sequence[int], asked: int, allowed: int) -> int:
    """The training samples of each sweep point: the asked count, raised so the largest batch takes several steps.

    An epoch of one step at batch 2,048 is mostly per-epoch work and noise, no basis for a throughput.

    Args:
        batch_sizes: The sweep's batch sizes.
        asked: The samples the person chose for their runs.
        allowed: The most a job may use here (the server's limit, or the dataset's size if smaller).

    Returns:
        A count between 1 and `allowed`.
    """
    wanted = max(asked, SWEEP_MIN_STEPS * max(batch_sizes, default=0))
    return max(1, min(wanted, allowed))


def check_batch_sizes(batch_sizes: Sequence[int], largest_allowed: int) -> tuple[int, ...]:
    """Checks a sweep's batch sizes and puts them in order, smallest first.

    Args:
        batch_sizes: Whole numbers, in any order.
        largest_allowed: The server's largest batch size.

    Returns:
        The sizes, ascending.

    Raises:
        LimitError: Too few or too many sizes, one that is not a whole number of 1 or more, one over the
            limit, or one listed twice.
    """
    sizes = list(batch_sizes)
    if not MIN_SWEEP_POINTS <= len(sizes) <= MAX_SWEEP_POINTS:
        raise LimitError(
            f"Choose between {MIN_SWEEP_POINTS} and {MAX_SWEEP_POINTS} batch sizes to compare, not {len(sizes)}."
        )
    for size in sizes:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise LimitError(f"Batch sizes must be whole numbers of 1 or more, not {str(size)[:24]!r}.")
        if size > largest_allowed:
            raise LimitError(f"Batch size {size:,} is over this server's limit of {largest_allowed:,}; choose less.")
    if len(set(sizes)) != len(sizes):
        raise LimitError("A batch size is chosen twice; choose each once.")
    return tuple(sorted(sizes))


def sweep_spec(spec: ModelSpec, batch_sizes: Sequence[int]) -> ModelSpec:
    """The spec a sweep's job carries: `SWEEP_EPOCHS` epochs, and its smallest batch size as the spec's own.

    Each run trains it at its own batch size (`lib.jobs.RunPoint.spec`); the job's test limit is
    `SWEEP_TEST_LIMIT`.

    Args:
        spec: The model, as the person built it.
        batch_sizes: The sweep's batch sizes.
    """
    return replace(spec, epochs=SWEEP_EPOCHS, batch_size=min(batch_sizes, default=spec.batch_size))


# --- what a sweep's runs show ---

CPU_KIND = "cpu"  # a device name's kind: the part before the colon ("cpu:0", "gpu:0", "gpu:all")
GPU_KIND = "gpu"
BASELINE_DEVICE = "cpu:0"  # what speedups are measured against; else the first CPU device the sweep has
POINT_COLUMNS = ("device", "batch_size", "samples_per_s", "steady_epoch_s")
SPEEDUP_COLUMNS = ("device", "baseline", "batch_size", "speedup", "samples_per_s", "baseline_samples_per_s")
STORED_GPU_COLUMNS = ("device", "batch_size", "samples_per_s", "machine", "backend", "data", "created_at")
CROSSOVER_COLUMNS = ("device", "batch_size", "outcome", "label")
PEAK_MARGIN = 1.1  # an inner batch size is a device's peak when it beats the largest batch's throughput by 10 %
MAX_STORED_GPU_RUNS = 20  # stored GPU runs the CPU-only case draws and cites, newest first
GPU_EXPLANATION = (
    "A GPU has thousands of simple cores that only a big batch keeps busy: at small batches most of them wait "
    "and the fixed cost of launching each step's work dominates, so a GPU's lead grows with the batch size."
)


class Outcome(StrEnum):
    """How a device's speedup over the CPU changes across the measured batch sizes."""

    OVERTAKES = "overtakes"  # slower (or as fast) at a smaller batch, faster at a larger one
    ALWAYS_FASTER = "always_faster"  # faster at every measured batch size
    NEVER_FASTER = "never_faster"  # never faster at a measured batch size
    FALLS_BEHIND = "falls_behind"  # faster at the small batches only


CROSSING_VERBS = {Outcome.OVERTAKES: "overtakes", Outcome.FALLS_BEHIND: "falls behind"}  # a crossover's label


@dataclass(frozen=True)
class Crossover:
    """Where one device's speedup over the CPU crosses 1x, read from its measured points."""

    device: str  # the device compared, "gpu:0"
    baseline: str  # the CPU device it is compared with, "cpu:0"
    outcome: Outcome
    batch_size: float | None  # interpolated batch size where the speedup is 1x (OVERTAKES, FALLS_BEHIND); else None
    crossings: int  # how often the speedup crosses 1x between neighbouring measured batch sizes
    first_batch: int  # the smallest batch size measured on both devices
    first_speedup: float  # times faster than the baseline there
    last_batch: int  # the largest batch size measured on both devices
    last_speedup: float  # times faster than the baseline there


def sweep_points(runs: pd.DataFrame) -> pd.DataFrame:
    """The sweep's finished points: runs that are done and have a throughput.

    Args:
        runs: A sweep job's rows from `RunStore.runs(job_id=...)`, one per (device, batch size) point.

    Returns:
        Columns `POINT_COLUMNS`, sorted by device then batch size; one row per (device, batch size), the
        last in the frame's order (the newest from the store) where a point appears twice.
    """
    finished = _finished_runs(runs)
    if finished.empty:
        return _empty_frame(POINT_COLUMNS)
    points = finished.loc[:, list(POINT_COLUMNS)].astype(
        {"device": str, "batch_size": "int64", "samples_per_s": float, "steady_epoch_s": float}
    )
    points = points.drop_duplicates(["device", "batch_size"], keep="last")
    return points.sort_values(["device", "batch_size"]).reset_index(drop=True)


def unfinished_point_count(runs: pd.DataFrame) -> int:
    """How many of a sweep's stored points have no throughput: still running, failed, cancelled or interrupted.

    Args:
        runs: A sweep job's rows from `RunStore.runs(job_id=...)`.
    """
    return len(runs) - len(_finished_runs(runs))


def failed_point_texts(runs: pd.DataFrame) -> list[str]:
    """Why each point of a sweep that failed drew nothing, one line each: "gpu:0 at batch 8,192: <its reason>".

    A batch too large for a device's memory fails its own point only; the sweep goes on and says which.

    Args:
        runs: A sweep job's rows from `RunStore.runs(job_id=...)`.

    Returns:
        One plain-text line per failed point with a stored reason (its first line, at most
        `MAX_REASON_CHARS`), by device and batch size.
    """
    if runs.empty or not {"status", "error", "device", "batch_size"} <= set(runs.columns):
        return []
    reasons = runs["error"].fillna("").astype(str).str.strip()
    failed = runs.loc[(runs["status"] == "failed") & (reasons != "")].sort_values(["device", "batch_size"])
    return [
        f"{row.device} at batch {int(row.batch_size):,}: {_first_line(str(row.error))}" for row in failed.itertuples()
    ]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "\u2026"


def baseline_device(devices: Sequence[str]) -> str | None:
    """The CPU device speedups are measured against: `BASELINE_DEVICE`, else the first CPU device; None if none."""
    names = [str(device) for device in devices]
    if BASELINE_DEVICE in names:
        return BASELINE_DEVICE
    return next((name for name in names if device_kind(name) == CPU_KIND), None)


def speedup_points(points: pd.DataFrame) -> pd.DataFrame:
    """Each non-CPU device's speedup over the CPU at every batch size both measured.

    Args:
        points: `sweep_points` output.

    Returns:
        Columns `SPEEDUP_COLUMNS` (speedup: the device's samples/s over the baseline's at the same batch
        size), sorted by device then batch size; empty when there is no CPU device or no other device.
    """
    baseline = baseline_device(points["device"].drop_duplicates().tolist()) if not points.empty else None
    if baseline is None:
        return _empty_frame(SPEEDUP_COLUMNS)
    reference = points.loc[points["device"] == baseline, ["batch_size", "samples_per_s"]]
    others = points.loc[points["device"].map(device_kind) != CPU_KIND, ["device", "batch_size", "samples_per_s"]]
    paired = others.merge(reference.rename(columns={"samples_per_s": "baseline_samples_per_s"}), on="batch_size")
    paired["baseline"] = baseline
    paired["speedup"] = paired["samples_per_s"] / paired["baseline_samples_per_s"]
    return paired.loc[:, list(SPEEDUP_COLUMNS)].sort_values(["device", "batch_size"]).reset_index(drop=True)


def crossing_batch_size(below_batch: float, below_speedup: float, above_batch: float, above_speedup: float) -> float:
    """The batch size between two measured points where the speedup is 1x.

    The interpolation is linear in log2(batch size) and in log(speedup): a straight segment on the speedup
    chart's log-log axes, so the crossover's rule meets the drawn line at 1x.

    Args:
        below_batch: The smaller batch size.
        below_speedup: The speedup there (positive).
        above_batch: The larger batch size.
        above_speedup: The speedup there (positive); on the other side of 1x from `below_speedup`, or 1x.

    Returns:
        A batch size from `below_batch` to `above_batch`.
    """
    low, high = math.log(below_speedup), math.log(above_speedup)
    share = 0.0 if high == low else -low / (high - low)  # where the segment is at log(1) = 0
    share = min(1.0, max(0.0, share))
    exponent = math.log2(below_batch) + share * (math.log2(above_batch) - math.log2(below_batch))
    return min(float(above_batch), max(float(below_batch), 2.0**exponent))


def about_batch(batch_size: float | None) -> str:
    """An interpolated batch size as people read it, to two significant figures: "90", "1,200"; "?" for none.

    Args:
        batch_size: A crossover's `batch_size`.
    """
    if batch_size is None or not batch_size > 0:
        return "?"
    places = max(0, math.floor(math.log10(batch_size)) - 1)
    return f"{round(batch_size, -places):,.0f}"


def sweep_crossovers(speedups: pd.DataFrame) -> tuple[Crossover, ...]:
    """Where each device's speedup over the CPU crosses 1x, one `Crossover` per device in device order.

    A device faster at some batch sizes and not at others crosses 1x; where it crosses more than once
    (noise, or a batch too big for its memory), the first upward crossing is taken.

    Args:
        speedups: `speedup_points` output.
    """
    return tuple(
        _crossover(str(device), group.sort_values("batch_size"))
        for device, group in speedups.groupby("device", sort=True)
    )


def throughput_caption(points: pd.DataFrame, unfinished: int = 0) -> str:
    """What the throughput chart shows: each device's gain from its smallest to its largest batch size.

    Args:
        points: `sweep_points` output.
        unfinished: `unfinished_point_count` of the sweep's runs: points not drawn.

    Returns:
        E.g. "On cpu:0 throughput grows 3.1x from batch 32 to 2,048; on gpu:0 41x."
    """
    parts: list[str] = []
    shown_range: tuple[int, int, str] | None = None
    for device, group in points.groupby("device", sort=True):
        first, last = group.iloc[0], group.iloc[-1]
        if len(group) == 1:
            parts.append(f"{device} finished only {_point_text(first)}")
            continue
        verb, times = _change(last["samples_per_s"] / first["samples_per_s"])
        this_range = (int(first["batch_size"]), int(last["batch_size"]), verb)
        if this_range == shown_range:
            parts.append(f"on {device} {times}")
        else:
            subject = "throughput" if not parts else "it"
            parts.append(f"on {device} {subject} {verb} {times} from batch {this_range[0]:,} to {this_range[1]:,}")
        shown_range = this_range
    text = _capital("; ".join(parts)) + "." if parts else "No point of this sweep has finished yet."
    return " ".join(part for part in (text, _peak_text(points), _unfinished_text(unfinished)) if part)


def speedup_caption(crossovers: Sequence[Crossover]) -> str:
    """What the speedup chart shows: where each device overtakes the CPU, or that it never (or always) does.

    Args:
        crossovers: `sweep_crossovers` output.

    Returns:
        E.g. "gpu:0 overtakes cpu:0 from about batch 90; at batch 2,048 it is 12x faster."
    """
    if not crossovers:
        return "No speedup to draw: it needs a CPU and another device measured at the same batch sizes."
    return " ".join(_crossover_text(crossover) for crossover in crossovers)


def crossover_frame(crossovers: Sequence[Crossover]) -> pd.DataFrame:
    """The crossovers the speedup chart marks: one row per device whose speedup crosses 1x.

    Args:
        crossovers: `sweep_crossovers` output.

    Returns:
        Columns `CROSSOVER_COLUMNS`: device, batch_size (interpolated), outcome and label
        ("gpu:0 overtakes cpu:0 at about batch 320"), in device order.
    """
    rows = [
        {
            "device": crossover.device,
            "batch_size": crossover.batch_size,
            "outcome": str(crossover.outcome),
            "label": f"{crossover.device} {CROSSING_VERBS[crossover.outcome]} {crossover.baseline} "
            f"at about batch {about_batch(crossover.batch_size)}",
        }
        for crossover in crossovers
        if crossover.batch_size is not None
    ]
    return pd.DataFrame(rows, columns=list(CROSSOVER_COLUMNS))


def stored_gpu_runs(
    all_runs: pd.DataFrame, dataset: str, hidden_units: Sequence[int], limit: int = MAX_STORED_GPU_RUNS
) -> pd.DataFrame:
    """Finished GPU runs of the same model in the store, at any batch size, on any machine, newest first.

    The same model: the same dataset and hidden layers (as `lib.comparison` compares runs). Runs on real
    and on generated data both count (throughput does not depend on the labels); `data` says which.

    Args:
        all_runs: `RunStore.runs()`.
        dataset: The sweep's dataset, "fashion_mnist".
        hidden_units: The sweep's units per hidden layer.
        limit: The most runs returned.

    Returns:
        Columns `STORED_GPU_COLUMNS` (machine: `lib.hardware.machine_name`; data: "real" or "generated").
    """
    finished = _finished_runs(all_runs)
    if finished.empty or not {"dataset", "hidden_units", "hardware", "created_at"} <= set(finished.columns):
        return _empty_frame(STORED_GPU_COLUMNS)
    wanted = _units(hidden_units)
    same_model = (
        (finished["device"].map(device_kind) == GPU_KIND)
        & (finished["dataset"] == dataset)
        & finished["hidden_units"].map(lambda units: _units(units) == wanted)
    )
    runs = finished.loc[same_model].sort_values("created_at", ascending=False).head(limit)
    stored = runs.loc[:, ["device", "batch_size", "samples_per_s", "backend", "created_at"]].copy()
    stored["machine"] = runs["hardware"].map(machine_name)
    stored["data"] = runs["synthetic"].map(data_label) if "synthetic" in runs else data_label(False)
    return stored.loc[:, list(STORED_GPU_COLUMNS)].reset_index(drop=True)


def what_a_gpu_changes(cpu_points: pd.DataFrame, stored_gpu: pd.DataFrame) -> str:
    """What a GPU would change, for a server without one: the CPU's own gain, why a GPU gains more, stored runs.

    Args:
        cpu_points: `sweep_points` of the sweep (its CPU device's rows are read).
        stored_gpu: `stored_gpu_runs` of the sweep's model.

    Returns:
        Three sentences: the CPU's measured gain from its smallest to its largest batch, how a GPU differs,
        and the fastest stored GPU run of this model against this CPU's best (or that none is stored).
    """
    baseline = baseline_device(cpu_points["device"].drop_duplicates().tolist()) if not cpu_points.empty else None
    cpu = cpu_points.loc[cpu_points["device"] == baseline].sort_values("batch_size")
    best_cpu = float(cpu["samples_per_s"].max()) if not cpu.empty else None
    return " ".join((_cpu_gain_text(cpu), GPU_EXPLANATION, _stored_gpu_text(stored_gpu, best_cpu)))


# --- internals of what a sweep's runs show ---


def _units(value: Any) -> tuple[int, ...]:
    """Units per hidden layer as a tuple of ints; () when missing (the store keeps a list)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return ()
    return tuple(int(units) for units in value)


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns))


def _finished_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows that are done and have a positive throughput (a NaN throughput is no point)."""
    if runs.empty or not {"status", "samples_per_s", "device", "batch_size"} <= set(runs.columns):
        return runs.iloc[:0]
    throughput = pd.to_numeric(runs["samples_per_s"], errors="coerce")
    return runs.loc[(runs["status"] == "done") & (throughput > 0)]


def _crossover(device: str, group: pd.DataFrame) -> Crossover:
    """One device's `Crossover` from its speedup rows, ascending by batch size."""
    batches = [int(size) for size in group["batch_size"]]
    speedups = [float(value) for value in group["speedup"]]
    ahead = [speedup > 1 for speedup in speedups]
    pairs = list(zip(ahead, ahead[1:], strict=False))
    upward = next((index for index, (now, then) in enumerate(pairs) if not now and then), None)
    downward = next((index for index, (now, then) in enumerate(pairs) if now and not then), None)
    outcome, index = Outcome.ALWAYS_FASTER if all(ahead) else Outcome.NEVER_FASTER, None
    if upward is not None:
        outcome, index = Outcome.OVERTAKES, upward
    elif downward is not None:
        outcome, index = Outcome.FALLS_BEHIND, downward
    batch = None
    if index is not None:
        batch = crossing_batch_size(batches[index], speedups[index], batches[index + 1], speedups[index + 1])
    return Crossover(
        device=device,
        baseline=str(group["baseline"].iloc[0]),
        outcome=outcome,
        batch_size=batch,
        crossings=sum(now != then for now, then in pairs),
        first_batch=batches[0],
        first_speedup=speedups[0],
        last_batch=batches[-1],
        last_speedup=speedups[-1],
    )


def _crossover_text(crossover: Crossover) -> str:
    """One device's sentence for the speedup caption, and a note when its speedup crosses 1x more than once."""
    text = _outcome_text(crossover)
    if crossover.crossings > 1:
        text += (
            f" Its speedup crosses 1x {crossover.crossings} times between measured batch sizes (short runs are "
            "noisy); the batch named is where it first pulls ahead."
        )
    return text


def _outcome_text(crossover: Crossover) -> str:
    """Where one device overtakes the CPU, or that it always or never is faster, with the measured speedups."""
    device, baseline, about = crossover.device, crossover.baseline, about_batch(crossover.batch_size)
    first = f"{format_times(crossover.first_speedup)} at batch {crossover.first_batch:,}"
    last = f"{format_times(crossover.last_speedup)} at batch {crossover.last_batch:,}"
    if crossover.outcome == Outcome.OVERTAKES:
        lead = _lead(crossover)
        return f"{device} overtakes {baseline} from about batch {about}; at batch {crossover.last_batch:,} {lead}."
    if crossover.outcome == Outcome.FALLS_BEHIND:
        return f"{device} is faster up to about batch {about}, then {baseline} is: {device} reaches {last}."
    if crossover.outcome == Outcome.NEVER_FASTER:
        return (
            f"{baseline} stays faster at every batch size measured ({device} reaches {last}): "
            f"this model is too small to keep {device} busy."
        )
    if crossover.first_batch == crossover.last_batch:
        return f"{device} is faster than {baseline} at the one batch size both measured: {last}."
    return f"{device} is faster at every batch size measured, from {first} to {last}."


def _lead(crossover: Crossover) -> str:
    """Who is faster at the largest batch size, after an overtaking: "it is 12x faster"."""
    if crossover.last_speedup > 1:
        return f"it is {format_times(crossover.last_speedup)} faster"
    if crossover.last_speedup == 1:
        return "they are as fast"
    return f"{crossover.baseline} is ahead again, {format_times(1 / crossover.last_speedup)} faster"


def _change(ratio: float) -> tuple[str, str]:
    """A throughput change as a verb and a factor: ("grows", "3.1x") or ("falls to", "0.8x")."""
    return ("grows" if ratio >= 1 else "falls to"), format_times(ratio)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _peak_text(points: pd.DataFrame) -> str:
    """Devices fastest at an inner batch size: the largest is slower by `PEAK_MARGIN` (the curve bends down)."""
    sentences = []
    for device, group in points.groupby("device", sort=True):
        best, first, last = group.loc[group["samples_per_s"].idxmax()], group.iloc[0], group.iloc[-1]
        inner = first["batch_size"] < best["batch_size"] < last["batch_size"]  # a fall from the first says itself
        if inner and best["samples_per_s"] >= PEAK_MARGIN * last["samples_per_s"]:
            batch = int(best["batch_size"])
            sentences.append(f"{device} is fastest at batch {batch:,}; larger batches are slower there.")
    return " ".join(sentences)


def _unfinished_text(unfinished: int) -> str:
    if unfinished <= 0:
        return ""
    if unfinished == 1:
        return "1 point has no throughput (not finished, failed or cancelled) and is not drawn."
    return f"{unfinished} points have no throughput (not finished, failed or cancelled) and are not drawn."


def _cpu_gain_text(cpu: pd.DataFrame) -> str:
    """The CPU's measured throughput at its smallest and largest batch size, and the gain between them."""
    if cpu.empty:
        return "No CPU point of this sweep has finished yet."
    first, last = cpu.iloc[0], cpu.iloc[-1]
    device = first["device"]
    if len(cpu) == 1:
        return f"On {device} this model trains {_point_text(first)}."
    verb, times = _change(last["samples_per_s"] / first["samples_per_s"])
    return (
        f"On {device} this model trains {_point_text(first)} and {_point_text(last)}: "
        f"its throughput {verb} {times} with the batch size alone."
    )


def _point_text(point: pd.Series) -> str:
    """A measured point as it reads: "1,200 samples/s at batch 32"."""
    return f"{point['samples_per_s']:,.0f} samples/s at batch {int(point['batch_size']):,}"


def _stored_gpu_text(stored_gpu: pd.DataFrame, best_cpu: float | None) -> str:
    """The fastest stored GPU run of this model, against this CPU's best; or that the store has none."""
    if stored_gpu.empty:
        return "This store has no GPU runs of this model yet, so there is no GPU curve to set beside this one."
    count = len(stored_gpu)
    how_many = f"at least {count:,}" if count >= MAX_STORED_GPU_RUNS else f"{count:,}"
    fastest = stored_gpu.loc[stored_gpu["samples_per_s"].astype(float).idxmax()]
    versus = f", {format_times(fastest['samples_per_s'] / best_cpu)} this CPU's best" if best_cpu else ""
    return (
        f"This store has {how_many} GPU run{'s' if count != 1 else ''} of this model: "
        f"{'the fastest, ' if count > 1 else ''}{fastest['device']} at batch {int(fastest['batch_size']):,} on "
        f"{fastest['machine']}, trained {fastest['samples_per_s']:,.0f} samples/s{versus}."
    )
