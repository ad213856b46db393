"""Click -> first progress of a tiny training job: a cold worker against a warm spare (`lib.worker_pool`).

What a user waits for after pressing Train on an idle server, minus the queue: the runner asks the pool for
a worker (`WorkerPool.launch`), writes the job to it, and the page shows progress once the worker's first
{"type": "progress"} event (the engine's "device_start", sent before the model is built) comes back.

    cold   `WorkerPool(warm=False)`: every job starts `python -m lib.worker` and imports Keras and its backend.
    warm   the job goes to a spare that has finished its warm-up (imports, small datasets pre-read), as on a
           server that had a few idle seconds since the last job; the time includes `launch()`.

Cold and warm runs alternate, so a change of load on a shared machine hits both alike. Besides the first
progress event the script records the worker's "ready" (imports and data done), the first "batch" event
(the model is built and compiled, training has begun) and the first "epoch" event, all from the click.

Run from the repository root:

    .venv/bin/python benchmarks/first_progress.py                        # the server's backend, cpu:0
    .venv/bin/python benchmarks/first_progress.py --backend jax --device gpu:0 --synthetic --json out.json

It prints a table and writes JSON (machine facts, settings, every run, medians) with --json.
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

from benchmarks.harness import read_machine_facts  # noqa: E402
from lib.backend import backend_name, library_versions  # noqa: E402
from lib.jobs import JobRequest  # noqa: E402
from lib.spec import ModelSpec  # noqa: E402
from lib.worker_pool import DEFAULT_WORKER_COMMAND, WorkerPool, WorkerProcess  # noqa: E402

MILESTONES = ("ready", "first_progress", "first_batch", "first_epoch", "done")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=backend_name(), help="Keras backend (default: the server's)")
    parser.add_argument("--device", default="cpu:0", help="device the job trains on")
    parser.add_argument("--repeats", type=int, default=5, help="cold and warm runs each")
    parser.add_argument("--samples", type=int, default=512, help="training samples of the tiny job")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the tiny job")
    parser.add_argument("--synthetic", action="store_true", help="generated data instead of real Fashion-MNIST")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser.parse_args()


def machine_facts() -> dict:
    """The CPU (model, cores, AVX-512), the platform and the library versions, as the results' context."""
    facts = read_machine_facts()
    return {
        "cpu_model": facts.cpu_model,
        "logical_cores": facts.logical_cores,
        "avx512_lines": facts.avx512_lines,  # what `grep -c avx512 /proc/cpuinfo` prints
        "platform": facts.platform,
        "versions": library_versions(),
        "load_average_start": facts.load_average[0],
    }


def read_until(worker: WorkerProcess, kind: str) -> list[dict]:
    """Reads events until one of type `kind` (included) or the end of the stream."""
    events = []
    for line in worker.popen.stdout:
        events.append(json.loads(line))
        if events[-1]["type"] == kind:
            break
    return events


def time_job(worker: WorkerProcess, request: JobRequest, clicked: float) -> dict[str, float]:
    """Writes the job and times each milestone of the module docstring from `clicked` (perf_counter seconds)."""
    worker.popen.stdin.write(json.dumps(request.to_worker_dict()))
    worker.popen.stdin.close()
    times: dict[str, float] = {}
    for line in worker.popen.stdout:
        now = time.perf_counter() - clicked
        event = json.loads(line)
        for name in _milestones_of(event):
            times.setdefault(name, now)
        if event["type"] == "error":
            raise SystemExit(f"The job failed: {event['message']}")
    worker.popen.wait()
    worker.stderr.close()
    times["done"] = time.perf_counter() - clicked
    return times


def _milestones_of(event: dict) -> list[str]:
    if event["type"] == "ready":
        return ["ready"]
    if event["type"] != "progress":
        return []
    first_of_kind = {"batch": ["first_batch"], "epoch": ["first_epoch"]}
    return ["first_progress", *first_of_kind.get(event["event"]["kind"], [])]


def cold_run(pool: WorkerPool, request: JobRequest, extra_env: dict[str, str]) -> dict[str, float]:
    clicked = time.perf_counter()
    worker = pool.launch(request.backend, extra_env)
    return time_job(worker, request, clicked)


def warm_run(pool: WorkerPool, request: JobRequest, extra_env: dict[str, str]) -> dict[str, float]:
    """Takes the waiting spare once it is warm; the click is timed from the `launch()` call on."""
    pool.start_spare(request.backend, extra_env)  # as the runner does once no job trains
    clicked = time.perf_counter()
    worker = pool.launch(request.backend, extra_env)
    launch_s = time.perf_counter() - clicked
    warm_up = read_until(worker, "warm")  # before the click in real life: the server was idle meanwhile
    if not worker.warm or warm_up[-1]["type"] != "warm":
        raise SystemExit("The spare did not warm up; run it by hand: python -m lib.worker --spare")
    times = time_job(worker, request, time.perf_counter() - launch_s)
    return {**times, "launch": launch_s, "spare_import": warm_up[-1]["import_s"]}


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in MILESTONES if all(name in r for r in runs)}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = ModelSpec(hidden_units=(32,), epochs=args.epochs, batch_size=32)
    request = JobRequest(
        spec=spec,
        devices=(args.device,),
        sample_limit=args.samples,
        test_limit=256,
        synthetic=args.synthetic,
        backend=args.backend,
    )
    extra_env = {"KERAS_BACKEND": args.backend}
    facts = machine_facts()
    cold_pool = WorkerPool(DEFAULT_WORKER_COMMAND, os.environ, cwd=REPO_ROOT, warm=False)
    warm_pool = WorkerPool(DEFAULT_WORKER_COMMAND, os.environ, cwd=REPO_ROOT, warm=True)
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    try:
        for _ in range(args.repeats):
            runs["cold"].append(cold_run(cold_pool, request, extra_env))
            runs["warm"].append(warm_run(warm_pool, request, extra_env))
    finally:
        warm_pool.close()
    facts["load_average_end"] = os.getloadavg()[0]
    medians = {kind: summary(kind_runs) for kind, kind_runs in runs.items()}
    data = "synthetic" if args.synthetic else "real Fashion-MNIST"
    print(f"{facts['cpu_model']}, {facts['logical_cores']} logical cores, avx512 lines: {facts['avx512_lines']}")
    print(f"Job: Dense(32), {args.samples} {data} samples, {args.epochs} epochs, {args.backend} on {args.device}")
    print(f"Load average {facts['load_average_start']:.1f} at the start, {facts['load_average_end']:.1f} at the end\n")
    print("Median seconds from the click, over", args.repeats, "runs each\n")
    print("| worker | " + " | ".join(MILESTONES) + " |")
    print("|---|" + "---|" * len(MILESTONES))
    for kind, median in medians.items():
        print(f"| {kind} | " + " | ".join(f"{median.get(name, float('nan')):.2f}" for name in MILESTONES) + " |")
    result = {
        "machine": facts,
        "settings": vars(args),
        "runs": runs,
        "median_s": medians,
    }
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
