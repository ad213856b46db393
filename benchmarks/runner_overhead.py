"""What the job runner costs per job, and how long a user waits behind N queued jobs.

Every job runs in a fresh worker process, so each one pays for a process start, the Keras and backend
imports and the data load before its first epoch, and for building the model and evaluating it after.
This script times those parts for tiny real training jobs through `lib.runner.JobRunner`:

    spawn       from the runner starting the worker to the worker's first line of Python
    imports     Keras, its backend and lib.engine inside the worker
    data        loading the dataset (or generating it) and converting it for training
    build+eval  building and compiling the model before epoch 1, and evaluating it after the last
    training    the sum of the epoch times (what the app reports as "total")
    finish      the rest of the job's wall time: process exit, reading the last events, store write

Then it submits N + 1 jobs at once and reports how long the last one waited before it started, next
to the runner's estimate at submission. A "floor" row runs workers that skip Keras (the tests' worker,
tests/helpers/fake_worker.py, with its "fake" hook) to show the runner's own cost per job.

Run from the repository root:

    .venv/bin/python benchmarks/runner_overhead.py
    .venv/bin/python benchmarks/runner_overhead.py --backends jax,torch --device gpu:0

Results go to a temporary database unless --db is given.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lib.hardware import describe_hardware, hardware_summary  # noqa: E402
from lib.jobs import JobSnapshot, JobState  # noqa: E402
from lib.limits import ServerLimits  # noqa: E402
from lib.runner import JobRunner  # noqa: E402
from lib.spec import ModelSpec  # noqa: E402
from lib.store import RunStore  # noqa: E402
from tests.helpers.fake_worker import FAKE_WORKER_COMMAND, HOOK_KEY  # noqa: E402

PARTS = ("spawn", "imports", "data", "build+eval", "training", "finish")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax", help="comma-separated Keras backends")
    parser.add_argument("--device", default="cpu:0", help="device every job trains on")
    parser.add_argument("--jobs", type=int, default=3, help="jobs timed per backend (one after the other)")
    parser.add_argument("--queue-depth", type=int, default=3, help="N: jobs queued ahead of the measured one")
    parser.add_argument("--floor-jobs", type=int, default=10, help="jobs without Keras for the runner's own cost")
    parser.add_argument("--samples", type=int, default=2048, help="training samples per job")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per job")
    parser.add_argument("--hidden", type=int, default=64, help="units of the one hidden layer")
    parser.add_argument("--synthetic", action="store_true", help="generated data instead of real Fashion-MNIST")
    parser.add_argument("--db", help="run database (default: a temporary file)")
    return parser.parse_args()


def job_parts(job: JobSnapshot) -> dict[str, float]:
    """Splits one finished job's wall time into the parts of the module docstring, in seconds."""
    wall = job.finished_at - job.started_at
    spawn = job.worker["started"]["wall_time"] - job.started_at
    imports = job.worker["ready"]["import_s"]
    data = job.worker["ready"]["data_s"]
    training = sum(run.total_s or 0.0 for run in job.results)
    on_devices = sum(event.elapsed_s for event in job.progress.values())  # device_start to device_done
    return {
        "spawn": spawn,
        "imports": imports,
        "data": data,
        "build+eval": on_devices - training,
        "training": training,
        "finish": wall - spawn - imports - data - on_devices,
        "wall": wall,
        "overhead": wall - training,
    }


def run_jobs(runner: JobRunner, spec: ModelSpec, args: argparse.Namespace, backend: str, count: int) -> list[dict]:
    """Runs `count` jobs one after the other and returns the parts of each."""
    parts = []
    for index in range(count):
        job = runner.submit(
            f"bench-{backend}-{index}",
            spec,
            [args.device],
            sample_limit=args.samples,
            test_limit=1000,
            synthetic=args.synthetic,
            backend=backend,
        )
        final = runner.wait(job.id)
        if final.state != JobState.DONE:
            raise SystemExit(f"Job on {backend} ended {final.state.value}: {final.error}")
        parts.append(job_parts(final))
    return parts


