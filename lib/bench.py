"""Command-line benchmark: train one model spec on each chosen device and compare the timings.

Run `python -m lib.bench --help` for the options. Examples:

    python -m lib.bench --preset fashion-seed --devices cpu --epochs 2 --limit 6000 --json out.json
    python -m lib.bench --preset cifar10-tuned --devices cpu,gpu --synthetic
    KERAS_BACKEND=jax python -m lib.bench --preset fashion-tuned --hidden-units 3000,1000 --csv runs.csv

It starts from a preset (`--preset`, default fashion-seed), applies the spec options given, checks the
spec against the server limits (`lib.limits`), loads the dataset (or, with `--synthetic`, generates
images of the same shapes with random pixels and random labels), trains on each device with
`lib.engine.train_on_devices`, prints one table per device and, when several devices ran, how many
times faster each was than the first CPU. Every run, done or failed, is stored in the run store
(`--db`, default `$GPUX_RUNS_DB` or `runs/runs.sqlite`) unless `--no-store`. Progress (one line per
epoch) goes to standard error unless `--quiet`.

Generated data (`--synthetic`) times the real computation, but its labels are random, so a model scores
chance on it (about 10 %): the tables, progress lines, JSON and CSV label such runs as generated and
never show their accuracy as a score.

Exit status: 0 when every device finished; 1 when a device failed or training raised (the runs are
still stored and written); 2 for bad arguments, an unknown preset or device, a spec over the server
limits or a missing dataset (one `error: ...` line on standard error, with the fix); 130 when
interrupted with Ctrl-C (finished epochs are kept and stored as "cancelled").

`--json PATH` writes one object:
    spec       the ModelSpec that ran (`ModelSpec.to_dict()`; `hidden_units` is a list)
    preset     the preset the spec started from
    changed_from_preset   names of the spec fields the options changed
    synthetic  true when the data was generated, not the real dataset
    data       "real", or "generated (random pixels and labels, not the real dataset)"
    accuracy_note  null for real data; for generated data, why its accuracy is not reported
    backend    the Keras backend ("tensorflow", "jax", "torch")
    sample_limit, test_limit   the --limit and --test-limit given (null: whole split)
    hardware   `lib.hardware.describe_hardware()`: cpu_model, logical_cores, ram_bytes, gpus, ...
    versions   `lib.backend.library_versions()`: python, keras, numpy, tensorflow/jax/torch
    run_ids    the run store ids of the results, in order (empty with --no-store)
    prices     `lib.cost`: per_hour (device kind -> price), currency, source ("example", "server")
    results    one `DeviceRun.to_dict()` per run (each device; with --repeats N, each device N times, round
               and round, `repeat` its number), in order, with:
        device                normalised device name, "cpu:0", "gpu:0"
        backend               Keras backend that trained it
        synthetic             true when the data was generated
        status, error         "done", "failed" or "cancelled", and the readable reason
        num_train, num_test   training samples per epoch (whole batches) and test samples evaluated
        epoch_s               wall seconds of each finished epoch (epoch 1 includes compilation)
        first_epoch_s         epoch 1, with tracing and compilation
        steady_epoch_s        median of epochs 2..n (epoch 1 when only one)
        total_s               sum of epoch_s: what the tutorial's %%timeit measured
        samples_per_s         num_train / steady_epoch_s
        achieved_flops_per_s  training FLOPs per epoch / steady_epoch_s, in FLOP/s (not scaled)
        train_loss, train_accuracy   lists, one value per finished epoch
        test_loss, test_accuracy     on the test samples (null when not evaluated)
        target_accuracy, held_out_accuracy, target_epoch, time_to_target_s   with --target-accuracy: the
                              target, the test accuracy after each epoch, the epoch that reached it and the
                              seconds of epochs 1..that one (evaluation included); null when not reached
        energy_method, energy_j, energy_epoch_j, energy_above_idle_j, idle_w, energy_note   `lib.energy`: how
                              the energy was measured ("nvml energy counter", "rapl", "not measured"), joules
                              of the run and per epoch, above the idle draw, the idle watts, and in words how
                              (or why not); the numbers are null when not measured
        price_per_hour, currency, cost   what the run's training time cost at the price of its device kind
        roofline              with --roofline: the run under its device's measured roofs (`lib.roofline`:
                              intensity, achieved and attainable FLOP/s, bound, explanation), or
                              {"not_measured": reason}; null without --roofline
        For generated data, train_accuracy and test_accuracy are null: its labels are random, so the
        accuracy is chance, not a score (the run store keeps the measured values).
Numbers that are not finite (a diverged loss) are written as null. `--csv PATH` writes the same
results as one row per device, lists as JSON text, with the `data` and `accuracy_note` columns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import pandas as pd

from lib.backend import BackendUnavailableError
from lib.cost import DevicePrices, PriceConfigError, format_cost, load_prices, run_cost
from lib.datasets import DATASETS, DatasetUnavailableError, UnknownDatasetError
from lib.device_run import DeviceRun, ProgressEvent
from lib.devices import DeviceNotFoundError
from lib.energy import run_energy_text
from lib.hardware import describe_hardware, hardware_summary
from lib.jobs import JobRequest, LimitError, run_points
from lib.limits import LIMIT_ENV_VARS, LimitConfigError, ServerLimits, load_limits
from lib.presets import PRESETS, PresetNotFoundError, get_preset
from lib.repeats import repeated_runs, spread_frame, spread_text
from lib.requests import check_limits, check_request
from lib.spec import SPEC_FIELDS, ModelSpec, SpecError, SpecField
from lib.store import RunStore, StoreError, json_ready
from lib.time_to_target import target_text

DEFAULT_PRESET = "fashion-seed"
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
REAL_DATA = "real"
GENERATED_DATA = "generated (random pixels and labels, not the real dataset)"
GENERATED_ACCURACY_FIELDS = ("train_accuracy", "test_accuracy")  # not reported for generated data
# argparse destination -> ModelSpec field, for the options that set one field (not --hidden-units).
SPEC_OPTIONS = {
    spec_field.cli.removeprefix("--").replace("-", "_"): spec_field.name
    for spec_field in SPEC_FIELDS
    if spec_field.kind != "layers"
}
EPILOG = """examples:
  python -m lib.bench --preset fashion-seed --devices cpu --epochs 2 --limit 6000 --json out.json
  python -m lib.bench --preset cifar10-tuned --devices cpu,gpu --synthetic
  python -m lib.bench --hidden-units 3000,1000 --batch-size 1024 --steps-per-execution 16 --jit-compile
  KERAS_BACKEND=jax python -m lib.bench --devices gpu:0 --csv runs.csv
  python -m lib.bench --list-presets
  python -m lib.bench --list-devices

