"""What a worker's lower CPU priority and a warm spare importing beside it cost an idle server's epochs.

Workers train `lib.worker.WORKER_NICE` nice levels below the server (so pages stay responsive while a job
takes every core). A warm spare imports Keras at idle priority (`lib.worker_pool`); the runner starts one only
once no job trains, and the third condition below shows why. This script trains the
same real job through `python -m lib.worker` (started by `WorkerPool`) under three conditions, alternating,
and reports each one's median steady-epoch time (median of epochs 2..) and its ratio to the first:

    nice 0          the worker at the server's priority, no spare (the app before workers were niced)
    nice N          the worker at WORKER_NICE (or --nice), no spare
    nice N + spare  the job taken from a warm spare, with the next spare importing while it trains

For the last it also reports when that next spare was warm, counted from the job's click. One burn-in
round of all three runs first and is not counted.

Run from the repository root (on an otherwise idle machine, for the numbers to mean anything):

    .venv/bin/python benchmarks/worker_priority.py                       # real Fashion-MNIST, the server's backend
    .venv/bin/python benchmarks/worker_priority.py --synthetic --backend jax --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness import avx512_lines  # noqa: E402
from lib.backend import backend_name, library_versions  # noqa: E402
from lib.device_run import DeviceRun  # noqa: E402
from lib.hardware import describe_hardware, hardware_summary  # noqa: E402
from lib.jobs import JobRequest  # noqa: E402
from lib.spec import ModelSpec  # noqa: E402
from lib.worker import WORKER_NICE  # noqa: E402
from lib.worker_pool import DEFAULT_WORKER_COMMAND, WorkerPool, WorkerProcess  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=backend_name(), help="Keras backend (default: the server's)")
    parser.add_argument("--device", default="cpu:0", help="device the job trains on")
    parser.add_argument("--nice", type=int, default=WORKER_NICE, help="the lowered priority's nice value")
    parser.add_argument("--repeats", type=int, default=3, help="jobs per condition")
    parser.add_argument("--samples", type=int, default=12800, help="training samples per epoch")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per job (steady = median of epochs 2..)")
    parser.add_argument("--hidden", type=int, default=128, help="units of the one hidden layer")
    parser.add_argument("--synthetic", action="store_true", help="generated data instead of real Fashion-MNIST")
    parser.add_argument("--json", help="also write every run to this JSON file")
    return parser.parse_args()


def read_events(worker: WorkerProcess, until: str | None = None) -> list[dict]:
    """Reads events until one of type `until` (included), or all of them when None."""
    events = []
    for line in worker.popen.stdout:
        events.append(json.loads(line))
        if events[-1]["type"] == "error":
            raise SystemExit(f"The job failed: {events[-1]['message']}")
        if events[-1]["type"] == until:
            break
    return events


def run_job(worker: WorkerProcess, request: JobRequest) -> tuple[DeviceRun, dict]:
    """Runs one job to the end and returns its device run and its "ready" event."""
    worker.popen.stdin.write(json.dumps(request.to_worker_dict()))
    worker.popen.stdin.close()
    events = read_events(worker)
    worker.popen.wait()
    worker.stderr.close()
    ready = next(event for event in events if event["type"] == "ready")
    run = DeviceRun.from_dict(next(event for event in events if event["type"] == "result")["run"])
    if run.status != "done":
        raise SystemExit(f"The job ended {run.status}: {run.error}")
    return run, ready


def cold_job(pool: WorkerPool, request: JobRequest, extra_env: dict[str, str]) -> dict:
    run, ready = run_job(pool.launch(request.backend, extra_env), request)
    return {"steady_epoch_s": run.steady_epoch_s, "epoch_s": run.epoch_s, "nice": ready["nice"]}


def spare_job(pool: WorkerPool, request: JobRequest, extra_env: dict[str, str]) -> dict:
    """Runs the job in a warm spare while the next spare imports beside it (what the runner avoids doing)."""
    pool.start_spare(request.backend, extra_env)  # only the first time: later, the last run started it
    worker = pool.launch(request.backend, extra_env)
    warm = read_events(worker, until="warm")[-1]
    pool.start_spare(request.backend, extra_env)  # the next spare, importing while this job trains
    clicked = time.time()
    run, ready = run_job(worker, request)
    return {
        "steady_epoch_s": run.steady_epoch_s,
        "epoch_s": run.epoch_s,
        "nice": ready["nice"],
        "idle_threads": ready["idle_threads"],
        "clicked": clicked,
        "job_s": time.time() - clicked,
        "own_warm_wall_time": warm["wall_time"],  # this spare was the next spare of the previous run
    }


def next_spare_warm_after_s(spare_runs: list[dict]) -> list[float]:
    """For each spare run but the last: when the spare started beside it was warm, from its click."""
    pairs = zip(spare_runs[:-1], spare_runs[1:], strict=True)
    return [later["own_warm_wall_time"] - run["clicked"] for run, later in pairs]


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = ModelSpec(hidden_units=(args.hidden,), epochs=args.epochs, batch_size=32)
    request = JobRequest(
        spec=spec,
        devices=(args.device,),
        sample_limit=args.samples,
        test_limit=1000,
        synthetic=args.synthetic,
        backend=args.backend,
    )
    extra_env = {"KERAS_BACKEND": args.backend}
    conditions = {
        "nice 0": WorkerPool(DEFAULT_WORKER_COMMAND, os.environ, cwd=REPO_ROOT, warm=False, nice=0),
        f"nice {args.nice}": WorkerPool(DEFAULT_WORKER_COMMAND, os.environ, cwd=REPO_ROOT, warm=False, nice=args.nice),
        f"nice {args.nice} + spare": WorkerPool(DEFAULT_WORKER_COMMAND, os.environ, cwd=REPO_ROOT, nice=args.nice),
    }
    load_start = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {name: [] for name in conditions}
    try:
        for repeat in range(args.repeats + 1):
            for name, pool in conditions.items():
                job = (spare_job if pool.warm else cold_job)(pool, request, extra_env)
                if repeat == 0:
                    continue  # burn-in: disk caches filled, and the spare condition's first spare warm beforehand
                runs[name].append(job)
                print(f"{name}: steady epoch {job['steady_epoch_s']:.3f} s", flush=True)
    finally:
        for pool in conditions.values():
            pool.close()
    load_end = os.getloadavg()[0]
    report(args, runs, load_start, load_end)


def report(args: argparse.Namespace, runs: dict[str, list[dict]], load_start: float, load_end: float) -> None:
    data = "synthetic" if args.synthetic else "real Fashion-MNIST"
    baseline = statistics.median(run["steady_epoch_s"] for run in next(iter(runs.values())))
    print(f"\n{hardware_summary(describe_hardware())}; avx512 lines in /proc/cpuinfo: {avx512_lines()}")
    print(f"Versions: {library_versions()}; load average {load_start:.1f} at the start, {load_end:.1f} at the end")
    print(
        f"Job: Dense({args.hidden}), {args.samples} {data} samples, {args.epochs} epochs, batch 32, "
        f"{args.backend} on {args.device}; {args.repeats} jobs per condition, alternating\n"
    )
    print("| condition | median steady epoch s | ratio to nice 0 | runs (steady s) |")
    print("|---|---|---|---|")
    for name, name_runs in runs.items():
        median = statistics.median(run["steady_epoch_s"] for run in name_runs)
        cells = ", ".join(f"{run['steady_epoch_s']:.3f}" for run in name_runs)
        print(f"| {name} | {median:.3f} | {median / baseline:.3f} | {cells} |")
    spare_runs = next(name_runs for name_runs in runs.values() if "clicked" in name_runs[0])
    warm_after = next_spare_warm_after_s(spare_runs)
    warm_cells = ", ".join(f"{seconds:.1f}" for seconds in warm_after)
    job_cells = ", ".join(f"{run['job_s']:.1f}" for run in spare_runs[:-1])
    print(f"\nThe next spare was warm {warm_cells} s after the click of jobs that ran {job_cells} s")
    if args.json:
        result = {"settings": vars(args), "runs": runs, "next_spare_warm_after_s": warm_after}
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
