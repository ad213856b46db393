"""Time estimates for training that has not run yet: one estimator for the Build page, the Train page and the runner.

How long an epoch takes is modelled from what sets it on any device (`modelled_epoch_s`):

- the arithmetic: samples x training FLOPs per sample, at a rate that grows with the batch size (a small
  batch keeps a device's matrix units half idle: rate = peak x batch / (batch + half_batch));
- the weights: every step reads and updates every parameter (the optimizer step), whatever the batch;
- the calls: each call into the compiled step costs Python and dispatch time (one call per
  `steps_per_execution` steps through `model.fit`; one per epoch with the data kept on the device).

So batch 32 and batch 1024 of the same model differ, as they do when measured. The model's constants are a
first guess per kind of device (`FIRST_GUESSES`); stored runs on the device calibrate it: each of the most
similar stored runs (FLOPs per sample and batch size close on a log scale, the same settings that change the
work per step, the same backend where known, newest first) gives the ratio of its measured steady epoch to
the model's, and the median ratio scales the model for the new job. A run of the same model therefore
predicts another sample count or epoch count almost exactly, and a run of another model still says how fast
this device is. The first epoch adds the same runs' extra first-epoch seconds (`first_epoch_s -
steady_epoch_s`, mostly compiling), in seconds: compiling costs the same for 1,000 samples as for 60,000.

Every estimate is a range, wider the less its basis resembles the job (`SPREADS`), and says its basis in
words: "from 3 past runs of this model", "from 2 past runs of similar models", "a first guess: ...". A
job adds its overhead (worker start, imports, data, evaluation), measured per backend by the job runner.

`trained_samples` says how many samples one epoch trains (a partial last batch is kept except where it
would compile the step again, timed as training), and `samples_note` says so in words where it differs.
`suggest_sample_limit` turns the estimate around: the training-sample limit that makes a job take about
`target_s` seconds here, for class-sized defaults.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from lib.jobs import JobRequest
from lib.parallel import device_kind, device_label, is_data_parallel
from lib.spec import ModelSpec, SpecError, count_params, flops_per_sample

NEIGHBOURS = 3  # stored runs whose ratios are used (median) per estimate, at most
NEIGHBOUR_SPREAD = math.log(2)  # a neighbour over 2x farther (log distance) than the nearest one is left out
SAME_MODEL_DISTANCE = 1e-9  # nearest run this close: the same model, batch and settings (the basis "this model")
SIMILAR_DISTANCE = math.log(10)  # nearest run within this: "similar models"; beyond it: "other models"
SETTING_DISTANCE = math.log(2)  # distance added per differing setting (XLA, precision, data on the device)
BACKEND_DISTANCE = math.log(3)  # distance added for a run on another backend (when the backend is known)
# How far the truth may lie from the estimate, as a factor either way, by basis: a run of the same model here
# predicts within a quarter (a busy server, another sample count); a first guess can be off by 2x either way.
SPREADS = {
    "this model": 1.25,
    "this model, other settings": 1.6,  # the same layers at another batch size or speed options
    "similar models": 1.5,
    "other models": 1.8,
    "single device": 1.8,
    "first guess": 2.0,
}
COMPILE_SPREAD = 1.5  # the first epoch's compiling varies more from run to run (measured 3.6 to 7.4 s on an H200)
MAX_DISAGREEMENT = 2.0  # neighbours whose ratios differ widen the range by sqrt(max/min), at most this factor
FIRST_GUESS_TEXT = "a first guess: no run on this server yet"
DEFAULT_OVERHEAD_S = 8.0  # seconds of worker start, imports and data per job before any job was timed
RECENT_OVERHEADS = 20  # latest measured overheads whose median is used
TARGET_S = 45.0  # default job length a suggested sample limit aims for (the middle of 30 to 60 s)
TOO_SLOW_S = 60.0  # a suggestion still over this at its smallest is said to be too slow
ROUND_KEEP = 0.75  # a rounder sample count is taken when it keeps at least this fraction of the exact one
RESIDENT_BACKENDS = (
    "jax",
)  # backends where "keep the data on the device" runs one call per epoch (lib.device_resident)
RECOMPILING_BACKENDS = ("tensorflow", "torch")  # where a compiled step compiles again for a partial last batch


@dataclass(frozen=True)
class FirstGuess:
    """One kind of device's training speed, before any stored run calibrates it."""

    peak_flops_per_s: float  # FLOP/s of the step's matrix products at large batches
    half_batch: int  # batch size at which the products reach half that rate
    param_s: float  # seconds per parameter per step: reading and updating the weights
    call_s: dict[str, float]  # seconds per call into the compiled step, per backend ("" for an unknown one)
    first_epoch_extra_s: float  # tracing and compiling in the first epoch
    xla_extra_s: float  # more compiling with XLA (jit_compile) through model.fit on TensorFlow or PyTorch