exit status: 0 all devices finished, 1 a device failed (still stored), 2 bad arguments, 130 interrupted.
The --json fields are documented in the module docstring: python -c "import lib.bench; help(lib.bench)".
"""


class UsageError(Exception):
    """A bad argument or an unusable setting, found before training; the message says the fix."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one `error: ...` line (the caller prints it and exits with 2)."""

    def error(self, message: str):
        """Raises the message instead of printing the usage text and exiting."""
        raise UsageError(f"{message} (see --help)")


@dataclass
class Plan:
    """Everything decided before training starts."""

    spec: ModelSpec
    preset: str
    changed: list[str]  # spec fields the options changed from the preset
    devices: list[str]  # normalised device names, in order
    dataset: Any  # lib.datasets.Dataset
    sample_limit: int | None
    test_limit: int | None
    store: RunStore | None
    target_accuracy: float | None = None  # time to accuracy: stop at this test accuracy
    prices: DevicePrices = field(default_factory=load_prices)  # what a run costs per hour (lib.cost)
    repeats: int = 1  # runs per device, each with the next seed
    roofline: bool = False  # measure the devices' roofs after training and place each run under them
    hardware: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    backend: str = ""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI.

    Args:
        argv: The arguments after the program name; `sys.argv[1:]` when None.

    Returns:
        The exit status (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return _usage_error(error)
    except SystemExit as done:  # --help
        return int(done.code or 0)
    if args.list_presets:
        print(format_presets())
        return EXIT_OK
    try:
        if args.list_devices:
            print(format_devices())
            return EXIT_OK
        plan = make_plan(args)
    except (
        UsageError,
        SpecError,
        LimitError,
        LimitConfigError,
        PriceConfigError,
        PresetNotFoundError,
        DatasetUnavailableError,
        UnknownDatasetError,
        StoreError,
        DeviceNotFoundError,
        BackendUnavailableError,
    ) as error:
        return _usage_error(error)
    return execute(plan, args)


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser (options documented in `--help`)."""
    parser = _Parser(
        prog="python -m lib.bench",
        usage="python -m lib.bench [options]",
        description=(
            "Train one model spec on each chosen device and compare honest per-epoch timings. Starts from a "
            "preset, applies the spec options given, checks the server limits, loads the dataset (or generates "
            "random images and labels of the same shapes with --synthetic: real timings, chance accuracy), trains "
            "on each device in turn with the same seed, prints a table per device (epoch 1 includes compilation) "
            "and the speedup, and stores every run."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to run")
    what.add_argument("--preset", default=DEFAULT_PRESET, help=f"starting spec (default {DEFAULT_PRESET})")
    what.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    what.add_argument("--list-devices", action="store_true", help="list this machine's devices and exit")
    what.add_argument(
        "--devices",
        action="append",
        metavar="LIST",
        help="devices, comma-separated or repeated: cpu, gpu, cpu:0, gpu:1, gpu:all (data parallel over every GPU; "
        "default: all present)",
    )
    what.add_argument("--limit", type=_positive_int, metavar="N", help="training samples to use (default: all)")
    what.add_argument(
        "--test-limit", type=_non_negative_int, metavar="N", help="test samples to evaluate (0 skips; default: all)"
    )
    what.add_argument(
        "--roofline",
        action="store_true",
        help="after training, measure each device's matmul ceiling and memory bandwidth (a few seconds) and "
        "place each run under its roofs: compute-, memory- or overhead-bound",
    )
    what.add_argument(
        "--repeats",
        type=_positive_int,
        default=1,
        metavar="N",
        help="runs per device, each with the next seed: their median and spread are printed (default 1)",
    )
    what.add_argument(
        "--target-accuracy",
        type=_fraction,
        metavar="A",
        help="time to accuracy: evaluate after each epoch and stop at this test accuracy (e.g. 0.85)",
    )
    what.add_argument(
        "--synthetic",
        action="store_true",
        help="generated images of the dataset's shapes with random labels: real timings, no meaningful accuracy",
    )

    model = parser.add_argument_group("model spec (each overrides the preset)")
    for spec_field in SPEC_FIELDS:
        _add_spec_option(model, spec_field)

    out = parser.add_argument_group("output")
    out.add_argument("--json", type=pathlib.Path, metavar="PATH", help="write the results as JSON")
    out.add_argument("--csv", type=pathlib.Path, metavar="PATH", help="write the results as CSV, one row per device")
    out.add_argument("--db", type=pathlib.Path, metavar="PATH", help="run store (default $GPUX_RUNS_DB or runs/)")
    out.add_argument("--no-store", action="store_true", help="do not store the runs")
    out.add_argument("--quiet", action="store_true", help="no progress lines on standard error")
    return parser


def _add_spec_option(group: argparse._ArgumentGroup, spec_field: SpecField) -> None:
    """Adds the option(s) that set one spec field (`lib.spec.SPEC_FIELDS`), by the field's kind."""
    help_text = spec_field.help or spec_field.unit or None
    if spec_field.kind == "layers":
        group.add_argument(spec_field.cli, type=_units_list, metavar="U1,U2,...", help=help_text)
        group.add_argument("--layers", type=_positive_int, metavar="N", help="N hidden layers (of --units units)")
        group.add_argument("--units", type=_positive_int, metavar="U", help="units of every hidden layer")
    elif spec_field.kind == "choice":
        group.add_argument(spec_field.cli, choices=spec_field.choices, help=help_text)
    elif spec_field.kind == "int":
        group.add_argument(spec_field.cli, type=int, metavar="N", help=help_text)
    elif spec_field.kind == "rate":
        group.add_argument(spec_field.cli, type=float, metavar="LR", help=help_text)
    else:
        group.add_argument(spec_field.cli, action=argparse.BooleanOptionalAction, help=help_text)


def make_plan(args: argparse.Namespace) -> Plan:
    """Checks the arguments and prepares spec, store, data and devices, cheapest checks first.

    The spec, samples, devices (with the data-parallel batch split) and backend are checked by
    `lib.requests`, as the job runner checks a request from the Train page.

    Raises:
        UsageError, SpecError, LimitError, PresetNotFoundError, DatasetUnavailableError, StoreError,
        LimitConfigError, PriceConfigError, DeviceNotFoundError, BackendUnavailableError: a bad argument or an
        unusable setting.
    """
    preset = get_preset(args.preset)
    spec = spec_from_args(preset.spec, args)
    limits = load_limits()
    request = JobRequest(
        spec,
        (),
        _sample_limit(args.limit, spec.dataset, limits),
        args.test_limit,
        args.synthetic,
        target_accuracy=args.target_accuracy,
        repeats=args.repeats,
    )
    check_limits(request, limits)
    for path in (args.json, args.csv):
        _check_output_path(path)
    store = None if args.no_store else RunStore(args.db)
    dataset = _load_data(spec, args.synthetic, request.sample_limit, args.test_limit)
    devices = _resolve_devices(args.devices)
    check_request(replace(request, devices=tuple(device.name for device in devices)), limits)
    from lib.backend import backend_name, library_versions

    return Plan(
        spec=spec,
        preset=preset.name,
        changed=[name for name, value in spec.to_dict().items() if preset.spec.to_dict()[name] != value],
        devices=[device.name for device in devices],
        dataset=dataset,
        sample_limit=request.sample_limit,
        test_limit=args.test_limit,
        store=store,
        hardware=describe_hardware(devices),
        versions=library_versions(),
        backend=backend_name(),
        target_accuracy=request.target_accuracy,
        prices=load_prices(),
        repeats=request.repeats,
        roofline=args.roofline,
    )


def spec_from_args(base: ModelSpec, args: argparse.Namespace) -> ModelSpec:
    """Returns the preset's spec with the spec options that were given applied.

    Raises:
        UsageError: --hidden-units is combined with --layers or --units.
    """
    changes = {name: getattr(args, option) for option, name in SPEC_OPTIONS.items()}
    changes = {name: value for name, value in changes.items() if value is not None}
    if args.hidden_units is not None and (args.layers is not None or args.units is not None):
        raise UsageError("give either --hidden-units or --layers/--units, not both")
    if args.hidden_units is not None:
        changes["hidden_units"] = args.hidden_units
    elif args.layers is not None or args.units is not None:
        layers = args.layers if args.layers is not None else len(base.hidden_units)
        units = args.units if args.units is not None else base.hidden_units[0]
        changes["hidden_units"] = (units,) * layers
    return base.with_changes(**changes)


def execute(plan: Plan, args: argparse.Namespace) -> int:
    """Trains, stores, prints and writes the results; returns the exit status."""
    started_at = datetime.now(UTC)
    progress = None if args.quiet else ProgressPrinter(sys.stderr, generated=bool(plan.dataset.synthetic))
    if not args.quiet:
        print(format_header(plan), file=sys.stderr)
    failure = ""
    interrupted = False
    with _stop_on_ctrl_c() as stop_requested:
        try:
            runs = _train(plan, progress, stop_requested)
        except Exception as error:  # any training crash is reported and stored as a failed run
            failure = f"training raised {type(error).__name__}: {' '.join(str(error).split())}"
            runs = [_unfinished_run(device, plan, "failed", failure) for device in plan.devices]
        except KeyboardInterrupt:  # a second Ctrl-C: nothing finished is known, the runs are still recorded
            runs = [_unfinished_run(device, plan, "interrupted", "Interrupted with Ctrl-C.") for device in plan.devices]
            interrupted = True
    run_ids = _store_runs(plan, runs, started_at)
    rooflines = roofline_readings(plan, runs) if plan.roofline else [None] * len(runs)
    print(format_results(plan, runs, rooflines))
    written = _write_outputs(plan, runs, run_ids, args, rooflines)
    if failure:
        print(f"error: {failure}", file=sys.stderr)
    if interrupted or stop_requested():
        return EXIT_INTERRUPTED
    if failure or not written or any(run.status != "done" for run in runs):
        return EXIT_RUN_FAILED
    return EXIT_OK


# --- formatting ---


def format_presets() -> str:
    """Returns the presets as readable text: name, title, and what each changes."""
    blocks = []
    for preset in PRESETS.values():
        spec = preset.spec
        summary = (
            f"{spec.dataset}, hidden {list(spec.hidden_units)}, {spec.optimizer} lr {spec.learning_rate}, "
            f"batch {spec.batch_size}, {spec.epochs} epochs"
        )
        blocks.append(f"{preset.name}\n  {preset.title}: {summary}\n  {preset.description}")
    return "\n\n".join(blocks)


def format_devices() -> str:
    """Returns this machine's devices for the active Keras backend, one per line."""
    from lib.backend import backend_name
    from lib.devices import list_devices
    from lib.formatting import format_bytes

    devices = list_devices()
    lines = [f"Keras backend: {backend_name()}"]
    for device in devices:
        capability = f", compute capability {device.compute_capability}" if device.compute_capability else ""
        lines.append(f"  {device.name:<7} {device.description} ({format_bytes(device.memory_bytes)}{capability})")
    return "\n".join(lines)


def format_header(plan: Plan) -> str:
    """Returns what is about to run: spec, data, devices and machine."""
    spec = plan.spec
    changed = f" (changed: {', '.join(plan.changed)})" if plan.changed else ""
    return "\n".join(
        [
            f"preset {plan.preset}{changed}: {spec.dataset}, hidden {list(spec.hidden_units)}, "
            f"{spec.optimizer} lr {spec.learning_rate}, batch {spec.batch_size}, {spec.epochs} epochs",
            f"data: {_data_label(plan)}",
            f"devices: {', '.join(plan.devices)} (Keras backend {plan.backend})",
            f"machine: {hardware_summary(plan.hardware)}",
        ]
    )


def roofline_readings(plan: Plan, runs: Sequence[DeviceRun]) -> list[dict[str, Any] | None]:
    """Each finished run under its device's measured roofs (`lib.roofline`), as plain data; None where not.

    The ceilings and bandwidths are measured once per device, after training (a few seconds each). A device
    whose roofs cannot be measured gives its runs {"not_measured": reason}.
    """
    from lib.ceilings import CeilingError, measure_ceilings
    from lib.diagnosis import assess
    from lib.roofline import measure_bandwidth

    roofs: dict[str, tuple[list, list] | str] = {}
    readings: list[dict[str, Any] | None] = []
    for run in runs:
        if run.status != "done" or run.achieved_flops_per_s is None:
            readings.append(None)
            continue
        if run.device not in roofs:
            try:
                roofs[run.device] = (measure_ceilings(run.device), [measure_bandwidth(run.device)])
            except CeilingError as error:
                roofs[run.device] = str(error)
        measured = roofs[run.device]
        if isinstance(measured, str):
            readings.append({"not_measured": measured})
            continue
        point = assess(run, plan.spec, *measured).roofline
        readings.append(None if point is None else {**asdict(point), "explanation": point.explanation})
    return readings


def format_cost_line(run: DeviceRun, prices: DevicePrices) -> str:
    """One run's cost: "cost           0.0014 USD (0.10 USD/h, example price)"; empty without a time or price."""
    price = prices.for_device(run.device, run.replicas)
    cost = run_cost(run.total_s, price)
    if cost is None:
        return ""
    origin = {"example": "example price", "server": "this server's price"}.get(prices.source, "your price")
    return f"  cost           {format_cost(cost, prices.currency)} ({price:g} {prices.currency}/h, {origin})"


def format_roofline(reading: Mapping[str, Any] | None) -> str:
    """One run's roofline line: "memory-bound: 102 GFLOP/s, 36% of its 287 GFLOP/s roof (4.7 FLOP/byte)"."""
    if reading is None:
        return ""
    if "not_measured" in reading:
        return f"  roofline       not measured: {reading['not_measured']}"
    return (
        f"  roofline       {reading['bound']}: {reading['achieved_flops_per_s'] / 1e9:,.1f} GFLOP/s, "
        f"{reading['share_of_attainable']:.0%} of its {reading['attainable_flops_per_s'] / 1e9:,.1f} GFLOP/s roof "
        f"({reading['intensity']:.1f} FLOP/byte)"
    )


def format_results(
    plan: Plan, runs: Sequence[DeviceRun], rooflines: Sequence[Mapping[str, Any] | None] | None = None
) -> str:
    """Returns one table per device (with its roofline, when measured) and the speedup and spread lines."""
    rooflines = rooflines or [None] * len(runs)
    blocks = []
    for run, roofline in zip(runs, rooflines, strict=True):
        lines = (format_run_table(run, plan.spec), format_cost_line(run, plan.prices), format_roofline(roofline))
        blocks.append("\n".join(line for line in lines if line))
    speedup = format_speedup([run for run in runs if run.repeat <= 1])  # with repeats: the first round's
    if speedup:
        blocks.append(speedup)
    spreads = spread_frame(repeated_runs(device_runs_frame(runs)))
    blocks += [f"{row['device']}: {spread_text(row)}" for _, row in spreads.iterrows()]
    return "\n\n".join(blocks)


def device_runs_frame(runs: Sequence[DeviceRun]) -> pd.DataFrame:
    """The runs as `lib.repeats` reads stored ones: device, status, total time and result."""
    return pd.DataFrame(
        {
            "job_id": "cli",
            "device": [run.device for run in runs],
            "status": [run.status for run in runs],
            "total_s": [run.total_s for run in runs],
            "result": [run.to_dict() for run in runs],
        }
    )


def format_run_table(run: DeviceRun, spec: ModelSpec) -> str:
    """Returns one device's epoch times and summary numbers as a text table.

    A run on generated data says so in its title and shows no accuracy: its labels are random.
    """
    data = "GENERATED data (random pixels and labels, not the real dataset)" if run.synthetic else "real data"
    title = (
        f"{run.device} ({run.backend}): {spec.dataset}, {data}, {run.num_train:,} training samples, "
        f"batch {spec.batch_size}"
    )
    lines = [title, "=" * min(len(title), 100)]
    if run.status != "done":
        lines.append(f"{run.status.upper()}: {run.error}")
    if run.epoch_s:
        lines.append(f"{'epoch':>6}  {'time (s)':>9}  {'train loss':>10}" + ("" if run.synthetic else "  train acc"))
        for index, seconds in enumerate(run.epoch_s):
            mark = "*" if index == 0 else " "
            row = f"{index + 1:>5}{mark}  {seconds:>9.3f}  {_number(_at(run.train_loss, index), '.4f'):>10}"
            if not run.synthetic:
                row += f"  {_number(_at(run.train_accuracy, index), '.4f'):>9}"
            lines.append(row)
        lines.append("  * epoch 1 includes tracing and compilation")
        lines += [
            f"  steady epoch   {_number(run.steady_epoch_s, '.3f')} s ({_steady_note(len(run.epoch_s))})",
            f"  total          {_number(run.total_s, '.3f')} s",
            f"  samples/s      {_number(run.samples_per_s, ',.0f')}",
            f"  GFLOP/s        {_number(_scaled(run.achieved_flops_per_s, 1e-9), ',.2f')}",
        ]
    if run.synthetic:
        lines.append(f"  accuracy       not reported: {generated_accuracy_note(spec)}")
    elif run.test_accuracy is not None:
        lines.append(
            f"  test accuracy  {run.test_accuracy:.4f} (loss {_number(run.test_loss, '.4f')}, "
            f"{run.num_test:,} test samples)"
        )
    if run.target_accuracy is not None:
        lines.append(f"  time to {run.target_accuracy:.0%}    {target_text(run.to_dict())}")
    lines.append(f"  energy         {run_energy_text(run.to_dict())}")
    if run.energy_j is not None and run.energy_above_idle_j is not None:
        lines.append(f"                 {run.energy_above_idle_j:,.0f} J above the idle draw of {run.idle_w:.1f} W")
    return "\n".join(lines)


def generated_accuracy_note(spec: ModelSpec) -> str:
    """Says why a run on generated data has no accuracy to report."""
    chance = 1 / DATASETS[spec.dataset].num_classes
    return f"generated data has random labels, so accuracy is chance (about {chance:.0%}); the timings are real"


def format_speedup(runs: Sequence[DeviceRun]) -> str:
    """Returns how many times faster each finished device was than the first CPU (else the first device).

    Empty when fewer than two devices finished.
    """
    finished = [run for run in runs if run.status == "done" and run.steady_epoch_s and run.total_s]
    if len(finished) < 2:
        return ""
    baseline = next((run for run in finished if run.device.startswith("cpu")), finished[0])
    parts = [
        f"{run.device} {baseline.steady_epoch_s / run.steady_epoch_s:.2f}x steady epoch, "
        f"{baseline.total_s / run.total_s:.2f}x total"
        for run in finished
        if run is not baseline
    ]
    return f"speedup vs {baseline.device}: " + "; ".join(parts)


class ProgressPrinter:
    """Prints one line per finished epoch (and one when a device starts) to a stream.

    On generated data (`generated`), the lines show the loss but no accuracy: the labels are random.
    """

    def __init__(self, stream: TextIO, generated: bool = False):
        self.stream = stream
        self.generated = generated

    def __call__(self, event: ProgressEvent) -> None:
        """Prints device_start and epoch events; batch and device_done events are skipped."""
        if event.kind == "device_start":
            print(f"[{event.device}] training: {event.epochs} epochs of {event.batches:,} steps", file=self.stream)
        elif event.kind == "epoch":
            note = " (includes compilation)" if event.epoch == 1 else ""
            metrics = f"loss {_number(event.loss, '.4f')}"
            metrics += ", generated data" if self.generated else f", accuracy {_number(event.accuracy, '.4f')}"
            print(
                f"[{event.device}] epoch {event.epoch}/{event.epochs} done at {event.elapsed_s:.2f} s, {metrics}{note}",
                file=self.stream,
                flush=True,
            )


# --- output documents ---


def results_document(
    plan: Plan,
    runs: Sequence[DeviceRun],
    run_ids: Sequence[int],
    rooflines: Sequence[Mapping[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Returns the --json document (fields in the module docstring), strict JSON (NaN -> null)."""
    return json_ready(
        {
            "spec": plan.spec.to_dict(),
            "preset": plan.preset,
            "changed_from_preset": plan.changed,
            "synthetic": bool(plan.dataset.synthetic),
            **data_fields(plan.spec, bool(plan.dataset.synthetic)),
            "backend": plan.backend,
            "sample_limit": plan.sample_limit,
            "test_limit": plan.test_limit,
            "hardware": plan.hardware,
            "versions": plan.versions,
            "run_ids": list(run_ids),
            "prices": {
                "per_hour": dict(plan.prices.per_hour),
                "currency": plan.prices.currency,
                "source": plan.prices.source,
            },
            "results": [
                {**reported_run(run, plan.prices), "roofline": roofline}
                for run, roofline in zip(runs, rooflines or [None] * len(runs), strict=True)
            ],
        }
    )


def data_fields(spec: ModelSpec, synthetic: bool) -> dict[str, str | None]:
    """The `data` and `accuracy_note` fields of the JSON document and of each CSV row (a null note: real data)."""
    return {
        "data": GENERATED_DATA if synthetic else REAL_DATA,
        "accuracy_note": generated_accuracy_note(spec) if synthetic else None,
    }


def reported_run(run: DeviceRun, prices: DevicePrices) -> dict[str, Any]:
    """Returns `run.to_dict()` as the outputs report it, with its cost; for generated data, no accuracy."""
    reported = run.to_dict()
    if run.synthetic:
        reported.update(dict.fromkeys(GENERATED_ACCURACY_FIELDS))
    price = prices.for_device(run.device, run.replicas)
    reported.update(price_per_hour=price, currency=prices.currency, cost=run_cost(run.total_s, price))
    return reported


def results_csv_rows(
    plan: Plan, runs: Sequence[DeviceRun], rooflines: Sequence[Mapping[str, Any] | None] | None = None
) -> list[dict[str, Any]]:
    """Returns one flat row per device for --csv: the reported DeviceRun fields (lists as JSON) and the spec's.

    A generated-data row says so in `data` and `accuracy_note`, and leaves its accuracy cells empty.
    """
    rows = []
    for run, roofline in zip(runs, rooflines or [None] * len(runs), strict=True):
        data = data_fields(plan.spec, run.synthetic)
        row = {"preset": plan.preset, **plan.spec.to_dict(), **data, **reported_run(run, plan.prices)}
        row["roofline"] = roofline
        row["hidden_units"] = json.dumps(list(plan.spec.hidden_units))
        row["extra"] = json.dumps(plan.spec.extra)
        for name, value in row.items():  # lists per epoch, the confusion matrix, ...: JSON text in one cell
            if isinstance(value, list | dict):
                row[name] = json.dumps(json_ready(value))
        rows.append(row)
    return rows


# --- steps ---


def _usage_error(error: BaseException) -> int:
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of 1 or more")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1, e.g. 0.85")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _units_list(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give the units of each hidden layer, e.g. 3000,1000")
    try:
        return tuple(int(part.replace("_", "")) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None


def _sample_limit(limit: int | None, dataset: str, limits: ServerLimits) -> int | None:
    """The training-sample limit to use, checked against the server's GPUX_MAX_SAMPLES."""
    if limit is not None and limit > limits.samples:
        raise UsageError(
            f"--limit {limit:,} is over this server's limit of {limits.samples:,} training samples "
            f"({LIMIT_ENV_VARS['samples']}); use a smaller --limit."
        )
    if limit is None and DATASETS[dataset].num_train > limits.samples:
        return limits.samples
    return limit


def _check_output_path(path: pathlib.Path | None) -> None:
    if path is None:
        return
    folder = path.expanduser().resolve().parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: the folder {folder} does not exist; create it or choose another path")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name")


def _load_data(spec: ModelSpec, synthetic: bool, sample_limit: int | None, test_limit: int | None):
    """The real dataset, or generated data of its shapes (just as many samples as will be used)."""
    from lib.datasets import load_dataset, synthetic_dataset

    info = DATASETS[spec.dataset]
    if not synthetic:
        try:
            return load_dataset(spec.dataset)
        except DatasetUnavailableError as error:
            raise DatasetUnavailableError(f"{error} Or run with --synthetic to use generated data.") from error
    num_train = min(info.num_train, sample_limit or info.num_train)
    num_test = max(1, min(info.num_test, info.num_test if test_limit is None else test_limit))
    return synthetic_dataset(spec.dataset, num_train, num_test, seed=spec.seed)


def _resolve_devices(requested: Sequence[str] | None) -> list[Any]:
    """The DeviceInfo of each requested device, in order, without repeats; all present devices by default."""
    from lib.devices import list_devices, resolve_device
    from lib.parallel import data_parallel_info

    present = list_devices()
    if not requested:
        return present
    by_name = {device.name: device for device in present}
    names: list[str] = []
    for item in requested:
        for part in item.split(","):
            if not part.strip():
                continue
            try:
                name = resolve_device(part, list(by_name))
            except DeviceNotFoundError as error:
                raise UsageError(str(error)) from None
            if name not in names:
                names.append(name)
    if not names:
        raise UsageError("--devices is empty; give e.g. --devices cpu,gpu")
    return [by_name.get(name) or data_parallel_info(name, present) for name in names]


def _train(plan: Plan, progress: ProgressPrinter | None, stop_requested) -> list[DeviceRun]:
    """Trains each run of the plan (each device; with --repeats, each device again with the next seed)."""
    from lib import engine

    runs = []
    for point in run_points(plan.devices, (), plan.repeats):
        (run,) = engine.train_on_devices(
            point.spec(plan.spec),
            plan.dataset,
            [point.device],
            sample_limit=plan.sample_limit,
            test_limit=plan.test_limit,
            progress=progress,
            should_stop=stop_requested,
            target_accuracy=plan.target_accuracy,
        )
        run.repeat = point.repeat
        runs.append(run)
    return runs


def _unfinished_run(device: str, plan: Plan, status: str, error: str) -> DeviceRun:
    return DeviceRun(
        device=device, backend=plan.backend, synthetic=bool(plan.dataset.synthetic), status=status, error=error
    )


def _store_runs(plan: Plan, runs: Sequence[DeviceRun], started_at: datetime) -> list[int]:
    if plan.store is None:
        return []
    ids = []
    for run in runs:
        try:
            ids.append(
                plan.store.record(
                    plan.spec,
                    run,
                    preset=plan.preset,
                    started_at=started_at,
                    hardware=plan.hardware,
                    versions=plan.versions,
                )
            )
        except StoreError as error:
            print(f"error: the {run.device} run was not stored: {error}", file=sys.stderr)
    return ids


def _write_outputs(
    plan: Plan,
    runs: Sequence[DeviceRun],
    run_ids: Sequence[int],
    args: argparse.Namespace,
    rooflines: Sequence[Mapping[str, Any] | None],
) -> bool:
    """Writes --json and --csv; False (after an error line) when one cannot be written."""
    try:
        if args.json is not None:
            text = json.dumps(results_document(plan, runs, run_ids, rooflines), indent=2)
            args.json.expanduser().write_text(text + "\n", encoding="utf-8")
        if args.csv is not None:
            pd.DataFrame(results_csv_rows(plan, runs, rooflines)).to_csv(args.csv.expanduser(), index=False)
    except OSError as error:
        print(f"error: cannot write the results: {error}", file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[Any]:
    """Turns the first Ctrl-C into a polite stop (finished epochs are kept); a second one interrupts at once."""
    requested = False

    def stop_requested() -> bool:
        return requested

    def on_interrupt(signum, frame):
        nonlocal requested
        requested = True
        signal.signal(signal.SIGINT, previous)
        print("\nstopping after this training step (Ctrl-C again to abort)...", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread: no signal handling, no stop requests
        yield stop_requested
        return
    try:
        yield stop_requested
    finally:
        signal.signal(signal.SIGINT, previous)


def _data_label(plan: Plan) -> str:
    dataset = plan.dataset
    generated = "GENERATED images (random pixels and labels, not the real dataset): timings real, accuracy not reported"
    kind = generated if dataset.synthetic else dataset.source
    limit = f", first {plan.sample_limit:,} training samples" if plan.sample_limit else ""
    return f"{dataset.info.title}, {kind}{limit}"


def _steady_note(epochs: int) -> str:
    if epochs == 1:
        return "only one epoch: includes compilation"
    if epochs == 2:
        return "epoch 2"
    return f"median of epochs 2..{epochs}"


def _at(values: Sequence[float], index: int) -> float | None:
    return values[index] if index < len(values) else None


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of the benchmark
        sys.stdout = None
        sys.exit(EXIT_OK)
