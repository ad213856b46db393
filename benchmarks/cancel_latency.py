"""Cancel -> "cancelled": how long a user waits after pressing Cancel on a training job.

Each repeat submits a real job to `lib.runner.JobRunner` (a worker process, as on the server), waits until it
has trained for --after seconds (its progress shows batches), then cancels it as the Train page does
(`runner.cancel`) and times until the job is final (`runner.wait`): the worker stops after the step under way
and sends its run, or the runner kills it after its grace period. The page polls every second while a job
stops (`STOP_WAIT_S`), so the user sees "cancelled" within that second of the job being final.

A second case cancels a job before it has started training (the worker still importing Keras).

Run from the repository root:

    .venv/bin/python benchmarks/cancel_latency.py --repeats 5 --json benchmarks/results/cpu-class/cancel_latency.json

Target (issue 12): the cancel completes within 2 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.first_progress import machine_facts  # noqa: E402
from lib.jobs import JobState  # noqa: E402
from lib.limits import load_limits  # noqa: E402
from lib.presets import PRESETS  # noqa: E402
from lib.runner import JobRunner  # noqa: E402
from lib.store import RunStore  # noqa: E402

POLL_S = 0.05  # how often the script looks at the running job
START_TIMEOUT_S = 120.0  # a cold worker imports Keras and its backend first
OWNER = "benchmark"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="cancels of each kind")
    parser.add_argument("--after", type=float, default=2.0, help="seconds of training before the cancel")
    parser.add_argument("--device", default="cpu:0", help="device the job trains on")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    return parser.parse_args()


def long_spec():
    """The tutorial's Fashion-MNIST model for many epochs: still training whenever it is cancelled."""
    return PRESETS["fashion-seed"].spec.with_changes(epochs=50)


def wait_for_training(runner: JobRunner, job_id: str, device: str) -> None:
    """Returns once the job has sent a batch event (training under way); fails after `START_TIMEOUT_S`."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        event = runner.get(job_id, OWNER).latest_progress(device)
        if event is not None and event.kind == "batch":
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"job {job_id} did not start training within {START_TIMEOUT_S:.0f} s")


def time_cancel(runner: JobRunner, job_id: str) -> dict:
    """Cancels the job; returns the seconds until it was final and the state it ended in."""
    clicked = time.monotonic()
    runner.cancel(job_id, owner=OWNER)
    final = runner.wait(job_id, timeout_s=60)
    return {"seconds": time.monotonic() - clicked, "state": final.state.value, "kept_epochs": _epochs(final)}


def _epochs(job) -> int:
    return sum(len(run.epoch_s) for run in job.results)


def cancel_while_training(runner: JobRunner, args: argparse.Namespace) -> dict:
    job = runner.submit(OWNER, long_spec(), [args.device], sample_limit=20_000, synthetic=True)
    wait_for_training(runner, job.id, args.device)
    time.sleep(args.after)
    return time_cancel(runner, job.id)


def cancel_before_training(runner: JobRunner, args: argparse.Namespace) -> dict:
    job = runner.submit(OWNER, long_spec().with_changes(seed=1), [args.device], sample_limit=20_000, synthetic=True)
    while runner.get(job.id, OWNER).state != JobState.RUNNING:
        time.sleep(POLL_S)
    return time_cancel(runner, job.id)


def summary(runs: list[dict]) -> dict:
    seconds = [run["seconds"] for run in runs]
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds)}


def main() -> None:
    args = parse_args()
    results: dict[str, list[dict]] = {"while_training": [], "before_training": []}
    with tempfile.TemporaryDirectory(prefix="cancel-latency-") as folder:
        store = RunStore(pathlib.Path(folder) / "runs.sqlite")
        runner = JobRunner(store, load_limits(), warm_workers=False)  # cold workers: no spare beside a job
        try:
            for repeat in range(args.repeats):
                for case, measure in (
                    ("while_training", cancel_while_training),
                    ("before_training", cancel_before_training),
                ):
                    result = measure(runner, args)
                    results[case].append(result)
                    print(f"[{repeat + 1}/{args.repeats}] {case}: {result['seconds']:.2f} s -> {result['state']}")
        finally:
            runner.shutdown()
    report = {
        "benchmark": "cancel_latency",
        "command": " ".join(sys.argv),
        "machine": machine_facts(),
        "runs": results,
        "summary": {case: summary(runs) for case, runs in results.items()},
    }
    for case, figures in report["summary"].items():
        print(f"{case}: median {figures['median_s']:.2f} s (min {figures['min_s']:.2f}, max {figures['max_s']:.2f})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
