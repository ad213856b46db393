"""Time estimates for training that has not run yet: one estimator for the Build page, the Train page and the runner.

Per device, the steady epoch is the new model's training FLOPs per epoch divided by the FLOP/s that the
most similar stored runs on that device achieved. Similar: training FLOPs per sample and batch size close
on a log scale (both set how busy a device is kept), the same settings that change the work per step
(steps per compiled call, XLA, precision, data kept on the device) and, when it is known, the same backend.
The first epoch adds the same runs' extra first-epoch seconds (`first_epoch_s - steady_epoch_s`, mostly
tracing and compiling the train step). The extra is kept in seconds, not as a ratio: compiling costs the
same for 1,000 samples as for 60,000, so a ratio taken from a small run would multiply it by the size.

A job adds its overhead (worker start, imports, data, evaluation), measured per backend by the job runner.
With no usable stored run on a device the estimate is a conservative first guess for that kind of device,
marked rough; it is never "no estimate". Data parallel over all GPUs (or CPU devices) without a stored
run of its own is estimated as one device of that kind, also marked rough.

`suggest_sample_limit` turns the estimate around: the training-sample limit that makes a job take about
`target_s` seconds here, for class-sized defaults.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lib.parallel import device_label, is_data_parallel
from lib.spec import ModelSpec, SpecError, flops_per_epoch, flops_per_sample

NEIGHBOURS = 3  # stored runs averaged (median) per estimate, at most
NEIGHBOUR_SPREAD = math.log(2)  # a neighbour over 2x farther (log distance) than the nearest one is left out
ROUGH_DISTANCE = math.log(10)  # nearest run over 10x away in size (log distance): the estimate is rough
SETTING_DISTANCE = math.log(2)  # distance added per differing setting (XLA, precision, data on the device)
BACKEND_DISTANCE = math.log(3)  # distance added for a run on another backend (when the backend is known)
FIRST_GUESS_TEXT = "first guess: no past runs here yet"
DEFAULT_OVERHEAD_S = 8.0  # seconds of worker start, imports and data per job before any job was timed
RECENT_OVERHEADS = 20  # latest measured overheads whose median is used
TARGET_S = 45.0  # default job length a suggested sample limit aims for (the middle of 30 to 60 s)
TOO_SLOW_S = 60.0  # a suggestion still over this at its smallest is said to be too slow
ROUND_KEEP = 0.75  # a rounder sample count is taken when it keeps at least this fraction of the exact one


@dataclass(frozen=True)
class FirstGuess:
    """A conservative model of one device kind's speed, used where no stored run fits."""

    flops_per_s: float  # training FLOP/s assumed for the arithmetic, a low fraction of a typical device's
    call_s: float  # seconds per compiled call (per step, or per `steps_per_execution` steps)
    first_epoch_extra_s: float  # tracing and compiling in the first epoch


# Measured (BENCHMARKS.md): this 2-core CPU's matrix products top out at 73 to 150 GFLOP/s, and the tutorial's
# Fashion-MNIST MLP (batch 32) trained at 21.3 s per epoch idle, 34 s busy; an H200 with JAX took about 1.4 ms
# per step at batch 32 with about 3 s of first-epoch compiling, and reached 190 to 1,900 GFLOP/s on the
# tutorial models. The guesses take a low fraction of those rates plus a per-call cost (Fashion-MNIST on this
# CPU: 32.7 s per epoch), so a first estimate errs long rather than short.
FIRST_GUESSES = {
    "cpu": FirstGuess(flops_per_s=20e9, call_s=4e-3, first_epoch_extra_s=2.0),
    "gpu": FirstGuess(flops_per_s=2e12, call_s=3e-3, first_epoch_extra_s=5.0),
}


@dataclass(frozen=True)
class EpochEstimate:
    """The estimated time of one steady-state training epoch on one device (the Build page's table)."""

    device: str  # normalised device name, "cpu:0"
    seconds: float  # estimated seconds per steady-state epoch
    flops_per_s: float  # the achieved FLOP/s the estimate assumes
    based_on: int  # stored runs the estimate used; 0 for a first guess
    rough: bool  # True when even the nearest stored run is far from this model, or for a first guess

    @property
    def text(self) -> str:
        """A short readable form: "about 12.3 s (from 3 past runs)" or "roughly 40.0 s (first guess: ...)"."""
        qualifier = "roughly" if self.rough else "about"
        return f"{qualifier} {format_seconds(self.seconds)} ({_source_text(self.based_on)})"


