"""What the Results page compares and what it says about it, as plain Python (no Streamlit, no Altair).

- `choose_comparison` picks the runs drawn before anyone chooses: the latest job's devices, else the latest
  comparable CPU and GPU runs, else the latest runs of one model that differ in exactly one setting, and says
  which rule picked them.
- `run_names` names each compared run by the settings that differ between the compared runs ("batch 32" vs
  "batch 1,024"; "machine-1" vs "machine-2" when they ran on different machines), with preset titles
  instead of preset codes.
- The caption functions compute every sentence from the numbers the chart beside it draws: speed ratios,
  whether the loss curves overlap, and why the total-time ratio is smaller than the throughput ratio.
- What a run learned: its confusion matrix as a tidy frame, the pair of classes it mixes up most, and the
  captions of its sample test images (`learned_runs`, `confusion_frame`, `confusion_caption`).
- Generated data has random labels, so its accuracy measures nothing: `data_label` and
  `GENERATED_ACCURACY_NOTE` are the words the tables, captions and exports use for it.

Every function takes a runs frame shaped like `RunStore.runs()` (one row per device run); columns it lacks
(a Train-page frame has no spec columns) are treated as settings that do not differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.datasets import DATASETS
from lib.formatting import DASH, format_seconds
from lib.hardware import machine_name
from lib.presets import PRESETS

REAL_DATA = "real"
GENERATED_DATA = "generated"
GENERATED_ACCURACY_NOTE = "generated data: the labels are random, so accuracy means nothing"
GENERATED_LOSS_NOTE = (
    "On generated data the labels are random: the loss can only fall by memorising the training images."
)
ACCURACY_FIELDS = ("test_accuracy", "train_accuracy")  # values that mean nothing on generated data
OVERLAP_TOLERANCE = 0.05  # loss curves within 5 % of each other at every epoch "overlap"
ACCURACY_MATCH_POINTS = 1.5  # test accuracies of one model on two devices "match" within 1.5 points
RATIO_AGREEMENT = 0.10  # total-time and throughput ratios within 10 % "agree"
SEARCH_WINDOW = 150  # newest finished runs the chooser looks through (it compares pairs of them)
MAX_COMPARED = 6  # runs a default comparison draws at most


# --- the settings a run can differ in ---


@dataclass(frozen=True)
class Setting:
    """One thing two runs can differ in: a column of the runs frame and how a run's value reads."""

    column: str  # column of `RunStore.runs()`
    name: str  # what the setting is called in a sentence: "batch size"
    text: Callable[[Any], str]  # how one run's value reads in its name: "batch 1,024"
    in_preset: bool  # True: a preset fixes it (a preset title can stand for it); False: a run setting
    value: Callable[[Any], Any] | None = None  # the comparable value from the column's cell; None: the cell itself

    def of(self, cell: Any) -> Any:
        """The comparable value of one run's cell of this column (plain Python, None when missing)."""
        return _clean(self.value(cell) if self.value is not None else cell)


def _layers_text(units: Any) -> str:
    units = tuple(units or ())
    if units and len(set(units)) == 1:
        return f"layers {units[0]:,} x {len(units)}"
    return "layers " + "-".join(f"{unit:,}" for unit in units)


def _dataset_text(name: Any) -> str:
    return DATASETS[name].title if name in DATASETS else str(name)


# In the order a run's name lists them: hardware first, then the model, then how much was trained.
SETTINGS: tuple[Setting, ...] = (
    Setting("hardware", "machine", str, False, machine_name),  # the node or host that ran it
    Setting("device", "device", str, False),
    Setting("backend", "backend", str, False),
    Setting("dataset", "dataset", _dataset_text, True),
    Setting("hidden_units", "layers", _layers_text, True),
    Setting("hidden_activation", "hidden activation", lambda value: f"{value} hidden layers", True),
    Setting("output_activation", "output activation", lambda value: f"{value} output", True),
    Setting("optimizer", "optimizer", str, True),
    Setting("learning_rate", "learning rate", lambda value: f"learning rate {value:g}", True),
    Setting("label_encoding", "label encoding", lambda value: f"{str(value).replace('_', '-')} labels", True),
    Setting("batch_size", "batch size", lambda value: f"batch {int(value):,}", True),
    Setting("steps_per_execution", "steps per call", lambda value: f"{int(value):,} steps per call", True),
    Setting("jit_compile", "XLA compilation", lambda value: "XLA on" if value else "XLA off", True),
    Setting("precision", "precision", str, True),
    Setting(
        "device_resident", "data placement", lambda on: "data on the device" if on else "data fed from the host", True
    ),
    Setting("seed", "random seed", lambda value: f"random seed {value}", True),
    Setting("num_train", "sample count", lambda value: f"{int(value):,} samples", False),
    Setting("epochs", "epochs", lambda value: f"{int(value):,} epochs", False),
    Setting("synthetic", "data", lambda value: "generated data" if value else "real data", False),
)
_MODEL_COLUMNS = ("dataset", "hidden_units")  # runs of "the same model" share these
# Settings that leave what is learned alone: runs differing only in these should learn alike.
_HARDWARE_COLUMNS = ("hardware", "device", "backend", "steps_per_execution", "jit_compile", "device_resident")


