"""How long the sweep page takes to find the server's latest finished sweep, as the store's history grows.

The page used to decode every stored job (`RunStore.jobs()`, each request's JSON parsed into a `JobRequest`)
and keep the newest finished sweep; it now asks SQLite for it (`RunStore.latest_sweep_id`). This fills a
temporary store with N jobs (one in `--sweep-every` a finished sweep, the rest training jobs, as a class's
server collects them), then times both ways, each the median of `--repeats` tries, in one run.

Run:
    python benchmarks/sweep_lookup.py --jobs 1000 10000
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.harness import read_machine_facts  # noqa: E402
from lib.jobs import JobRecord, JobRequest, JobState  # noqa: E402
from lib.presets import get_preset  # noqa: E402
from lib.store import RunStore  # noqa: E402
from lib.sweep import DEFAULT_SWEEP_BATCHES, sweep_spec  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1_000, 10_000], help="stored jobs, one store each")
    parser.add_argument("--sweep-every", type=int, default=20, help="one job in this many is a finished sweep")
    parser.add_argument("--repeats", type=int, default=5, help="tries per way; the median is printed")
    return parser.parse_args()


def fill(store: RunStore, count: int, sweep_every: int) -> None:
    """Stores `count` jobs: training jobs of the tutorial preset, and every `sweep_every`-th a finished sweep."""
    spec = get_preset("fashion-seed").spec
    training = JobRequest(spec=spec, devices=("cpu:0",), sample_limit=6_000)
    sweep = JobRequest(
        spec=sweep_spec(spec, DEFAULT_SWEEP_BATCHES), devices=("cpu:0",), batch_sizes=DEFAULT_SWEEP_BATCHES
    )
    for index in range(count):
        is_sweep = index % sweep_every == 0
        store.save_job(
            JobRecord(
                job_id=f"{index:012x}",
                seq=0,
                submitted_at=1_000_000.0 + index,
                state=JobState.DONE,
                client="10.0.0.1",
                owners=(f"student-{index % 30}",),
                preset=None,
                request=sweep if is_sweep else training,
            )
        )


def decode_every_job(store: RunStore) -> str | None:
    """The page's former lookup: every job decoded, the newest finished sweep kept."""
    sweeps = [job for job in store.jobs() if job.request.is_sweep and job.state == JobState.DONE]
    return max(sweeps, key=lambda job: job.submitted_at).job_id if sweeps else None


def median_seconds(lookup: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        lookup()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = parse_args()
    facts = read_machine_facts()
    print(
        f"Machine: {facts.cpu_model}, {facts.logical_cores} logical cores, AVX-512 lines: {facts.avx512_lines}, "
        f"load {facts.load_average[0]:.1f}"
    )
    print("| stored jobs | decode every job (ms) | one query (ms) | decode / query |")
    print("|---:|---:|---:|---:|")
    for count in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            store = RunStore(pathlib.Path(folder) / "runs.sqlite")
            fill(store, count, args.sweep_every)
            assert decode_every_job(store) == store.latest_sweep_id(), "both ways find the same sweep"
            before = median_seconds(lambda store=store: decode_every_job(store), args.repeats)
            after = median_seconds(store.latest_sweep_id, args.repeats)
        print(f"| {count:,} | {before * 1000:.1f} | {after * 1000:.2f} | {before / after:.0f}x |")


if __name__ == "__main__":
    main()