@dataclass(frozen=True)
class DeviceEstimate:
    """The estimated training time of one job on one device."""

    device: str  # normalised device name, "cpu:0", or "gpu:all" for data parallel
    epochs: int  # epochs the job trains
    first_epoch_s: float  # epoch 1, with tracing and compiling
    steady_epoch_s: float  # each later epoch
    flops_per_s: float  # training FLOP/s the steady epoch assumes
    based_on: int  # stored runs the estimate used; 0 for a first guess
    rough: bool  # far from every stored run, borrowed from another device, or a first guess

    @property
    def total_s(self) -> float:
        """Seconds of training on this device: the first epoch plus the steady ones."""
        return self.first_epoch_s + self.steady_epoch_s * max(self.epochs - 1, 0)

    @property
    def first_guess(self) -> bool:
        """True when no stored run was usable and the estimate is the device kind's first guess."""
        return self.based_on == 0


@dataclass(frozen=True)
class JobEstimate:
    """The estimated time of one job: its devices one after the other plus the job's overhead."""

    devices: tuple[DeviceEstimate, ...]  # in the job's device order
    overhead_s: float  # worker start, imports, data and evaluation, once per job

    @property
    def training_s(self) -> float:
        """Seconds of training, all devices together."""
        return sum(device.total_s for device in self.devices)

    @property
    def total_s(self) -> float:
        """Seconds from the worker's start to the job's end."""
        return self.overhead_s + self.training_s

    @property
    def based_on(self) -> int:
        """Stored runs the estimate used, all devices together."""
        return sum(device.based_on for device in self.devices)

    @property
    def rough(self) -> bool:
        """True when any device's estimate is rough."""
        return any(device.rough for device in self.devices)

    @property
    def seconds_text(self) -> str:
        """The total for people: "about 42.0 s" or "roughly 1 min 10 s"."""
        return f"{'roughly' if self.rough else 'about'} {format_seconds(self.total_s)}"

    @property
    def source_text(self) -> str:
        """Where the total comes from: "from 3 past runs", a first guess, or both."""
        guessed = [device_label(device.device) for device in self.devices if device.first_guess]
        if len(guessed) == len(self.devices):
            return FIRST_GUESS_TEXT
        measured = _source_text(self.based_on)
        return f"{measured}; first guess for {', '.join(guessed)}" if guessed else measured

    @property
    def text(self) -> str:
        """A short readable form: "about 42.0 s (from 3 past runs)"."""
        return f"{self.seconds_text} ({self.source_text})"


@dataclass(frozen=True)
class SampleSuggestion:
    """A training-sample limit that makes a job take about the target time on this server."""

    samples: int  # suggested training samples: whole batches, a round number where one is close
    seconds: float  # the job's estimated seconds at that limit, overhead included
    estimate: JobEstimate  # the estimate at that limit
    whole_dataset: bool  # True when the whole allowed training set fits in the target time
    too_slow: bool  # True when even the smallest limit (one batch) is estimated over a minute

    @property
    def text(self) -> str:
        """For the Train page: "about 42.0 s here (from 3 past runs)", or why even the minimum is slow."""
        here = f"{self.estimate.seconds_text} here ({self.estimate.source_text})"
        return f"even one batch takes {here}" if self.too_slow else here


