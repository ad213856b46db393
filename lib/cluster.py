"""Where this server's jobs run, from a terminal: the Ray cluster's training machines, or this server.

Run as `python -m lib.cluster status` on the app's server (GPUX_RAY_ADDRESS set, as for the app) or anywhere
with `--address http://HEAD:8265`. It prints each training machine (name, address, GPUs) and exits 0; when
the head does not answer it prints why in one sentence and exits 2; without an address it says that jobs
run on this server. Ray is imported only when there is an address. README.md, "More machines".
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from lib.executor import RAY_ADDRESS_ENV, ExecutorStatus, ray_address

EXIT_UNREACHABLE = 2  # the head does not answer


def status_lines(status: ExecutorStatus) -> list[str]:
    """What `status` prints about a cluster that answered: a heading, then one row per training machine."""
    if not status.machines:
        return [
            f"The Ray cluster at {status.address} answers, but no training machine has joined it yet: jobs wait.",
            "On a training machine: make worker, then the `ray start --address ...` command it prints.",
        ]
    count = len(status.machines)
    rows = [("name", "address", "GPUs")]
    rows += [(machine.name, machine.address or "-", str(machine.gpus)) for machine in status.machines]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    table = [f"  {name:<{widths[0]}}  {address:<{widths[1]}}  {gpus}" for name, address, gpus in rows]
    return [f"The Ray cluster at {status.address}: {count} training machine{'s' * (count != 1)}.", *table]


def cluster_status(address: str) -> ExecutorStatus:
    """Looks at the cluster once (the executor's own look, so the app and this command say the same)."""
    from lib.ray_executor import RayExecutor

    executor = RayExecutor(address)
    try:
        return executor.status()
    finally:
        executor.close()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Runs the command; returns its exit code (0; 2 when the head does not answer)."""
    parser = argparse.ArgumentParser(prog="python -m lib.cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status_parser = commands.add_parser("status", help="the cluster's training machines, or where jobs run")
    status_parser.add_argument(
        "--address", default=None, help=f"the Ray head's dashboard, http://HEAD:8265 (default: ${RAY_ADDRESS_ENV})"
    )
    args = parser.parse_args(argv)
    settings = environ if environ is not None else os.environ
    address = ray_address({RAY_ADDRESS_ENV: args.address} if args.address else settings)
    if not address:
        print(f"{RAY_ADDRESS_ENV} is not set: jobs run on this server, one at a time.")
        return 0
    status = cluster_status(address)
    if status.problem:
        print(status.problem)
        return EXIT_UNREACHABLE
    print("\n".join(status_lines(status)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
