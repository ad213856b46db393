"""Do the time estimates fit? Each preset trains once on a fresh run store; the estimator then predicts a
second run of another size, which trains too, and measured / estimated is printed per preset.

Steps, on one device (--device, default cpu:0) and the active Keras backend:
1. every preset (--presets, default the four of `lib.presets`) trains --first-samples samples for
   --first-epochs epochs through the CLI (`python -m lib.bench`, one process per run, as the server runs
   each job in a worker process of its own: each run pays the backend's start-up and compiling, as a job
   does), which stores it in a fresh temporary run store (the estimate made before that run, with the runs
   stored so far, is printed too);
2. with all first runs stored, `lib.estimates.estimate_job` (the estimator of the Build page, the Train page
   and the job queue) predicts each preset's second run: --second-samples samples, --second-epochs epochs;
3. the second runs train, and the measured training time (all epochs, compiling included) is compared with
   the estimate: its middle, its range and the ratio measured / estimated.
The training time is the epochs' sum, so the job overhead (imports, data) is on neither side.
Fashion-MNIST is the real dataset (a local copy, e.g. /usr/share/datasets/fashion-mnist); CIFAR-10 is
generated images of the same shape unless --real-cifar10; --synthetic generates both (the timings do not
depend on the pixels). The Keras dataset cache goes to a temporary folder.

Exit status: 0 when every ratio is within --tolerance (default 1.5) either way, 1 when one is not.

Run:
    nice -n 5 python benchmarks/estimate_fit.py
    KERAS_BACKEND=jax python benchmarks/estimate_fit.py --presets fashion-seed,fashion-tuned --json out/fit.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="estimate-fit-keras-"))  # never the user's cache

from benchmarks.perf_report import csv_list, log, print_table, run_record, write_json  # noqa: E402
from lib.backend import backend_name  # noqa: E402
from lib.device_run import DeviceRun  # noqa: E402
from lib.estimates import JobEstimate, estimate_job  # noqa: E402
from lib.presets import PRESETS, get_preset  # noqa: E402
from lib.store import RunStore  # noqa: E402

TEST_SAMPLES = 500  # test images evaluated per run (evaluation is outside the timed epochs)
COLUMNS = (
    ("preset", "preset", ""),
    ("first", "first run", ""),
    ("first_measured_s", "measured (s)", ".2f"),
    ("first_guess", "estimated before it", ""),
    ("second", "second run", ""),
    ("estimate", "estimated", ""),
    ("estimated_s", "middle (s)", ".2f"),
    ("measured_s", "measured (s)", ".2f"),
    ("ratio", "measured / estimated", ".2f"),
    ("in_range", "in the range", ""),
)


@dataclass(frozen=True)
class Plan:
    """One run of a preset: how many samples are asked for, for how many epochs."""

    samples: int  # training samples asked for
    epochs: int  # epochs trained


def main(argv: list[str] | None = None) -> int:
    """Runs the comparison; returns the exit status (see the module docstring)."""
    args = parse_args(argv)
    first, second = Plan(args.first_samples, args.first_epochs), Plan(args.second_samples, args.second_epochs)
    backend = backend_name()
    with tempfile.TemporaryDirectory(prefix="estimate-fit-") as folder:
        store = RunStore(pathlib.Path(folder) / "runs.sqlite")
        rows = [first_run(name, first, store, args) for name in args.presets]
        # Every first run is stored before any second run is estimated, as on a server after one run of each.
        estimates = [predict(name, second, store, args.device, backend) for name in args.presets]
        for row, estimate in zip(rows, estimates, strict=True):
            row.update(second_run(row["preset"], second, estimate, store, args))
    print_table(rows, COLUMNS)
    worst = max(max(row["ratio"], 1 / row["ratio"]) for row in rows)
    log(f"{backend} on {args.device}: the worst ratio is {worst:.2f}x (tolerance {args.tolerance}x)")
    write_json(args.json, {**run_record("estimate_fit"), "args": _plain(vars(args)), "rows": rows})
    return 0 if worst <= args.tolerance else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", type=csv_list, default=list(PRESETS), help="comma list (default: all)")
    parser.add_argument("--device", default="cpu:0", help="device to train on (default cpu:0)")
    parser.add_argument("--first-samples", type=int, default=3000, help="samples of the first run (3000)")
    parser.add_argument("--first-epochs", type=int, default=2, help="epochs of the first run (2)")
    parser.add_argument("--second-samples", type=int, default=6000, help="samples of the second run (6000)")
    parser.add_argument("--second-epochs", type=int, default=3, help="epochs of the second run (3)")
    parser.add_argument("--tolerance", type=float, default=1.5, help="largest ratio either way that passes (1.5)")
    parser.add_argument("--real-cifar10", action="store_true", help="the real CIFAR-10 instead of generated images")
    parser.add_argument("--synthetic", action="store_true", help="generated images for Fashion-MNIST too")
    parser.add_argument("--json", type=pathlib.Path, help="write the rows and the run's record here")
    args = parser.parse_args(argv)
    for name in args.presets:
        get_preset(name)  # an unknown name fails here, with the known ones listed
    return args


def first_run(name: str, plan: Plan, store: RunStore, args: argparse.Namespace) -> dict[str, Any]:
    """Trains the preset's first run, after saying what the estimator expected with the runs stored so far."""
    before = predict(name, plan, store, args.device, backend_name())
    run = train(name, plan, store, args)
    return {
        "preset": name,
        "first": f"{run.num_train:,} x {plan.epochs}",
        "first_measured_s": run.total_s,
        "first_guess": before.text,
        "first_estimated_s": before.training_s,
    }


