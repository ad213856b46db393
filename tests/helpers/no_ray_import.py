"""Creates the job runner as the app's server does with GPUX_RAY_ADDRESS unset, then checks Ray was never imported.

Run as `python -m tests.helpers.no_ray_import DB_PATH` without GPUX_RAY_ADDRESS (tests/test_cluster_cli.py):
exits 0 and prints "NO RAY" when `ray` is not in sys.modules; an AssertionError otherwise.
"""

from __future__ import annotations

import os
import sys

import lib.executor
import lib.runner
from lib.limits import load_limits
from lib.store import RunStore


def main(db_path: str) -> None:
    """Makes the runner the way ui/runtime.py does, shuts it down, and asserts `ray` stayed unimported."""
    executor = lib.executor.cluster_executor(os.environ)
    assert executor is None, "GPUX_RAY_ADDRESS must be unset for this check"
    runner = lib.runner.JobRunner(RunStore(db_path), load_limits(), available_devices=["cpu:0"], warm_workers=False)
    runner.executor_status()
    runner.shutdown()
    assert "ray" not in sys.modules, sorted(name for name in sys.modules if name.split(".")[0] == "ray")[:5]
    print("NO RAY")


if __name__ == "__main__":
    main(sys.argv[1])