# Measured on this 2-core CPU (Keras 3.15): Fashion-MNIST's tutorial MLP (1.4 M parameters, 8.4 MFLOP per
# sample) took 5.7 ms per step at batch 32 on JAX and 11.7 ms on TensorFlow, and 64 to 70 ms per step at batch
# 1024 (about 125 GFLOP/s); CIFAR-10's (12 M parameters) 62 ms per step at batch 32 on TensorFlow; first epochs
# took 1.2 to 1.5 s more (2.7 s with XLA on TensorFlow). An H200 with JAX took about 1.4 ms per step at batch
# 32 and reached 190 to 1,900 GFLOP/s on the tutorial models, with about 3 s of first-epoch compiling.
FIRST_GUESSES = {
    "cpu": FirstGuess(
        peak_flops_per_s=120e9,
        half_batch=64,
        param_s=1e-9,
        call_s={"jax": 1e-3, "tensorflow": 5e-3, "torch": 5e-3, "": 5e-3},
        first_epoch_extra_s=1.5,
        xla_extra_s=1.5,
    ),
    "gpu": FirstGuess(
        peak_flops_per_s=4e12,
        half_batch=512,
        param_s=4e-12,
        call_s={"jax": 1e-3, "tensorflow": 2e-3, "torch": 2e-3, "": 2e-3},
        first_epoch_extra_s=5.0,
        xla_extra_s=2.0,
    ),
}


@dataclass(frozen=True)
class DeviceEstimate:
    """The estimated training time of one job on one device."""

    device: str  # normalised device name, "cpu:0", or "gpu:all" for data parallel
    epochs: int  # epochs the job trains
    first_epoch_s: float  # epoch 1, with tracing and compiling
    steady_epoch_s: float  # each later epoch
    based_on: int  # stored runs the estimate used; 0 for a first guess
    basis: str  # a key of SPREADS: how close those runs are to this job
    spread: float  # the training is expected between its estimate / spread and x spread (compiling: wider)

    @property
    def total_s(self) -> float:
        """Seconds of training on this device: the first epoch plus the steady ones."""
        return self.first_epoch_s + self.steady_epoch_s * max(self.epochs - 1, 0)

    @property
    def low_s(self) -> float:
        """The short end of the total's range."""
        return self._epochs_s / self.spread + self._compile_s / self._compile_spread

    @property
    def high_s(self) -> float:
        """The long end of the total's range."""
        return self._epochs_s * self.spread + self._compile_s * self._compile_spread

    @property
    def _compile_s(self) -> float:
        return max(self.first_epoch_s - self.steady_epoch_s, 0.0)

    @property
    def _epochs_s(self) -> float:
        return self.total_s - self._compile_s

    @property
    def _compile_spread(self) -> float:
        return max(self.spread, COMPILE_SPREAD)

    @property
    def first_guess(self) -> bool:
        """True when no stored run was usable and the estimate is the device kind's first guess."""
        return self.based_on == 0

    @property
    def rough(self) -> bool:
        """True unless the runs behind it are of this model or similar ones on this device."""
        return self.basis not in ("this model", "similar models")

    @property
    def basis_text(self) -> str:
        """Where the estimate comes from, in words: "from 3 past runs of this model"."""
        return _basis_text(self.basis, self.based_on, self.device)

    @property
    def epoch_text(self) -> str:
        """One steady epoch as a range: "about 20-30 s"."""
        return f"about {format_range(self.steady_epoch_s / self.spread, self.steady_epoch_s * self.spread)}"

    @property
    def total_text(self) -> str:
        """All epochs, the first one's compiling included, as a range: "about 2-3 min"."""
        return f"about {format_range(self.low_s, self.high_s)}"