def format_seconds(seconds: float) -> str:
    """Formats a duration for people: "0.42 s", "12.3 s", "4 min 05 s", "1 h 02 min"."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def median_overhead(overheads: Sequence[float], default_s: float = DEFAULT_OVERHEAD_S) -> float:
    """The overhead to expect per job: the median of the latest measured ones, else a default.

    Args:
        overheads: Measured seconds per job outside training (wall time minus training), oldest first.
        default_s: What to expect before any job was measured.

    Returns:
        The median of the last `RECENT_OVERHEADS` values, or `default_s` when there are none.
    """
    recent = list(overheads)[-RECENT_OVERHEADS:]
    return float(statistics.median(recent)) if recent else float(default_s)


def estimate_job(
    spec: ModelSpec,
    num_train: int,
    devices: Sequence[str],
    runs: pd.DataFrame,
    *,
    overhead_s: float,
    backend: str | None = None,
) -> JobEstimate:
    """Estimates how long a job takes: its devices one after the other, plus the job's overhead.

    Args:
        spec: The model and training settings (epochs, batch size).
        num_train: Training samples per epoch.
        devices: Normalised device names, in the job's order ("cpu:0", "gpu:all").
        runs: Stored runs, as `RunStore.runs()` returns them (needs `device`, `status`,
            `achieved_flops_per_s` and `spec`; uses `backend`, `first_epoch_s`, `steady_epoch_s`, `epoch_s`).
        overhead_s: Seconds per job outside training, e.g. `median_overhead` of measured jobs.
        backend: The Keras backend the job will run on; stored runs on it count as nearer. None: any.

    Returns:
        The estimate; a first guess on devices without a usable stored run.
    """
    return _estimate_job(spec, num_train, devices, usable_runs(runs), overhead_s=overhead_s, backend=backend)


def suggest_sample_limit(
    spec: ModelSpec,
    devices: Sequence[str],
    runs: pd.DataFrame,
    *,
    overhead_s: float,
    max_samples: int,
    target_s: float = TARGET_S,
    backend: str | None = None,
) -> SampleSuggestion:
    """Suggests the training-sample limit that makes the job take about `target_s` seconds here.

    The time grows linearly with the samples, so the exact limit is read off the estimates at one batch
    and at `max_samples`, then rounded down to whole batches, to a round number (such as 6,000 or 7,200)
    when one is within a quarter of it.

    Args:
        spec: The model and training settings; `spec.batch_size` sets the smallest step.
        devices: Normalised device names, in the job's order.
        runs: Stored runs, as for `estimate_job`.
        overhead_s: Seconds per job outside training.
        max_samples: The most training samples allowed (the dataset's size or the server's limit).
        target_s: The job length to aim for, overhead included.
        backend: The Keras backend the job will run on, as for `estimate_job`.

    Returns:
        The suggestion: between one batch (or `max_samples` when smaller) and `max_samples`.
    """
    usable = usable_runs(runs)

    def estimate(samples: int) -> JobEstimate:
        return _estimate_job(spec, samples, devices, usable, overhead_s=overhead_s, backend=backend)

    smallest = max(min(spec.batch_size, max_samples), 1)
    low, high = estimate(smallest), estimate(max_samples)
    if high.total_s <= target_s or max_samples <= smallest:
        return _suggestion(max_samples, high, smallest=smallest, whole_dataset=True)
    if low.total_s >= target_s:
        return _suggestion(smallest, low, smallest=smallest, whole_dataset=False)
    exact = smallest + (target_s - low.total_s) / (high.total_s - low.total_s) * (max_samples - smallest)
    samples = round_samples(exact, spec.batch_size)
    return _suggestion(samples, estimate(samples), smallest=smallest, whole_dataset=False)


def round_samples(samples: float, batch_size: int) -> int:
    """Rounds a sample count down to whole batches, and to a round number where one is close.

    Tries units 10,000, 5,000, 2,000, 1,000, ... 1 in turn: the first multiple of both the unit and the batch
    size that is at least `ROUND_KEEP` of `samples` wins.

    Args:
        samples: The exact sample count wanted (at least one batch).
        batch_size: Samples per training step.

    Returns:
        At least one batch; at most `samples` when that is at least one batch.
    """
    units = []
    power = 10 ** max(math.ceil(math.log10(max(samples, 1.0))), 0)
    while power >= 1:
        units += [unit for unit in (power, power // 2, power // 5) if unit >= 1]
        power //= 10
    for unit in units:
        step = math.lcm(unit, batch_size)
        rounded = math.floor(samples / step) * step
        if rounded >= max(batch_size, ROUND_KEEP * samples):
            return int(rounded)
    return batch_size


def estimate_epoch_times(
    spec: ModelSpec,
    num_train: int,
    devices: list[str] | tuple[str, ...],
    runs: pd.DataFrame,
    *,
    backend: str | None = None,
) -> list[EpochEstimate]:
    """Estimates the steady-state epoch time of `spec` on each device, as `estimate_job` does.

    Args:
        spec: The model to estimate.
        num_train: Training samples per epoch.
        devices: Device names to estimate for, e.g. ("cpu:0", "gpu:0").
        runs: Stored runs, as for `estimate_job`.
        backend: The Keras backend, as for `estimate_job`.

    Returns:
        One estimate per device, in the order given.
    """
    job = _estimate_job(spec, num_train, devices, usable_runs(runs), overhead_s=0.0, backend=backend)
    return [_epoch_estimate(device) for device in job.devices]


def usable_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Keeps finished runs with a positive achieved FLOP/s and adds what finding neighbours needs.

    Args:
        runs: Stored runs, as `RunStore.runs()` returns them.

    Returns:
        Columns `device`, `backend`, `batch_size`, `achieved_flops_per_s`, `flops_per_sample`,
        `first_epoch_extra_s` (NaN when unknown) and `settings` (a tuple of the per-step settings).
    """
    columns = [
        "device",
        "backend",
        "batch_size",
        "achieved_flops_per_s",
        "flops_per_sample",
        "first_epoch_extra_s",
        "settings",
    ]
    needed = {"device", "status", "achieved_flops_per_s", "spec"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=columns)
    rates = pd.to_numeric(runs["achieved_flops_per_s"], errors="coerce")
    finished = (runs["status"] == "done") & (rates > 0)
    done = runs[finished]
    specs = [_stored_spec(data) for data in done["spec"]]
    frame = pd.DataFrame(
        {
            "device": done["device"].astype(str).to_numpy(),
            "backend": _column(done, "backend"),
            "batch_size": [None if spec is None else spec.batch_size for spec in specs],
            "achieved_flops_per_s": rates[finished].astype(float).to_numpy(),
            "flops_per_sample": [_flops_per_sample(spec) for spec in specs],
            "first_epoch_extra_s": _first_epoch_extra(done),
            "settings": [None if spec is None else _settings(spec) for spec in specs],
        },
        columns=columns,
    )
    return frame[frame["flops_per_sample"].notna()].reset_index(drop=True)