def data_label(synthetic: Any) -> str:
    """Says where a run's data came from: `REAL_DATA` or `GENERATED_DATA`."""
    return GENERATED_DATA if _clean(synthetic) else REAL_DATA


def preset_title(preset: Any) -> str | None:
    """The preset's title ("Fashion-MNIST, as in the tutorial"), the name itself if unknown, None for none."""
    preset = _clean(preset)
    if preset is None:
        return None
    return PRESETS[preset].title if preset in PRESETS else str(preset)


def run_model_title(run: Mapping[str, Any]) -> str:
    """Names a run's model: its preset's title, else the dataset and layers of the custom model."""
    title = preset_title(run.get("preset"))
    if title:
        return title
    dataset = _dataset_text(run.get("dataset"))
    units = _clean(run.get("hidden_units"))
    return f"{dataset}, custom model ({_layers_text(units)})" if units else f"{dataset}, custom model"


def differing_settings(runs: pd.DataFrame) -> list[Setting]:
    """The settings whose value is not the same in every row, in `SETTINGS` order."""
    return [s for s in SETTINGS if s.column in runs and len({s.of(v) for v in runs[s.column]}) > 1]


def run_names(runs: pd.DataFrame) -> list[str]:
    """Names each run (row) by what differs between the runs, e.g. "batch 32" and "batch 1,024".

    A preset's title stands for the settings it fixes when every run has a preset whose values they keep;
    settings a preset does not explain are listed. One run alone is named by its device. Runs that differ
    in nothing get their id ("cpu:0 · #7") so every name is unique.

    Args:
        runs: Rows from `RunStore.runs()` (or `lib.charts.device_runs_to_frame`).

    Returns:
        One name per row, in row order.
    """
    rows = [row for _, row in runs.iterrows()]
    if len(rows) <= 1:
        return [str(_clean(row.get("device")) or "?") for row in rows]
    differing = differing_settings(runs)
    presets = [_clean(row.get("preset")) for row in rows] if "preset" in runs else [None] * len(rows)
    # Titles name the runs only when every run has a known preset; a custom model's runs are named by settings.
    preset_differs = len(set(presets)) > 1 and all(preset in PRESETS for preset in presets)
    shown = [s for s in differing if not (preset_differs and s.in_preset and _preset_explains(s, rows, presets))]
    names = []
    for row, preset in zip(rows, presets, strict=True):
        parts = [preset_title(preset)] if preset_differs else []
        parts += [setting.text(setting.of(row[setting.column])) for setting in shown]
        names.append(" · ".join(parts))
    return _unique(names, rows)


def _preset_explains(setting: Setting, rows: list[pd.Series], presets: list[str | None]) -> bool:
    """True when every run has a known preset and keeps that preset's value of this setting."""
    for row, preset in zip(rows, presets, strict=True):
        if preset not in PRESETS:
            return False
        if _clean(getattr(PRESETS[preset].spec, setting.column)) != setting.of(row[setting.column]):
            return False
    return True


def _unique(names: list[str], rows: list[pd.Series]) -> list[str]:
    """Adds the run id to every name that is not unique; runs that differ in nothing are named by device first."""
    if not any(names):
        names = [str(_clean(row.get("device")) or "run") for row in rows]
    unique = []
    for name, row in zip(names, rows, strict=True):
        run_id = _clean(row.get("id"))
        repeated = names.count(name) > 1 and run_id not in (None, "")
        unique.append(f"{name} · #{run_id}" if repeated else name)
    return unique


# --- the default comparison ---