def queue_wait(runner: JobRunner, spec: ModelSpec, args: argparse.Namespace, backend: str) -> dict[str, float]:
    """Submits N + 1 jobs at once; returns the last one's real and estimated wait, and the mean job time."""
    # A seed per job: identical requests would join one job (the runner coalesces them).
    jobs = [
        runner.submit(
            f"queue-{index}",
            spec.with_changes(seed=index),
            [args.device],
            sample_limit=args.samples,
            synthetic=args.synthetic,
            backend=backend,
        )
        for index in range(args.queue_depth + 1)
    ]
    finals = [runner.wait(job.id) for job in jobs]
    last = finals[-1]
    return {
        "waited": last.started_at - last.submitted_at,
        "estimated": jobs[-1].estimated_start_s,
        "mean_job": statistics.mean(job.finished_at - job.started_at for job in finals[:-1]),
    }


def floor_parts(store: RunStore, count: int) -> list[dict]:
    """Runs workers that skip Keras (one 0-second epoch each): the runner's own per-job cost."""
    runner = JobRunner(store, ServerLimits(), worker_command=FAKE_WORKER_COMMAND)
    spec = ModelSpec(hidden_units=(8,), epochs=1, extra={HOOK_KEY: {"fake": True, "epoch_s": 0.0}})
    try:
        parts = []
        for index in range(count):
            job = runner.submit(f"floor-{index}", spec, ["cpu:0"], sample_limit=100, synthetic=True)
            parts.append(job_parts(runner.wait(job.id)))
        return parts
    finally:
        runner.shutdown()


def median_row(label: str, parts: list[dict]) -> str:
    cells = [f"{statistics.median(p[name] for p in parts):.2f}" for name in (*PARTS, "wall", "overhead")]
    return f"| {label} | {len(parts)} | " + " | ".join(cells) + " |"


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    db = args.db or os.path.join(tempfile.mkdtemp(prefix="runner-bench-"), "runs.sqlite")
    store = RunStore(db)
    spec = ModelSpec(hidden_units=(args.hidden,), epochs=args.epochs, batch_size=32)
    data = "synthetic" if args.synthetic else "real Fashion-MNIST"
    print(f"Hardware: {hardware_summary(describe_hardware())}; load average {os.getloadavg()[0]:.1f}")
    print(f"Jobs: Dense({args.hidden}) MLP, {args.samples} {data} samples, {args.epochs} epochs, on {args.device}\n")
    print("Median seconds per job (wall = runner start to result stored; overhead = wall - training)\n")
    print("| worker | jobs | spawn | imports | data | build+eval | training | finish | wall | overhead |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(median_row("no Keras (runner floor)", floor_parts(store, args.floor_jobs)))
    runner = JobRunner(store, ServerLimits(queue=max(30, args.queue_depth + 2)))
    waits = {}
    try:
        for backend in args.backends.split(","):
            print(median_row(backend, run_jobs(runner, spec, args, backend, args.jobs)), flush=True)
        for backend in args.backends.split(","):
            started = time.perf_counter()
            waits[backend] = queue_wait(runner, spec, args, backend)
            waits[backend]["total"] = time.perf_counter() - started
    finally:
        runner.shutdown()
    print(f"\nWait of a job submitted behind N = {args.queue_depth} jobs (all submitted at once)\n")
    print("| worker | N | waited s | estimated at submit s | mean job s | waited / N |")
    print("|---|---|---|---|---|---|")
    for backend, wait in waits.items():
        print(
            f"| {backend} | {args.queue_depth} | {wait['waited']:.1f} | {wait['estimated']:.1f} | "
            f"{wait['mean_job']:.1f} | {wait['waited'] / args.queue_depth:.1f} |"
        )
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