# --- internals ---


def _estimate_job(
    spec: ModelSpec,
    num_train: int,
    devices: Sequence[str],
    usable: pd.DataFrame,
    *,
    overhead_s: float,
    backend: str | None,
) -> JobEstimate:
    epoch_flops = flops_per_epoch(spec, num_train)
    estimates = tuple(_estimate_device(device, spec, num_train, epoch_flops, usable, backend) for device in devices)
    return JobEstimate(devices=estimates, overhead_s=max(float(overhead_s), 0.0))


def _estimate_device(
    device: str, spec: ModelSpec, num_train: int, epoch_flops: int, usable: pd.DataFrame, backend: str | None
) -> DeviceEstimate:
    """From the device's own stored runs, else those of one device of its kind (rough), else a first guess."""
    own = usable[usable["device"] == device]
    borrowed = own.empty
    candidates = _single_devices_of_kind(usable, device) if borrowed else own
    nearest, distance = _nearest(candidates, spec, backend)
    if nearest.empty or epoch_flops <= 0:
        return _first_guess(device, spec, num_train, epoch_flops)
    flops_per_s = float(nearest["achieved_flops_per_s"].median())
    steady_s = epoch_flops / flops_per_s
    extras = nearest["first_epoch_extra_s"].dropna()
    extra_s = float(extras.median()) if not extras.empty else FIRST_GUESSES[_kind(device)].first_epoch_extra_s
    return DeviceEstimate(
        device=device,
        epochs=spec.epochs,
        first_epoch_s=steady_s + extra_s,
        steady_epoch_s=steady_s,
        flops_per_s=flops_per_s,
        based_on=len(nearest),
        rough=borrowed or distance > ROUGH_DISTANCE,
    )


def _nearest(runs: pd.DataFrame, spec: ModelSpec, backend: str | None) -> tuple[pd.DataFrame, float]:
    """The `NEIGHBOURS` runs nearest to `spec` within `NEIGHBOUR_SPREAD` of the nearest, and its distance."""
    if runs.empty:
        return runs, math.inf
    target = _settings(spec)
    distance = (
        (runs["flops_per_sample"].astype(float) / flops_per_sample(spec)).map(math.log).abs()
        + (runs["batch_size"].astype(float) / spec.batch_size).map(math.log).abs()
        + runs["settings"].map(lambda settings: _settings_distance(settings, target))
    )
    if backend is not None:
        distance = distance + (runs["backend"] != backend) * BACKEND_DISTANCE
    nearest = runs.assign(distance=distance).nsmallest(NEIGHBOURS, "distance")
    closest = float(nearest["distance"].min())
    return nearest[nearest["distance"] <= closest + NEIGHBOUR_SPREAD], closest