@dataclass(frozen=True)
class Comparison:
    """The runs the Results page draws before anyone picks, and why those."""

    run_ids: tuple[int, ...]  # stored run ids, oldest first
    rule: str  # "job", "cpu_vs_gpu", "one_setting", "single" or "none"
    reason: str  # one sentence for the caption: which rule picked the runs


@dataclass(frozen=True)
class _Run:
    """One finished run's id, job and settings, ready to compare."""

    id: int
    job_id: str | None
    preset: str | None
    values: dict[str, Any]  # setting column -> comparable value
    title: str  # `run_model_title` of the run

    @property
    def device(self) -> str:
        return str(self.values.get("device") or "")

    @property
    def kind(self) -> str:
        return self.device.split(":")[0]

    def same_model(self, other: _Run) -> bool:
        return all(self.values.get(column) == other.values.get(column) for column in _MODEL_COLUMNS)

    def differences(self, other: _Run) -> list[str]:
        return [
            s.column for s in SETTINGS if s.column in self.values and self.values[s.column] != other.values[s.column]
        ]


def choose_comparison(runs: pd.DataFrame, job_id: str | None = None) -> Comparison:
    """Picks the most instructive comparison the stored runs allow.

    In order: the devices of the latest job (this session's, else the store's) when it trained several;
    else the latest comparable CPU and GPU runs of one model; else the latest runs of one model that
    differ in exactly one setting (batch size, device, backend, precision, sample count, ...); else the
    latest run alone.

    Args:
        runs: Stored runs, oldest first (`RunStore.runs()`, filtered as the page shows them).
        job_id: This session's latest job, if any.

    Returns:
        The chosen run ids and the sentence saying which rule chose them.
    """
    done = runs[runs["status"] == "done"] if "status" in runs else runs
    if done.empty:
        return Comparison((), "none", "No finished run to compare yet.")
    newest = [_facts(row) for _, row in done.iloc[::-1].head(SEARCH_WINDOW).iterrows()]
    own = job_id is not None and any(run.job_id == job_id for run in newest)
    job = job_id if own else newest[0].job_id
    job_runs = [run for run in newest if job is not None and run.job_id == job]
    if len({run.device for run in job_runs}) > 1:
        devices = _and(list(dict.fromkeys(run.device for run in reversed(job_runs))))  # a repeat or sweep: once
        whose = "Your latest job" if own else "The latest job"
        return _comparison(
            job_runs, "job", f"{whose} trained {job_runs[0].title} on {devices}: its devices side by side."
        )
    first = job_runs[0] if own and job_runs else newest[0]
    ordered = [first, *(run for run in newest if run is not first)]
    pair = _cpu_gpu_pair(ordered)
    if pair:
        cpu, gpu = sorted(pair, key=lambda run: run.kind != "cpu")
        others = [_setting_name(column) for column in cpu.differences(gpu) if column != "device"]
        extra = f"; they also differ in {_and(others)}" if others else ", the same settings otherwise"
        reason = f"The latest CPU and GPU runs of {_title(pair)} ({cpu.device} vs {gpu.device}{extra})."
        return _comparison(pair, "cpu_vs_gpu", reason)
    group, column = _one_setting_group(ordered)
    if group:
        why = (
            "no GPU run has a CPU run of its model"
            if any(run.kind == "gpu" for run in newest)
            else "no GPU run is stored"
        )
        reason = (
            f"The latest job trained on one device and {why}, so these are the latest runs of {_title(group)} "
            f"that differ in one setting only, {_setting_name(column)}: the gap between them is that setting's effect."
        )
        return _comparison(group, "one_setting", reason)
    reason = (
        "Only the latest run is drawn: no two stored runs of one model differ in just one setting yet. "
        "Pick runs above, or train the same model again with another batch size."
    )
    return _comparison([first], "single", reason)


def _title(runs: Sequence[_Run]) -> str:
    """The model of runs that share it: a preset's title when one of them has a preset."""
    return next((run.title for run in runs if run.preset is not None), runs[0].title)


def _comparison(chosen: Sequence[_Run], rule: str, reason: str) -> Comparison:
    return Comparison(tuple(sorted(run.id for run in chosen)), rule, reason)


