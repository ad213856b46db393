"""Where does the GPU win? A sweep through the app's own job runner, as one click on its page runs it.

Trains a preset's model at several batch sizes on each device (`lib.sweep`: two epochs per point, the
second timed, no test), one job of real runs in a worker process, then prints each point's throughput,
each device's speedup over the CPU at the same batch size, where it crosses 1x, and the page's captions.

Run:
    python benchmarks/sweep.py --preset fashion-seed --synthetic                       # this machine's devices
    KERAS_BACKEND=jax python benchmarks/sweep.py --preset cifar10-seed --synthetic --json out/sweep.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.harness import read_machine_facts  # noqa: E402
from lib.backend import backend_name  # noqa: E402
from lib.devices import list_devices  # noqa: E402
from lib.jobs import JobState  # noqa: E402
from lib.limits import ServerLimits  # noqa: E402
from lib.presets import get_preset  # noqa: E402
from lib.runner import JobRunner  # noqa: E402
from lib.store import RunStore  # noqa: E402
from lib.sweep import (  # noqa: E402
    DEFAULT_SWEEP_BATCHES,
    SWEEP_TEST_LIMIT,
    speedup_caption,
    speedup_points,
    sweep_crossovers,
    sweep_points,
    sweep_samples,
    sweep_spec,
    throughput_caption,
)

WAIT_S = 1800  # the server's default job time limit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fashion-seed", help="the model swept (default fashion-seed)")
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_SWEEP_BATCHES)), help="batch sizes, a,b,c")
    parser.add_argument("--devices", default="", help="devices, a,b (default: every CPU and single GPU here)")
    parser.add_argument("--samples", type=int, default=0, help="training samples per point (default: 4 steps)")
    parser.add_argument("--synthetic", action="store_true", help="generated images of the dataset's shape")
    parser.add_argument("--json", type=pathlib.Path, help="write the points and the machine as JSON")
    return parser.parse_args(argv)


def default_devices() -> list[str]:
    """Every CPU and each single GPU of this machine (not "gpu:all")."""
    return [device.name for device in list_devices()]


def run_sweep(args: argparse.Namespace, store: RunStore) -> str:
    """Queues the sweep on a fresh runner, waits for it, and returns its job id."""
    spec = get_preset(args.preset).spec
    batches = sorted(int(size) for size in args.batches.split(","))
    devices = [name for name in args.devices.split(",") if name] or default_devices()
    limits = ServerLimits()
    samples = sweep_samples(batches, args.samples, limits.samples)
    runner = JobRunner(store, limits, warm_workers=False)
    try:
        started = time.perf_counter()
        job = runner.submit(
            "benchmark",
            sweep_spec(spec, batches),
            devices,
            sample_limit=samples,
            test_limit=SWEEP_TEST_LIMIT,
            synthetic=args.synthetic,
            preset=args.preset,
            batch_sizes=tuple(batches),
        )
        final = runner.wait(job.id, WAIT_S)
        print(f"sweep {final.state.value} in {time.perf_counter() - started:.1f} s; {samples:,} samples per point")
        if final.state != JobState.DONE:
            print(f"  {final.error}")
        return job.id
    finally:
        runner.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = read_machine_facts()
    print(f"machine: {facts.cpu_model}, {facts.usable_cores} cores, avx512 lines {facts.avx512_lines}")
    print(f"backend: {backend_name()}, preset {args.preset}, {'generated' if args.synthetic else 'real'} data")
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(pathlib.Path(folder) / "runs.sqlite")
        rows = store.runs(job_id=run_sweep(args, store))
    points = sweep_points(rows)
    speedups = speedup_points(points)
    crossovers = sweep_crossovers(speedups)
    print(points.to_string(index=False))
    if not speedups.empty:
        print(speedups.loc[:, ["device", "batch_size", "speedup"]].to_string(index=False))
    print(throughput_caption(points))
    print(speedup_caption(crossovers))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "machine": dataclasses.asdict(facts),
            "backend": backend_name(),
            "preset": args.preset,
            "synthetic": args.synthetic,
            "points": points.to_dict(orient="records"),
            "speedups": speedups.to_dict(orient="records"),
            "crossovers": [dataclasses.asdict(crossover) for crossover in crossovers],
            "hardware": rows["hardware"].iloc[0] if len(rows) else {},
        }
        args.json.write_text(json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