def _settings(spec: ModelSpec) -> tuple[int, bool, str, bool]:
    """The spec's settings that change the work per step, beyond its size and batch."""
    return (spec.steps_per_execution, spec.jit_compile, spec.precision, spec.device_resident)


def _settings_distance(stored: tuple[int, bool, str, bool], target: tuple[int, bool, str, bool]) -> float:
    steps_per_call = abs(math.log(max(stored[0], 1) / max(target[0], 1)))
    return steps_per_call + SETTING_DISTANCE * sum(a != b for a, b in zip(stored[1:], target[1:], strict=True))


def _single_devices_of_kind(usable: pd.DataFrame, device: str) -> pd.DataFrame:
    """Runs on single devices of the same kind as `device` ("gpu:0", "gpu:1" for "gpu:all" or "gpu:1")."""
    kind = _kind(device)
    names = usable["device"].astype(str)
    parallel = names.map(is_data_parallel).astype(bool)
    return usable[names.str.startswith(f"{kind}:") & ~parallel & (names != device)]


def _first_guess(device: str, spec: ModelSpec, num_train: int, epoch_flops: int) -> DeviceEstimate:
    guess = FIRST_GUESSES[_kind(device)]
    steps = math.ceil(max(num_train, 0) / spec.batch_size)
    calls = math.ceil(steps / max(spec.steps_per_execution, 1))
    steady_s = epoch_flops / guess.flops_per_s + calls * guess.call_s
    return DeviceEstimate(
        device=device,
        epochs=spec.epochs,
        first_epoch_s=steady_s + guess.first_epoch_extra_s,
        steady_epoch_s=steady_s,
        flops_per_s=epoch_flops / steady_s if steady_s > 0 else guess.flops_per_s,
        based_on=0,
        rough=True,
    )


def _kind(device: str) -> str:
    """The device kind, "cpu" or "gpu"; an unknown kind counts as a CPU, the slower guess."""
    kind = str(device).strip().lower().partition(":")[0]
    return kind if kind in FIRST_GUESSES else "cpu"


def _epoch_estimate(device: DeviceEstimate) -> EpochEstimate:
    return EpochEstimate(
        device=device.device,
        seconds=device.steady_epoch_s,
        flops_per_s=device.flops_per_s,
        based_on=device.based_on,
        rough=device.rough,
    )


def _suggestion(samples: int, estimate: JobEstimate, *, smallest: int, whole_dataset: bool) -> SampleSuggestion:
    return SampleSuggestion(
        samples=samples,
        seconds=estimate.total_s,
        estimate=estimate,
        whole_dataset=whole_dataset,
        too_slow=samples <= smallest and estimate.total_s > TOO_SLOW_S,
    )


def _source_text(based_on: int) -> str:
    if based_on == 0:
        return FIRST_GUESS_TEXT
    return f"from {based_on} past {'run' if based_on == 1 else 'runs'}"


def _stored_spec(data: object) -> ModelSpec | None:
    """A stored spec dict as a `ModelSpec`, or None when it cannot be read."""
    if not isinstance(data, dict):
        return None
    try:
        spec = ModelSpec.from_dict(data)
        flops_per_sample(spec)
    except (SpecError, TypeError, ValueError, KeyError):
        return None
    return spec if spec.batch_size > 0 else None


def _flops_per_sample(spec: ModelSpec | None) -> float | None:
    return None if spec is None else float(flops_per_sample(spec))


def _column(frame: pd.DataFrame, name: str) -> list[object]:
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _first_epoch_extra(runs: pd.DataFrame) -> list[float]:
    """Seconds the first epoch took beyond a steady one, per run; NaN when unknown (one epoch, no times)."""
    first = pd.to_numeric(pd.Series(_column(runs, "first_epoch_s"), dtype=object), errors="coerce")
    steady = pd.to_numeric(pd.Series(_column(runs, "steady_epoch_s"), dtype=object), errors="coerce")
    epochs = [len(value) if isinstance(value, list | tuple) else 2 for value in _column(runs, "epoch_s")]
    extra = (first - steady).clip(lower=0.0)
    return [value if count >= 2 else math.nan for value, count in zip(extra.tolist(), epochs, strict=True)]