def _cpu_gpu_pair(ordered: list[_Run]) -> list[_Run]:
    """The newest CPU and GPU runs of one model that differ only in the device, else the closest such pair.

    Args:
        ordered: Finished runs, the preferred one first, then newest first.
    """
    exact = _exactly_one_apart(ordered, "device")
    for run in ordered:
        partner = next((other for other in exact.get(run.id, []) if {run.kind, other.kind} == {"cpu", "gpu"}), None)
        if partner is not None:
            return [run, partner]
    cpus = [run for run in ordered if run.kind == "cpu"]
    position = {run.id: index for index, run in enumerate(ordered)}
    pairs = [
        (len(gpu.differences(cpu)), min(position[gpu.id], position[cpu.id]), gpu, cpu)
        for gpu in ordered
        if gpu.kind == "gpu"
        for cpu in cpus
        if cpu.same_model(gpu)
    ]
    return list(min(pairs, key=lambda pair: pair[:2])[2:]) if pairs else []


def _one_setting_group(ordered: list[_Run]) -> tuple[list[_Run], str]:
    """The newest run with the newest runs of its model that differ from it in exactly one setting.

    Returns:
        The runs (the anchor first, one run per other value of that setting) and the setting's column;
        an empty list when no run has such a partner.
    """
    columns = [s.column for s in SETTINGS if s.column not in _MODEL_COLUMNS]
    apart = {column: _exactly_one_apart(ordered, column) for column in columns}
    position = {run.id: index for index, run in enumerate(ordered)}
    for anchor in ordered:
        partners = [
            (position[other.id], column, other) for column in columns for other in apart[column].get(anchor.id, [])
        ]
        if not partners:
            continue
        _, column, _ = min(partners, key=lambda partner: partner[0])  # the setting of the newest partner
        by_value: dict[Any, _Run] = {}
        for _, setting, other in sorted(partners, key=lambda partner: partner[0]):
            if setting == column:
                by_value.setdefault(other.values[column], other)
        return [anchor, *list(by_value.values())[: MAX_COMPARED - 1]], column
    return [], ""


def _exactly_one_apart(runs: list[_Run], column: str) -> dict[int, list[_Run]]:
    """Run id -> the runs (in `runs` order) that differ from it in this setting and in nothing else.

    Runs are grouped by all their other settings, so this takes one pass, not a comparison of every pair.
    """
    if not runs or column not in runs[0].values:
        return {}
    groups: dict[tuple, list[_Run]] = {}
    for run in runs:
        rest = tuple(value for name, value in run.values.items() if name != column)
        groups.setdefault(rest, []).append(run)
    return {
        run.id: [other for other in group if other.values[column] != run.values[column]]
        for group in groups.values()
        for run in group
    }


def _facts(row: pd.Series) -> _Run:
    values = {s.column: s.of(row[s.column]) for s in SETTINGS if s.column in row.index}
    return _Run(
        id=int(row["id"]),
        job_id=_clean(row.get("job_id")),
        preset=_clean(row.get("preset")),
        values=values,
        title=run_model_title(row),
    )


def _setting_name(column: str) -> str:
    return next(s.name for s in SETTINGS if s.column == column)


# --- captions computed from the data ---


def total_time_caption(summary: pd.DataFrame) -> str:
    """What the total-time bars show, with the ratio of the slowest to the fastest total.

    Args:
        summary: `lib.charts.run_summary_frame` output (series, total_s, first_epoch_s, ...).
    """
    timed = summary[summary["total_s"].notna()]
    if timed.empty:
        return "No finished run has a total time."
    if len(timed) == 1:
        run = timed.iloc[0]
        return f"Total training time of {run['series']}, the sum of its epochs: {format_seconds(run['total_s'])}."
    fast, slow = timed.loc[timed["total_s"].idxmin()], timed.loc[timed["total_s"].idxmax()]
    ratio = slow["total_s"] / fast["total_s"]
    return (
        f"Total training time per run (the sum of its epochs): {fast['series']} took "
        f"{format_seconds(fast['total_s'])}, {ratio:.1f}x less than {slow['series']} "
        f"({format_seconds(slow['total_s'])})."
    )


