"""Data-parallel scaling: the tuned CIFAR-10 MLP on one GPU and on all GPUs, in one run.

Both runs go through the app's engine (`lib.engine.train_on_devices`) with the same spec, data and seed:
first on "gpu:0", then on "gpu:all" (`lib.parallel`: `keras.distribution.DataParallel` on JAX,
`tf.distribute.MirroredStrategy` on TensorFlow), where each global batch is split evenly between the GPUs.
Steady epoch = the median of epochs 2..n (epoch 1 includes compilation). Speedup = one-GPU steady epoch /
all-GPU steady epoch; scaling efficiency = speedup / number of GPUs (1.0 is perfect).

The input floor (on by default) trains a 16-unit model on the same data and devices: its epoch is almost
all host-side input work (Keras gathers each shuffled batch in host memory and copies it to the devices),
which more GPUs do not make faster. An epoch close to its floor is input-bound.

The device-resident rows (on by default, JAX only) train the same spec on the same data with `lib.device_resident`:
the data sits on the devices, split into one block per GPU, each GPU shuffles its own block, and a whole
epoch is one compiled call (`fit_device_resident(devices=...)`: replicated weights, gradients averaged
with `pmean`). Their speedup is against the device-resident loop on one GPU. The model.fit rows always use
`model.fit` (device_resident off), so the two loops are compared on the same model and data.

Target: at least 1.8x on 2 GPUs.

Run (GPU machine, JAX backend; no dataset there, so --synthetic makes CIFAR-10-shaped data):
    KERAS_BACKEND=jax python3 benchmarks/scaling.py --synthetic --json scaling.json
The same code path on CPU, with JAX showing two host devices (numbers mean nothing about GPUs):
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python3 benchmarks/scaling.py --kind cpu --synthetic --limit 2048 --test-limit 256 --epochs 2

`--through-runner` also trains the spec as the app does: one job on both devices through the shared-server
job runner (`lib.runner.JobRunner`: a worker process, runs written to a run store), then prints the
Results page's scaling table (`lib.parallel.scaling_frame`) read back from that store.

`--hidden-units 8192,8192,8192` (say) gives each step more device work per copied byte, to see how the
same engine scales when the GPUs, not the input, set the pace.

Exit status: 0 when every run finished, 1 when one failed, 2 for bad arguments or fewer than two devices.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import tempfile
from datetime import UTC, datetime
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lib.backend import backend_name, library_versions, take_gpu_memory_on_demand  # noqa: E402
from lib.bench import ProgressPrinter  # noqa: E402
from lib.datasets import DATASETS, DatasetUnavailableError, load_dataset, synthetic_dataset  # noqa: E402
from lib.device_resident import supported  # noqa: E402
from lib.device_run import DeviceRun  # noqa: E402
from lib.devices import DeviceNotFoundError, list_devices  # noqa: E402
from lib.engine import train_on_devices  # noqa: E402
from lib.hardware import describe_hardware, hardware_summary  # noqa: E402
from lib.jobs import JobState  # noqa: E402
from lib.limits import ServerLimits  # noqa: E402
from lib.parallel import (  # noqa: E402
    BatchSplitError,
    data_parallel_info,
    per_replica_batch,
    replica_devices,
    scaling_frame,
)
from lib.presets import PresetNotFoundError, get_preset  # noqa: E402
from lib.runner import JobRunner  # noqa: E402
from lib.store import RunStore, json_ready  # noqa: E402

DEFAULT_PRESET = "cifar10-tuned"
DEFAULT_EPOCHS = 5  # steady epoch = median of epochs 2..5
FLOOR_UNITS = (16,)  # hidden layer of the input-floor model: next to no device work per step
TARGET_SPEEDUP_2_GPUS = 1.8
INPUT_BOUND_SHARE = 0.7  # an epoch this close to its input floor (floor / epoch) is input-bound


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.through_runner:
        # The worker needs GPU memory beside this process, as beside the app's server: neither reserves it all.
        take_gpu_memory_on_demand()
    try:
        # The engine rows are the model.fit rows; the device-resident loop has rows of its own below.
        spec = get_preset(args.preset).spec.with_changes(epochs=args.epochs, device_resident=False)
        if args.hidden_units:
            spec = spec.with_changes(hidden_units=args.hidden_units)
        if args.batch_size:
            spec = spec.with_changes(batch_size=args.batch_size)
        replicas = replica_devices(f"{args.kind}:all")
        per_replica_batch(spec.batch_size, len(replicas))
        dataset = _load(spec.dataset, args.synthetic, args.limit, args.test_limit, spec.seed)
    except (PresetNotFoundError, DeviceNotFoundError, BatchSplitError, DatasetUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    devices = [f"{args.kind}:0", f"{args.kind}:all"]
    present = list_devices()
    hardware = describe_hardware(present)
    progress = None if args.quiet else ProgressPrinter(sys.stderr)
    print(f"machine: {hardware_summary(hardware)}; backend {backend_name()}; replicas {', '.join(replicas)}")
    started_at = datetime.now(UTC)
    runs = train_on_devices(
        spec, dataset, devices, sample_limit=args.limit, test_limit=args.test_limit, progress=progress
    )
    floor_runs = []
    if args.input_floor:
        floor_spec = spec.with_changes(hidden_units=FLOOR_UNITS)
        floor_runs = train_on_devices(floor_spec, dataset, devices, sample_limit=args.limit, test_limit=0)
    rows = scaling_rows(runs, floor_runs, spec.batch_size)
    print(format_table(rows, spec, runs, dataset.synthetic))
    print(verdict(rows))
    resident_runs, resident_rows = [], []
    if args.device_resident and supported():
        # The engine's device-resident path: built on the first replica, weights replicated by lib.device_resident.
        resident_runs = train_on_devices(
            spec.with_changes(device_resident=True),
            dataset,
            devices,
            sample_limit=args.limit,
            test_limit=args.test_limit,
        )
        resident_rows = scaling_rows(resident_runs, [], spec.batch_size)
        print(
            "input on the device (lib.device_resident, one compiled call per epoch; speedup vs its own 1-device run):"
        )
        print(format_table(resident_rows, spec, resident_runs, dataset.synthetic))
        print(verdict(resident_rows))
    runner_table, runner_error = None, ""
    if args.through_runner:
        runner_table, runner_error = through_runner(spec, args, devices)
        print("through the app's job runner (one job, worker process, run store; the Results page's scaling table):")
        print(runner_error or runner_table.to_string(index=False))
    if args.db is not None:
        store = RunStore(args.db)
        for run in runs:
            store.record(spec, run, preset=args.preset, started_at=started_at, hardware=hardware)
    if args.json is not None:
        document = {
            "benchmark": "data-parallel scaling",
            "preset": args.preset,
            "spec": spec.to_dict(),
            "backend": backend_name(),
            "synthetic": bool(dataset.synthetic),
            "devices": devices,
            "replica_devices": replicas,
            "device_info": dataclasses.asdict(data_parallel_info(devices[1], present)),
            "hardware": hardware,
            "versions": library_versions(),
            "target_speedup_2_gpus": TARGET_SPEEDUP_2_GPUS,
            "rows": rows,
            "runs": [run.to_dict() for run in runs],
            "input_floor_runs": [run.to_dict() for run in floor_runs],
            "device_resident_rows": resident_rows,
            "device_resident_runs": [run.to_dict() for run in resident_runs],
            "through_runner": None if runner_table is None else runner_table.to_dict(orient="records"),
            "through_runner_error": runner_error,
        }
        args.json.write_text(json.dumps(json_ready(document), indent=2) + "\n", encoding="utf-8")
    finished = all(run.status == "done" for run in [*runs, *floor_runs, *resident_runs])
    return 0 if finished and not runner_error else 1


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser."""
    parser = argparse.ArgumentParser(
        description="Train the tuned CIFAR-10 MLP on one device and data parallel on all devices of a kind; "
        "print steady epoch times, speedup and scaling efficiency."
    )
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"model spec (default {DEFAULT_PRESET})")
    parser.add_argument("--kind", choices=("gpu", "cpu"), default="gpu", help="device kind to scale over")
    parser.add_argument(
        "--hidden-units",
        type=_units,
        metavar="U1,U2",
        help="override the preset's hidden layers (more work per sample)",
    )
    parser.add_argument("--batch-size", type=_positive, help="override the preset's global batch size")
    parser.add_argument("--synthetic", action="store_true", help="generated data of the dataset's shapes")
    parser.add_argument("--limit", type=int, help="training samples (default: the whole training split)")
    parser.add_argument("--test-limit", type=int, default=None, help="test samples (default: all; 0 skips)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})")
    parser.add_argument(
        "--input-floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also time a {FLOOR_UNITS[0]}-unit model on the same data and devices (default on)",
    )
    parser.add_argument(
        "--device-resident",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train with the data on the devices (lib.device_resident, JAX only) on one and all (default on)",
    )
    parser.add_argument(
        "--through-runner",
        action="store_true",
        help="also train one job on both devices through the app's job runner and print the Results scaling table",
    )
    parser.add_argument("--json", type=pathlib.Path, help="write the rows and full runs as JSON")
    parser.add_argument("--db", type=pathlib.Path, help="also record the runs in this run store (SQLite)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress on standard error")
    return parser