def predict(name: str, plan: Plan, store: RunStore, device: str, backend: str) -> JobEstimate:
    """The estimator's answer for a run of the preset, from the stored runs (no job overhead)."""
    spec = get_preset(name).spec.with_changes(epochs=plan.epochs)
    return estimate_job(spec, plan.samples, [device], store.runs(status="done"), overhead_s=0.0, backend=backend)


def second_run(
    name: str, plan: Plan, estimate: JobEstimate, store: RunStore, args: argparse.Namespace
) -> dict[str, Any]:
    """Trains the preset's second run and compares it with the estimate made before it."""
    run = train(name, plan, store, args)
    return {
        "second": f"{run.num_train:,} x {plan.epochs}",
        "estimate": estimate.text,
        "estimated_s": estimate.training_s,
        "estimated_low_s": estimate.low_s,
        "estimated_high_s": estimate.high_s,
        "measured_s": run.total_s,
        "ratio": run.total_s / estimate.training_s,
        "in_range": "yes" if estimate.low_s <= run.total_s <= estimate.high_s else "no",
        "samples_note": estimate.samples_note,
    }


def train(name: str, plan: Plan, store: RunStore, args: argparse.Namespace) -> DeviceRun:
    """One run of the preset through the CLI, in a process of its own, stored in `store` by the CLI."""
    dataset = get_preset(name).spec.dataset
    synthetic = args.synthetic or (dataset == "cifar10" and not args.real_cifar10)
    log(f"{name}: {plan.samples:,} samples asked, {plan.epochs} epochs on {args.device}")
    with tempfile.TemporaryDirectory(prefix="estimate-fit-run-") as folder:
        result = pathlib.Path(folder) / "run.json"
        command = [
            sys.executable, "-m", "lib.bench", "--preset", name, "--devices", args.device,
            "--epochs", str(plan.epochs), "--limit", str(plan.samples), "--test-limit", str(TEST_SAMPLES),
            "--db", str(store.path), "--json", str(result), "--quiet", *(["--synthetic"] if synthetic else []),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"error: {name} did not train (exit {done.returncode}): {done.stderr[-2000:]}")
        run = DeviceRun.from_dict(json.loads(result.read_text())["results"][0])
    log(f"{name}: {run.num_train:,} trained, epochs {', '.join(f'{s:.2f}' for s in run.epoch_s)} s")
    return run


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, pathlib.Path) else value for key, value in values.items()}


if __name__ == "__main__":
    sys.exit(main())