def throughput_caption(summary: pd.DataFrame) -> str:
    """What the throughput bars show, with the ratio of the fastest to the slowest steady speed."""
    timed = summary[summary["samples_per_s"].notna()]
    if timed.empty:
        return "No run has a steady throughput."
    if len(timed) == 1:
        run = timed.iloc[0]
        return (
            f"{run['series']} trained {run['samples_per_s']:,.0f} samples/s in the later epochs (compilation excluded)."
        )
    fast, slow = timed.loc[timed["samples_per_s"].idxmax()], timed.loc[timed["samples_per_s"].idxmin()]
    ratio = fast["samples_per_s"] / slow["samples_per_s"]
    return (
        f"Samples per second in the later epochs, compilation excluded: {fast['series']} trained "
        f"{ratio:.1f}x as many per second as {slow['series']} ({fast['samples_per_s']:,.0f} vs "
        f"{slow['samples_per_s']:,.0f} samples/s)."
    )


def epoch_time_caption(summary: pd.DataFrame) -> str:
    """How much longer epoch 1 took than a later epoch on each run: the one-off tracing and compiling."""
    parts = []
    for _, run in summary.iterrows():
        extra = fixed_cost_s(run)
        if extra is None:
            continue
        parts.append(
            f"{run['series']} {format_seconds(run['first_epoch_s'])} vs {format_seconds(run['steady_epoch_s'])} "
            f"(+{format_seconds(extra)})"
        )
    if not parts:
        return "Only one epoch per run: there is no later epoch to compare epoch 1 with."
    return (
        "Epoch 1 against a later epoch: "
        + "; ".join(parts[:MAX_COMPARED])
        + ". The extra is paid once: tracing and compiling the model. Compare the later epochs."
    )


def fixed_cost_s(run: Mapping[str, Any]) -> float | None:
    """Seconds epoch 1 took beyond a later epoch (tracing, compiling); None with a single epoch."""
    epochs = _clean(run.get("epochs"))
    first, steady = _clean(run.get("first_epoch_s")), _clean(run.get("steady_epoch_s"))
    if first is None or steady is None or (epochs is not None and int(epochs) < 2):
        return None
    return max(float(first) - float(steady), 0.0)


def time_gap_text(summary: pd.DataFrame, outside_epochs_s: Mapping[str, float] | None = None) -> str:
    """Explains, with the stored numbers, why the total-time ratio differs from the throughput ratio.

    The total is every epoch: epoch 1 with its one-off tracing and compiling, then the other epochs at
    the steady speed. That fixed cost does not shrink on a faster device, so it is a bigger share of the
    faster run's total and pulls the total-time ratio below the throughput ratio.

    Args:
        summary: `lib.charts.run_summary_frame` output, with `epochs`, `num_train` and `run_id` columns.
        outside_epochs_s: Run id -> seconds its job spent outside the epochs (worker start, data loading,
            model building, evaluation), where known (`outside_epochs_by_run`).

    Returns:
        A short paragraph; empty with fewer than two timed runs.
    """
    timed = summary[summary["total_s"].notna() & summary["samples_per_s"].notna()]
    if len(timed) < 2:
        return ""
    fast, slow = timed.loc[timed["samples_per_s"].idxmax()], timed.loc[timed["samples_per_s"].idxmin()]
    throughput_ratio = fast["samples_per_s"] / slow["samples_per_s"]
    total_ratio = slow["total_s"] / fast["total_s"]
    ratios = f"total time {total_ratio:.1f}x, throughput {throughput_ratio:.1f}x"
    work_fast, work_slow = _work(fast), _work(slow)
    if work_fast and work_slow and work_fast != work_slow:
        return (
            f"**Total time and throughput ({ratios})** measure different things here: {fast['series']} trained "
            f"{_work_text(fast)}, {slow['series']} {_work_text(slow)}. Throughput is per sample, so it is the fair "
            "comparison of speed."
        )
    if abs(total_ratio / throughput_ratio - 1) <= RATIO_AGREEMENT:
        opening = f"**Total time and throughput agree ({ratios}):** fixed costs are small next to training here."
    elif total_ratio < throughput_ratio:
        opening = (
            f"**Why the total is only {total_ratio:.1f}x shorter when throughput is {throughput_ratio:.1f}x higher:** "
            "part of each total is a fixed cost that faster training does not shrink."
        )
    else:
        opening = (
            f"**Why the total is {total_ratio:.1f}x shorter when throughput is only {throughput_ratio:.1f}x higher:** "
            f"{slow['series']} paid more fixed cost than {fast['series']}."
        )
    lines = [opening, *(_breakdown(run) for run in (fast, slow))]
    if total_ratio < throughput_ratio * (1 - RATIO_AGREEMENT):
        lines.append(
            "With more epochs or more samples the fixed cost weighs less and the total-time ratio approaches "
            "the throughput ratio."
        )
    lines.append(_outside_epochs_text(fast, slow, outside_epochs_s or {}))
    return " ".join(line for line in lines if line)