@dataclass(frozen=True)
class JobEstimate:
    """The estimated time of one job: its devices one after the other plus the job's overhead."""

    devices: tuple[DeviceEstimate, ...]  # in the job's device order
    overhead_s: float  # worker start, imports, data and evaluation, once per job
    samples_note: str | None = None  # set when fewer samples train than were asked (`samples_note`)

    @property
    def training_s(self) -> float:
        """Seconds of training, all devices together."""
        return sum(device.total_s for device in self.devices)

    @property
    def total_s(self) -> float:
        """Seconds from the worker's start to the job's end (the middle of the range)."""
        return self.overhead_s + self.training_s

    @property
    def low_s(self) -> float:
        """The short end of the range."""
        return self.overhead_s + sum(device.low_s for device in self.devices)

    @property
    def high_s(self) -> float:
        """The long end of the range."""
        return self.overhead_s + sum(device.high_s for device in self.devices)

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
        """The range for people: "about 20-30 s", "about 2-3 min"."""
        return f"about {format_range(self.low_s, self.high_s)}"

    @property
    def source_text(self) -> str:
        """Where the estimate comes from: "from 3 past runs of this model", a first guess, or one per device."""
        if all(device.first_guess for device in self.devices):
            return FIRST_GUESS_TEXT
        if len(self.devices) == 1:
            return self.devices[0].basis_text
        bases = {device.basis for device in self.devices}
        if len(bases) == 1 and bases <= {"this model", "this model, other settings", "similar models", "other models"}:
            return _basis_text(bases.pop(), self.based_on, self.devices[0].device)
        return "; ".join(f"{device_label(device.device)}: {device.basis_text}" for device in self.devices)

    @property
    def text(self) -> str:
        """A short readable form: "about 20-30 s (from 3 past runs of this model)"."""
        return f"{self.seconds_text} ({self.source_text})"


@dataclass(frozen=True)
class SampleSuggestion:
    """A training-sample limit that makes a job take about the target time on this server."""

    samples: int  # suggested training samples: whole batches, a round number where one is close
    seconds: float  # the job's estimated seconds at that limit, overhead included (the middle of the range)
    estimate: JobEstimate  # the estimate at that limit
    whole_dataset: bool  # True when the whole allowed training set fits in the target time
    too_slow: bool  # True when even the smallest limit (one batch) is estimated over a minute

    @property
    def text(self) -> str:
        """For the Train page: "about 40-50 s here (from 3 past runs of this model)", or why even one batch is slow."""
        here = f"{self.estimate.seconds_text} here ({self.estimate.source_text})"
        return f"even one batch takes {here}" if self.too_slow else here


def format_range(low_s: float, high_s: float) -> str:
    """Formats a range of durations, two significant digits: "8-13 s", "1.5-2.5 min", "40 s to 2 min".

    Args:
        low_s: The short end, seconds.
        high_s: The long end, seconds (at least `low_s`).

    Returns:
        The range; one value when both ends round to the same number.
    """
    low_s, high_s = sorted((max(low_s, 0.0), max(high_s, 0.0)))
    (low, low_unit), (high, high_unit) = _in_unit(low_s), _in_unit(high_s)
    if low_unit != high_unit:
        return f"{low} {low_unit} to {high} {high_unit}"
    return f"{low} {low_unit}" if low == high else f"{low}-{high} {low_unit}"


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


