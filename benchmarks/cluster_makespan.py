"""More machines: the makespan of a class's jobs on one and on two Ray nodes, and the cost per job of Ray.

Issue 14's two figures, in one run on one machine:

1. Makespan: the same N small jobs (default 8) submitted at once through `lib.runner.JobRunner` on a Ray
   cluster with one training node, then with two; makespan is from the first submit to the last job's end.
   The ratio is what a second machine gives a class. Both nodes of this local cluster share this machine's
   cores, so with real training (`--worker real`) the ratio also shows the cores being shared; with the
   tests' worker (`--worker fake`: the same process and events, each epoch a wait) it shows the scheduling
   alone, as on machines that share nothing.
2. Overhead per job: the wall time of one small job minus the training time its worker measured, one job
   at a time, on this machine's runner (cold workers, and with the warm spare) and on the Ray cluster (one node).
   On Ray every job starts its worker cold and its events travel through the dashboard's log stream.

Run from the repository root (Ray from requirements-cluster.txt):

    .venv/bin/python benchmarks/cluster_makespan.py --json benchmarks/results/cpu-cluster/makespan.json
    .venv/bin/python benchmarks/cluster_makespan.py --worker fake --jobs 8
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lib.backend import backend_name  # noqa: E402
from lib.executor import LocalExecutor  # noqa: E402
from lib.hardware import describe_hardware, hardware_summary  # noqa: E402
from lib.jobs import JobSnapshot, JobState  # noqa: E402
from lib.limits import ServerLimits  # noqa: E402
from lib.local_cluster import start_local_cluster  # noqa: E402
from lib.ray_executor import WORKER_ENTRYPOINT, RayExecutor  # noqa: E402
from lib.runner import JobRunner  # noqa: E402
from lib.spec import ModelSpec  # noqa: E402
from lib.store import RunStore  # noqa: E402
from tests.helpers.fake_worker import FAKE_WORKER_COMMAND, FAKE_WORKER_ENTRYPOINT, HOOK_KEY  # noqa: E402

WAIT_S = 1800.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="jobs in the makespan batch (default 8)")
    parser.add_argument("--worker", choices=("real", "fake"), default="real", help="real training or the tests' worker")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per job")
    parser.add_argument("--samples", type=int, default=2048, help="training samples per job (generated data)")
    parser.add_argument("--hidden", type=int, default=64, help="units of the one hidden layer")
    parser.add_argument("--fake-epoch-s", type=float, default=2.0, help="seconds per epoch with --worker fake")
    parser.add_argument("--overhead-jobs", type=int, default=3, help="jobs timed one by one per runner")
    parser.add_argument("--json", type=pathlib.Path, help="write the figures here")
    return parser.parse_args()


def job_spec(args: argparse.Namespace, index: int) -> ModelSpec:
    """A small Fashion-MNIST MLP; each job's seed differs, so identical requests never join."""
    extra = {HOOK_KEY: {"fake": True, "epoch_s": args.fake_epoch_s}} if args.worker == "fake" else {}
    spec = ModelSpec(hidden_units=(args.hidden,), epochs=args.epochs, batch_size=128, extra=extra)
    return spec.with_changes(seed=zlib.crc32(f"job-{index}".encode()) % 10_000)


def submit(runner: JobRunner, args: argparse.Namespace, index: int) -> JobSnapshot:
    return runner.submit(
        f"student-{index}", job_spec(args, index), ["cpu:0"], sample_limit=args.samples, test_limit=0, synthetic=True
    )