def _breakdown(run: pd.Series) -> str:
    """One run's total split into the fixed cost (epoch 1's extra) and the rest, in seconds and share."""
    total = float(run["total_s"])
    extra = fixed_cost_s(run)
    if extra is None:
        once = format_seconds(total)
        return f"{run['series']} ran one epoch ({once}): it includes compiling, so there is no steady part."
    rest = total - float(run["first_epoch_s"])
    return (
        f"Of {run['series']}'s {format_seconds(total)}, {format_seconds(extra)} ({extra / total:.0%}) is fixed cost: "
        f"epoch 1 took {format_seconds(run['first_epoch_s'])} against {format_seconds(run['steady_epoch_s'])} for a "
        f"later epoch (tracing and compiling); the other epochs took {format_seconds(rest)}."
    )


def _outside_epochs_text(fast: pd.Series, slow: pd.Series, outside_epochs_s: Mapping[str, float]) -> str:
    known = [(run["series"], outside_epochs_s.get(str(run["run_id"]))) for run in (fast, slow)]
    known = [(series, seconds) for series, seconds in known if seconds is not None]
    base = "Data loading, model building and evaluation on the test set are not in these totals"
    if not known:
        return base + "."
    parts = _and([f"{format_seconds(seconds)} for {series}'s job" for series, seconds in known])
    return f"{base}: they took a further {parts}, outside the epochs."


def outside_epochs_by_run(runs: pd.DataFrame, jobs: Sequence[Any]) -> dict[str, float]:
    """Seconds each run's job spent outside its epochs: worker start, data loading, model building, evaluation.

    Args:
        runs: Every stored run of those jobs (`RunStore.runs(job_id=...)`): their totals are the training time.
        jobs: The jobs' `lib.jobs.JobRecord`s (None for an unknown job is skipped).

    Returns:
        Run id (as text) -> the job's wall time minus the sum of its runs' totals, for jobs with both times.
    """
    result: dict[str, float] = {}
    for job in jobs:
        if job is None or job.started_at is None or job.finished_at is None:
            continue
        own = runs[runs["job_id"] == job.job_id]
        trained = float(own["total_s"].fillna(0.0).sum())
        outside = max(float(job.finished_at) - float(job.started_at) - trained, 0.0)
        result.update({str(run_id): outside for run_id in own["id"]})
    return result