def trained_samples(spec: ModelSpec, asked: int, backend: str | None) -> int:
    """How many of the samples asked for one epoch trains.

    A partial last batch trains, except with a compiled step (XLA) through `model.fit` on TensorFlow or
    PyTorch: there a new batch shape compiles the step again, measured on TensorFlow in epochs 1 and 2 (2.3 s
    on a 0.3 s epoch), and that would be timed as training. There the samples are cut to whole batches. JAX
    keeps one compiled step per shape, and its data-on-the-device loop trains the last batch in the same call.

    Args:
        spec: The model and training settings (batch size, jit_compile).
        asked: Training samples asked for (already within the dataset and the server's limit).
        backend: The Keras backend; None when unknown (then nothing is cut).

    Returns:
        The samples per epoch: `asked`, or the whole batches in it (all of it when under one batch).
    """
    asked = max(int(asked), 0)
    if not cuts_partial_batch(spec, backend) or asked < spec.batch_size:
        return asked
    return asked // spec.batch_size * spec.batch_size


def cuts_partial_batch(spec: ModelSpec, backend: str | None) -> bool:
    """True where training keeps whole batches only: a compiled step through `model.fit` (see `trained_samples`)."""
    return backend in RECOMPILING_BACKENDS and bool(spec.jit_compile)