def ray_runner(address: str, args: argparse.Namespace, db: pathlib.Path) -> JobRunner:
    entrypoint = FAKE_WORKER_ENTRYPOINT if args.worker == "fake" else WORKER_ENTRYPOINT
    executor = RayExecutor(address, entrypoint=entrypoint, worker_env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    return JobRunner(RunStore(db), ServerLimits(queue=max(30, args.jobs + 2)), executor=executor)


def local_runner(args: argparse.Namespace, db: pathlib.Path, warm: bool) -> JobRunner:
    command = FAKE_WORKER_COMMAND if args.worker == "fake" else None
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GPUX_WARM_WORKER": "1" if warm else "0"}
    executor = LocalExecutor(1, command, env, default_backend=backend_name(), warm_workers=warm)
    return JobRunner(RunStore(db), ServerLimits(queue=max(30, args.jobs + 2)), executor=executor)


def makespan(runner: JobRunner, args: argparse.Namespace) -> dict:
    """Submits every job at once; seconds from the first submit to the last end, and where each ran."""
    started = time.time()
    jobs = [submit(runner, args, index) for index in range(args.jobs)]
    finished = [runner.wait(job.id, WAIT_S) for job in jobs]
    bad = [job.error or job.state.value for job in finished if job.state != JobState.DONE]
    if bad:
        raise RuntimeError(f"jobs did not finish: {bad[:3]}")
    end = max(job.finished_at for job in finished)
    machines = [dict(job.hardware).get("node", "?") for job in finished]
    return {"makespan_s": end - started, "machines": {name: machines.count(name) for name in sorted(set(machines))}}


def overheads(runner: JobRunner, args: argparse.Namespace, offset: int) -> list[float]:
    """One job at a time: wall time minus the epochs the worker timed."""
    values = []
    for index in range(args.overhead_jobs):
        job = runner.wait(submit(runner, args, offset + index).id, WAIT_S)
        if job.state != JobState.DONE:
            raise RuntimeError(f"job did not finish: {job.error}")
        trained = sum(run.total_s or 0.0 for run in job.results)
        values.append(job.finished_at - job.started_at - trained)
        if runner.executor.kind == "local":
            time.sleep(0.5)  # a warm spare starts after each job; give it the time a student's next click takes
            if runner.executor.spare_pid(backend_name()) is not None:
                wait_for_warm_spare(runner)
    return values


def wait_for_warm_spare(runner: JobRunner, timeout_s: float = 120.0) -> None:
    """Waits until the spare has imported (its CPU use drops), as after a student's pause between jobs."""
    import psutil

    pid = runner.executor.spare_pid(backend_name())
    deadline = time.monotonic() + timeout_s
    process = psutil.Process(pid)
    while time.monotonic() < deadline:
        if process.cpu_percent(interval=0.5) < 5:
            return


def main() -> int:
    args = parse_args()
    hardware = describe_hardware()
    avx512 = "avx512" in pathlib.Path("/proc/cpuinfo").read_text()
    print(f"machine: {hardware_summary(hardware)}, AVX-512: {'yes' if avx512 else 'no'}", flush=True)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="gpux-makespan-"))
    cluster = start_local_cluster(("machine-1",))
    try:
        one = ray_runner(cluster.address, args, folder / "one.sqlite")
        ray_overheads = overheads(one, args, offset=1000)
        print(f"ray overhead per job: {[round(x, 2) for x in ray_overheads]}", flush=True)
        on_one = makespan(one, args)
        one.shutdown()
        print(f"1 node: {on_one}", flush=True)
        cluster.start_node("machine-2")
        two = ray_runner(cluster.address, args, folder / "two.sqlite")
        on_two = makespan(two, args)
        two.shutdown()
        print(f"2 nodes: {on_two}", flush=True)
    finally:
        cluster.stop()
    local_figures = {}
    for warm in (False, True):
        runner = local_runner(args, folder / f"local-{warm}.sqlite", warm)
        if warm:
            time.sleep(1.0)
            wait_for_warm_spare(runner)
        local_figures["warm" if warm else "cold"] = overheads(runner, args, offset=2000)
        runner.shutdown()
        print(f"local ({'warm' if warm else 'cold'}) overhead per job: {local_figures}", flush=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": hardware_summary(hardware),
        "avx512": avx512,
        "backend": backend_name(),
        "worker": args.worker,
        "jobs": args.jobs,
        "one_node": on_one,
        "two_nodes": on_two,
        "speedup_two_over_one": on_one["makespan_s"] / on_two["makespan_s"],
        "overhead_s": {
            "ray": ray_overheads,
            "local_cold": local_figures["cold"],
            "local_warm": local_figures["warm"],
        },
        "overhead_median_s": {
            "ray": statistics.median(ray_overheads),
            "local_cold": statistics.median(local_figures["cold"]),
            "local_warm": statistics.median(local_figures["warm"]),
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