def loss_caption(epochs: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Says whether the training-loss curves overlap, measured epoch by epoch, and whether they should.

    Args:
        epochs: `lib.charts.run_epochs_frame` output (series, epoch, train_loss).
        runs: The compared runs, to tell which settings differ.
    """
    curves = {
        series: group.dropna(subset=["train_loss"]).set_index("epoch")["train_loss"]
        for series, group in epochs.groupby("series", sort=False)
    }
    curves = {series: curve for series, curve in curves.items() if not curve.empty}
    generated = " " + GENERATED_LOSS_NOTE if _any_generated(runs) else ""
    if len(curves) < 2:
        return "Training loss per epoch: pick a second run to compare the curves." + generated
    gap = _largest_gap(curves)
    if gap is None:
        return "The runs share no epoch with a loss, so their curves cannot be compared." + generated
    epoch, spread, values = gap
    overlap = spread <= OVERLAP_TOLERANCE
    expectation = _loss_expectation(runs, overlap)
    if overlap:
        within = "0.1%" if spread < 0.001 else f"{spread:.1%}"
        return f"The loss curves overlap: within {within} of each other at every epoch. {expectation}{generated}"
    listed = ", ".join(f"{series} {value:.3f}" for series, value in values.items())
    differ = f"The loss curves differ, most at epoch {epoch}: {listed} ({spread:.0%} apart)."
    return f"{differ} {expectation}{generated}"


def _largest_gap(curves: Mapping[str, pd.Series]) -> tuple[int, float, dict[str, float]] | None:
    """The common epoch where the losses are farthest apart, relative to their mean, and the values there."""
    common = sorted(set.intersection(*(set(curve.index) for curve in curves.values())))
    worst = None
    for epoch in common:
        values = {series: float(curve.loc[epoch]) for series, curve in curves.items()}
        finite = [value for value in values.values() if math.isfinite(value)]
        if len(finite) < len(values):
            continue
        mean = sum(finite) / len(finite)
        spread = (max(finite) - min(finite)) / abs(mean) if mean else 0.0
        if worst is None or spread > worst[1]:
            worst = (int(epoch), spread, values)
    return worst


def _learning_settings(runs: pd.DataFrame) -> list[str]:
    """The names of the differing settings that change what is learned (not only how fast)."""
    return [s.name for s in differing_settings(runs) if s.column not in _HARDWARE_COLUMNS]


def _loss_expectation(runs: pd.DataFrame, overlap: bool) -> str:
    """Whether the curves were expected to overlap, from the settings that differ between the runs."""
    learning = _learning_settings(runs)
    if learning and overlap:
        return f"The runs differ in {_and(learning)}, yet they learned alike."
    if learning:
        return f"Expected: the runs differ in {_and(learning)}, which changes how the model learns."
    if overlap:
        return "As expected: the same model and random seed learn alike on any device."
    return (
        "Unexpected: the same model and random seed should learn alike on any device; a gap this size points at the "
        "numerics (kernels, float rounding order)."
    )


def accuracy_caption(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """The test accuracies of the real-data runs, how far apart they are and whether they should match.

    Args:
        summary: `lib.charts.run_summary_frame` output.
        runs: The compared runs, to tell which settings differ; without them nothing is said about matching.

    Returns:
        The caption; runs on generated data are named apart, their accuracy meaning nothing.
    """
    real = summary[~summary["synthetic"].map(_truthy)] if "synthetic" in summary else summary
    generated = [str(series) for series in summary["series"] if series not in set(real["series"])]
    measured = real[real["test_accuracy"].notna()]
    parts = []
    if len(measured) == 1:
        run = measured.iloc[0]
        parts.append(f"{run['series']}: {run['test_accuracy']:.1%} on test images it never saw.")
    elif len(measured) > 1:
        values = ", ".join(f"{row['series']} {row['test_accuracy']:.1%}" for _, row in measured.iterrows())
        spread = 100 * (measured["test_accuracy"].max() - measured["test_accuracy"].min())
        parts.append(f"Accuracy on test images the models never saw: {values} ({spread:.1f} points apart).")
        if runs is not None and not _learning_settings(runs):
            verdict = (
                "and they do" if spread <= ACCURACY_MATCH_POINTS else "but they do not: look for a numerical cause"
            )
            parts.append(f"Same model and settings, so these should match within about a point, {verdict}.")
    elif not generated:
        parts.append("No run was evaluated on test images.")
    if generated:
        parts.append(f"{_and(generated)}: {GENERATED_ACCURACY_NOTE}, so no bar is drawn.")
    return " ".join(parts)


def train_accuracy_caption(summary: pd.DataFrame, epochs: pd.DataFrame) -> str:
    """Final training accuracy against test accuracy per real-data run: a big gap means memorising."""
    parts = []
    for _, run in summary.iterrows():
        if _truthy(run.get("synthetic")):
            continue
        curve = epochs.loc[epochs["series"] == run["series"], "train_accuracy"].dropna()
        if curve.empty:
            continue
        final, test = float(curve.iloc[-1]), _clean(run.get("test_accuracy"))
        test_text = DASH if test is None else f"{test:.1%}"
        parts.append(f"{run['series']} {final:.1%} on training images vs {test_text} on test images")
    generated = "" if not _any_generated(summary) else f" Generated-data runs are left out ({GENERATED_ACCURACY_NOTE})."
    if not parts:
        return "No real-data run has a training accuracy." + generated
    return (
        "Last epoch's training accuracy: "
        + "; ".join(parts)
        + ". A gap of several points means the model memorises its training images."
        + generated
    )


# --- what the model learned: its confusion matrix and sample predictions ---

GENERATED_CONFUSION_NOTE = (
    "No confusion matrix for generated data: its labels are random, so which classes a model mixes up means "
    "nothing, and the run keeps none."
)
_CONFUSION_COLUMNS = (
    "true_index",
    "true_class",
    "predicted_index",
    "predicted_class",
    "count",
    "share_of_true",
    "outcome",
)


def learned_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The real-data runs that kept a confusion matrix (runs stored before it was kept have none), most accurate first.

    Args:
        runs: Rows from `RunStore.runs()` with a `result` column (`DeviceRun.to_dict()`).
    """
    if runs.empty or "result" not in runs:
        return runs.iloc[0:0]
    kept = [not _truthy(row.get("synthetic")) and bool(_confusion(row["result"])) for _, row in runs.iterrows()]
    return runs[kept].sort_values("test_accuracy", ascending=False, kind="stable")


def _confusion(result: Any) -> list[list[int]]:
    return (result.get("confusion") or []) if isinstance(result, dict) else []


def confusion_frame(confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> pd.DataFrame:
    """The confusion matrix as a tidy frame, one row per (true class, predicted class) cell.

    Args:
        confusion: Test images per [true class][predicted class] (`DeviceRun.confusion`).
        class_names: The dataset's class names, in label order.

    Returns:
        Columns `true_index`, `true_class`, `predicted_index`, `predicted_class`, `count`, `share_of_true`
        (the cell's share of its true class's images) and `outcome` ("right" on the diagonal, else "mixed up").
    """
    rows = []
    for true, counts in enumerate(confusion):
        total = sum(counts)
        for predicted, count in enumerate(counts):
            rows.append(
                (
                    true,
                    class_names[true],
                    predicted,
                    class_names[predicted],
                    int(count),
                    count / total if total else 0.0,
                    "right" if true == predicted else "mixed up",
                )
            )
    return pd.DataFrame(rows, columns=list(_CONFUSION_COLUMNS))


def most_confused(confusion: Sequence[Sequence[int]]) -> tuple[int, int, int, int] | None:
    """The off-diagonal cell with the most images: (true class, predicted class, its count, the true class's total).

    Ties go to the first in label order; None when no image was mixed up.
    """
    best = None
    for true, counts in enumerate(confusion):
        for predicted, count in enumerate(counts):
            if true != predicted and count > 0 and (best is None or count > best[2]):
                best = (true, predicted, int(count), int(sum(counts)))
    return best


def confusion_caption(confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> str:
    """What to read from one run's confusion matrix: the pair of classes it mixes up most, and how often.

    Args:
        confusion: Test images per [true class][predicted class].
        class_names: The dataset's class names, in label order.
    """
    total = sum(sum(counts) for counts in confusion)
    right = sum(confusion[index][index] for index in range(len(confusion)))
    overall = f"Right overall: {right:,} of {total:,} ({right / total:.1%}, the diagonal)." if total else ""
    pair = most_confused(confusion)
    if pair is None:
        return f"No test image is mixed up. {overall}".strip()
    true, predicted, count, of_true = pair
    return (
        f'"{class_names[true]}" is most often taken for "{class_names[predicted]}": {count:,} of its {of_true:,} '
        f"test images. {overall}"
    ).strip()


def sample_caption(sample: Mapping[str, Any], class_names: Sequence[str]) -> str:
    """One sample image's caption: "predicted / true", marked right (✓) or wrong (✗)."""
    predicted, true = class_names[int(sample["predicted"])], class_names[int(sample["true"])]
    mark = "✓" if predicted == true else "✗"
    return f"{mark} {predicted} / {true}"


def samples_caption(samples: Sequence[Mapping[str, Any]]) -> str:
    """What the sample images are: how many, how they are captioned, and how many the model got right."""
    right = sum(int(sample["predicted"]) == int(sample["true"]) for sample in samples)
    return (
        f"{len(samples)} test images the model never trained on, each captioned predicted / true class: "
        f"{right} right (✓), {len(samples) - right} wrong (✗)."
    )


# --- small helpers ---


def _work(run: pd.Series) -> tuple[int, int] | None:
    samples, epochs = _clean(run.get("num_train")), _clean(run.get("epochs"))
    return None if samples is None or epochs is None else (int(samples), int(epochs))


def _work_text(run: pd.Series) -> str:
    samples, epochs = _work(run) or (0, 0)
    return f"{samples:,} samples x {epochs} epochs"


def _any_generated(runs: pd.DataFrame) -> bool:
    return "synthetic" in runs and any(_truthy(value) for value in runs["synthetic"])


def _truthy(value: Any) -> bool:
    return bool(_clean(value))


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _clean(value: Any) -> Any:
    """The value as plain Python: None for missing (None, NaN, NA), lists as tuples, numpy scalars unwrapped."""
    if isinstance(value, list | tuple):
        return tuple(value)
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value.item() if hasattr(value, "item") else value