def samples_note(spec: ModelSpec, asked: int, backend: str | None) -> str | None:
    """Says in words when fewer samples train than were asked for; None when all of them train.

    Args:
        spec: The model and training settings.
        asked: Training samples asked for.
        backend: The Keras backend.

    Returns:
        E.g. "3,000 asked: 2,048 train, in whole batches of 1,024 (with XLA a smaller last batch would
        compile again, and that would be timed)."
    """
    trained = trained_samples(spec, asked, backend)
    if trained == asked:
        return None
    return (
        f"{asked:,} asked: {trained:,} train, in whole batches of {spec.batch_size:,} "
        "(with XLA a smaller last batch would compile again, and that would be timed)."
    )


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
        num_train: Training samples asked for per epoch (`trained_samples` of them train).
        devices: Normalised device names, in the job's order ("cpu:0", "gpu:all").
        runs: Stored runs, as `RunStore.runs()` returns them (needs `device`, `status`, `spec`, `num_train`
            and `steady_epoch_s`; uses `backend`, `first_epoch_s`, `epoch_s`).
        overhead_s: Seconds per job outside training, e.g. `median_overhead` of measured jobs.
        backend: The Keras backend the job will run on; stored runs on it count as nearer. None: any.

    Returns:
        The estimate; a first guess on devices without a usable stored run.
    """
    return _estimate_job(spec, num_train, devices, usable_runs(runs), overhead_s=overhead_s, backend=backend)


def estimate_request(
    request: JobRequest, num_train: int, runs: pd.DataFrame, *, overhead_s: float, backend: str | None = None
) -> JobEstimate:
    """Estimates a queued request as `estimate_job` does: a sweep's devices per batch size, a repeat's again.

    Args:
        request: The request: its spec, devices and a sweep's batch sizes.
        num_train: Training samples asked for per epoch.
        runs: Stored runs, as for `estimate_job`.
        overhead_s: Seconds per job outside training.
        backend: The Keras backend the job will run on, as for `estimate_job`.

    Returns:
        The estimate, one device entry per run the job trains (`JobRequest.points`), in order.
    """
    usable = usable_runs(runs)
    specs = [replace(request.spec, batch_size=size) for size in request.batch_sizes] or [request.spec]
    parts = [
        _estimate_job(spec, num_train, request.devices, usable, overhead_s=overhead_s, backend=backend)
        for spec in specs
    ]
    devices = tuple(device for part in parts for device in part.devices)
    return replace(parts[0], devices=devices * max(request.repeats, 1))  # each repeat trains every device again


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
        target_s: The job length to aim for, overhead included (the middle of the range).
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


def modelled_epoch_s(spec: ModelSpec, samples: int, device: str, backend: str | None) -> float:
    """The uncalibrated model of one steady epoch: arithmetic, weight updates and calls (module docstring).

    Args:
        spec: The model and training settings.
        samples: Samples the epoch trains.
        device: A device name; its kind ("cpu", "gpu") picks the constants.
        backend: The Keras backend; it sets the cost per call and whether the epoch is one call.

    Returns:
        Seconds, with the device kind's first-guess constants.
    """
    guess = FIRST_GUESSES[_kind(device)]
    samples = max(int(samples), 0)
    steps = math.ceil(samples / spec.batch_size)
    rate = guess.peak_flops_per_s * spec.batch_size / (spec.batch_size + guess.half_batch)
    arithmetic_s = samples * flops_per_sample(spec) / rate
    weights_s = steps * count_params(spec) * guess.param_s
    calls = min(steps, 1) if _one_call_per_epoch(spec, backend) else math.ceil(steps / _steps_per_call(spec, backend))
    return arithmetic_s + weights_s + calls * guess.call_s.get(backend or "", guess.call_s[""])


def usable_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Keeps finished runs with a readable spec and a steady epoch, and adds what finding neighbours needs.

    Args:
        runs: Stored runs, as `RunStore.runs()` returns them.

    Returns:
        Columns `device`, `backend`, `spec` (a `ModelSpec`), `batch_size`, `flops_per_sample`, `ratio` (the
        measured steady epoch over `modelled_epoch_s`), `first_epoch_extra_s` (NaN when unknown) and
        `settings` (a tuple of the per-step settings), newest first.
    """
    columns = [
        "device",
        "backend",
        "spec",
        "batch_size",
        "flops_per_sample",
        "ratio",
        "first_epoch_extra_s",
        "settings",
    ]
    needed = {"device", "status", "spec", "num_train", "steady_epoch_s"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=columns)
    steady = pd.to_numeric(runs["steady_epoch_s"], errors="coerce")
    samples = pd.to_numeric(runs["num_train"], errors="coerce")
    done = runs[(runs["status"] == "done") & (steady > 0) & (samples > 0)]
    specs = [_stored_spec(data) for data in done["spec"]]
    backends = [None if pd.isna(name) else str(name) for name in _column(done, "backend")]
    devices = done["device"].astype(str).tolist()
    ratios = [
        math.nan if spec is None else float(seconds) / modelled_epoch_s(spec, int(count), device, backend)
        for spec, seconds, count, device, backend in zip(
            specs, steady[done.index], samples[done.index], devices, backends, strict=True
        )
    ]
    frame = pd.DataFrame(
        {
            "device": devices,
            "backend": backends,
            "spec": specs,
            "batch_size": [None if spec is None else spec.batch_size for spec in specs],
            "flops_per_sample": [None if spec is None else float(flops_per_sample(spec)) for spec in specs],
            "ratio": ratios,
            "first_epoch_extra_s": _first_epoch_extra(done),
            "settings": [None if spec is None else _settings(spec) for spec in specs],
        },
        columns=columns,
    )
    usable = frame[frame["flops_per_sample"].notna() & (frame["ratio"] > 0)]
    return usable.iloc[::-1].reset_index(drop=True)


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
    samples = trained_samples(spec, num_train, backend)
    estimates = tuple(_estimate_device(device, spec, samples, usable, backend) for device in devices)
    note = samples_note(spec, num_train, backend)
    return JobEstimate(devices=estimates, overhead_s=max(float(overhead_s), 0.0), samples_note=note)