def through_runner(spec, args: argparse.Namespace, devices: list[str]) -> tuple[Any, str]:
    """Trains the spec on one device and data parallel as one app job; returns (scaling table, error text).

    The job goes through `lib.runner.JobRunner` (a worker process with the server's Keras backend), which
    writes the runs to a run store of its own (a temporary file, so no other runs mix in); the table is
    `lib.parallel.scaling_frame` of that store, the data of the Results page's scaling chart.
    """
    store = RunStore(pathlib.Path(tempfile.mkdtemp(prefix="scaling-runner-")) / "runs.sqlite")
    runner = JobRunner(store, ServerLimits(), available_devices=devices)
    try:
        job = runner.submit(
            "scaling-benchmark",
            spec,
            devices,
            sample_limit=args.limit,
            test_limit=args.test_limit,
            synthetic=args.synthetic,
            preset=args.preset,
        )
        final = runner.wait(job.id)
    finally:
        runner.shutdown()
    if final.state != JobState.DONE:
        return None, f"the job ended {final.state.value}: {final.error}"
    return scaling_frame(store.runs(), kind=args.kind), ""


def scaling_rows(runs: list[DeviceRun], floor_runs: list[DeviceRun], global_batch: int) -> list[dict[str, Any]]:
    """One row per run: replicas, per-replica batch, steady epoch, speedup and efficiency against the first run.

    Args:
        runs: The one-device run first, then the data-parallel run.
        floor_runs: The input-floor runs on the same devices (may be empty).
        global_batch: The spec's batch size.
    """
    baseline = runs[0].steady_epoch_s if runs and runs[0].status == "done" else None
    floors = {run.device: run.steady_epoch_s for run in floor_runs if run.status == "done"}
    rows = []
    for run in runs:
        epoch = run.steady_epoch_s if run.status == "done" else None
        speedup = baseline / epoch if baseline and epoch else None
        rows.append(
            {
                "device": run.device,
                "replicas": run.replicas,
                "per_replica_batch": global_batch // run.replicas,
                "status": run.status,
                "error": run.error,
                "first_epoch_s": run.first_epoch_s,
                "steady_epoch_s": epoch,
                "samples_per_s": run.samples_per_s,
                "speedup": speedup,
                "efficiency": speedup / run.replicas if speedup else None,
                "input_floor_s": floors.get(run.device),
                "test_accuracy": run.test_accuracy,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], spec, runs: list[DeviceRun], synthetic: bool) -> str:
    """Returns the rows as a text table with a title line."""
    data = "SYNTHETIC CIFAR-10-shaped data" if synthetic else "real data"
    num_train = runs[0].num_train if runs else 0
    lines = [
        f"{spec.dataset} {list(spec.hidden_units)}, global batch {spec.batch_size}, {num_train:,} samples/epoch, "
        f"{data}; steady epoch = median of epochs 2..{spec.epochs}",
        f"{'device':<8} {'replicas':>8} {'batch/replica':>13} {'epoch 1 (s)':>11} {'steady (s)':>10} "
        f"{'samples/s':>10} {'speedup':>7} {'efficiency':>10} {'input floor (s)':>15} {'test acc':>8}",
    ]
    for row in rows:
        lines.append(
            f"{row['device']:<8} {row['replicas']:>8} {row['per_replica_batch']:>13,} "
            f"{_fmt(row['first_epoch_s'], '.3f'):>11} {_fmt(row['steady_epoch_s'], '.3f'):>10} "
            f"{_fmt(row['samples_per_s'], ',.0f'):>10} {_fmt(row['speedup'], '.2f', 'x'):>7} "
            f"{_fmt(row['efficiency'], '.0%'):>10} {_fmt(row['input_floor_s'], '.3f'):>15} "
            f"{_fmt(row['test_accuracy'], '.4f'):>8}"
        )
        if row["status"] != "done":
            lines.append(f"  {row['status'].upper()}: {row['error']}")
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> str:
    """Says whether the 2-GPU target is met and whether the epoch is bound by input feeding."""
    parallel = rows[-1] if len(rows) > 1 else None
    if parallel is None or parallel["speedup"] is None:
        return "no speedup: a run did not finish"
    parts = [f"speedup {parallel['speedup']:.2f}x on {parallel['replicas']} devices"]
    parts.append(f"efficiency {parallel['efficiency']:.0%}")
    if parallel["replicas"] == 2:
        met = "met" if parallel["speedup"] >= TARGET_SPEEDUP_2_GPUS else "NOT met"
        parts.append(f"target >= {TARGET_SPEEDUP_2_GPUS}x on 2 GPUs {met}")
    for row in rows:
        if row["input_floor_s"] and row["steady_epoch_s"]:
            share = row["input_floor_s"] / row["steady_epoch_s"]
            bound = " (input-bound)" if share >= INPUT_BOUND_SHARE else ""
            parts.append(f"{row['device']} input floor = {share:.0%} of its epoch{bound}")
    return "; ".join(parts)


def _load(name: str, synthetic: bool, limit: int | None, test_limit: int | None, seed: int):
    """The real dataset, or generated data of its shapes (just as many samples as will be used)."""
    info = DATASETS[name]
    if not synthetic:
        return load_dataset(name)
    num_train = min(info.num_train, limit or info.num_train)
    num_test = max(1, min(info.num_test, info.num_test if test_limit is None else test_limit))
    return synthetic_dataset(name, num_train, num_test, seed=seed)


def _units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError("every hidden layer needs at least 1 unit")
    return units


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{format(value, spec)}{suffix}"


if __name__ == "__main__":
    sys.exit(main())