def _estimate_device(
    device: str, spec: ModelSpec, samples: int, usable: pd.DataFrame, backend: str | None
) -> DeviceEstimate:
    """From the device's own stored runs, else those of single devices of its kind, else a first guess."""
    own = usable[usable["device"] == device]
    borrowed = own.empty
    candidates = _single_devices_of_kind(usable, device) if borrowed else own
    nearest, distance = _nearest(candidates, spec, backend)
    modelled_s = modelled_epoch_s(spec, samples, device, backend)
    if nearest.empty:
        return _first_guess(device, spec, modelled_s, backend)
    ratios = nearest["ratio"].astype(float)
    extras = nearest["first_epoch_extra_s"].dropna()
    steady_s = modelled_s * float(ratios.median())
    extra_s = float(extras.median()) if not extras.empty else _guessed_extra_s(device, spec, backend)
    same_layers = math.isclose(float(nearest["flops_per_sample"].iloc[0]), flops_per_sample(spec))
    basis = "single device" if borrowed else _basis(distance, same_layers)
    disagreement = min(math.sqrt(float(ratios.max() / ratios.min())), MAX_DISAGREEMENT)
    return DeviceEstimate(
        device=device,
        epochs=spec.epochs,
        first_epoch_s=steady_s + extra_s,
        steady_epoch_s=steady_s,
        based_on=len(nearest),
        basis=basis,
        spread=SPREADS[basis] * disagreement,
    )


def _basis(distance: float, same_layers: bool) -> str:
    """The key of SPREADS for the nearest run's distance; `same_layers`: its layers and dataset are the job's."""
    if distance <= SAME_MODEL_DISTANCE:
        return "this model"
    if same_layers:
        return "this model, other settings"
    return "similar models" if distance <= SIMILAR_DISTANCE else "other models"


def _nearest(runs: pd.DataFrame, spec: ModelSpec, backend: str | None) -> tuple[pd.DataFrame, float]:
    """The `NEIGHBOURS` runs nearest to `spec` (newest first among equals) and the nearest one's distance."""
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
    nearest = runs.assign(distance=distance).sort_values("distance", kind="stable").head(NEIGHBOURS)
    closest = float(nearest["distance"].min())
    return nearest[nearest["distance"] <= closest + NEIGHBOUR_SPREAD], closest


def _settings(spec: ModelSpec) -> tuple[int, bool, str, bool]:
    """The spec's settings that change the work per step, beyond its size and batch."""
    return (spec.steps_per_execution, spec.jit_compile, spec.precision, spec.device_resident)


def _settings_distance(stored: tuple[int, bool, str, bool], target: tuple[int, bool, str, bool]) -> float:
    steps_per_call = abs(math.log(max(stored[0], 1) / max(target[0], 1)))
    return steps_per_call + SETTING_DISTANCE * sum(a != b for a, b in zip(stored[1:], target[1:], strict=True))


def _one_call_per_epoch(spec: ModelSpec, backend: str | None) -> bool:
    """True when the epoch runs as one compiled call: data kept on the device, on a backend that supports it."""
    return spec.device_resident and backend in RESIDENT_BACKENDS


def _steps_per_call(spec: ModelSpec, backend: str | None) -> int:
    """Steps per call through `model.fit`: the spec's, except on PyTorch, which takes one (lib.model)."""
    return 1 if backend == "torch" else max(spec.steps_per_execution, 1)


def _single_devices_of_kind(usable: pd.DataFrame, device: str) -> pd.DataFrame:
    """Runs on single devices of the same kind as `device` ("gpu:0", "gpu:1" for "gpu:all" or "gpu:1")."""
    kind = _kind(device)
    names = usable["device"].astype(str)
    parallel = names.map(is_data_parallel).astype(bool)
    return usable[names.str.startswith(f"{kind}:") & ~parallel & (names != device)]


def _first_guess(device: str, spec: ModelSpec, modelled_s: float, backend: str | None) -> DeviceEstimate:
    return DeviceEstimate(
        device=device,
        epochs=spec.epochs,
        first_epoch_s=modelled_s + _guessed_extra_s(device, spec, backend),
        steady_epoch_s=modelled_s,
        based_on=0,
        basis="first guess",
        spread=SPREADS["first guess"],
    )


def _guessed_extra_s(device: str, spec: ModelSpec, backend: str | None) -> float:
    guess = FIRST_GUESSES[_kind(device)]
    xla = spec.jit_compile and backend != "jax" and not _one_call_per_epoch(spec, backend)
    return guess.first_epoch_extra_s + (guess.xla_extra_s if xla else 0.0)


def _kind(device: str) -> str:
    """The device kind, "cpu" or "gpu"; an unknown kind counts as a CPU, the slower guess."""
    kind = device_kind(device)
    return kind if kind in FIRST_GUESSES else "cpu"


def _basis_text(basis: str, based_on: int, device: str) -> str:
    """The basis in words, e.g. "from 3 past runs of this model"."""
    if basis == "first guess":
        return f"a first guess: nothing has trained on {device_label(device)} here yet"
    runs = f"{based_on} past {'run' if based_on == 1 else 'runs'}"
    if basis == "single device":
        which = "a single" if is_data_parallel(device) else "another"
        return f"from {runs} on {which} {_kind(device).upper()} here"
    if basis == "other models":
        return f"from {runs} of {'a quite different model' if based_on == 1 else 'quite different models'}"
    if basis == "similar models" and based_on == 1:
        return f"from {runs} of a similar model"
    if basis == "this model, other settings":
        return f"from {runs} of this model with other training settings"
    return f"from {runs} of {basis}"


def _in_unit(seconds: float) -> tuple[str, str]:
    """A duration to two significant digits in the unit people would use: ("45", "s"), ("2.5", "min")."""
    for unit, scale, below_s in (("s", 1.0, 90.0), ("min", 60.0, 5400.0)):
        if seconds < below_s:
            return _two_digits(seconds / scale), unit
    return _two_digits(seconds / 3600.0), "h"


def _two_digits(value: float) -> str:
    """A number to two significant digits, as people write it: "8", "13", "1.5", "0.45"."""
    if value >= 10:
        return f"{round(value):,}"
    if value >= 1:
        return f"{round(value, 1):g}"
    return f"{float(f'{value:.2g}'):g}"


def _suggestion(samples: int, estimate: JobEstimate, *, smallest: int, whole_dataset: bool) -> SampleSuggestion:
    return SampleSuggestion(
        samples=samples,
        seconds=estimate.total_s,
        estimate=estimate,
        whole_dataset=whole_dataset,
        too_slow=samples <= smallest and estimate.total_s > TOO_SLOW_S,
    )


def _stored_spec(data: object) -> ModelSpec | None:
    """A stored spec dict as a `ModelSpec`, or None when it cannot be read."""
    if not isinstance(data, dict):
        return None
    try:
        spec = ModelSpec.from_dict(data)
        flops_per_sample(spec)
        count_params(spec)
    except (SpecError, TypeError, ValueError, KeyError):
        return None
    return spec if isinstance(spec.batch_size, int) and spec.batch_size > 0 else None


def _column(frame: pd.DataFrame, name: str) -> list[object]:
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _first_epoch_extra(runs: pd.DataFrame) -> list[float]:
    """Seconds the first epoch took beyond a steady one, per run; NaN when unknown (one epoch, no times)."""
    first = pd.to_numeric(pd.Series(_column(runs, "first_epoch_s"), dtype=object), errors="coerce")
    steady = pd.to_numeric(pd.Series(_column(runs, "steady_epoch_s"), dtype=object), errors="coerce")
    epochs = [len(value) if isinstance(value, list | tuple) else 2 for value in _column(runs, "epoch_s")]
    extra = (first - steady).clip(lower=0.0)
    return [value if count >= 2 else math.nan for value, count in zip(extra.tolist(), epochs, strict=True)]
