"""The data-parallel step breakdown benchmark (`benchmarks/scaling_breakdown.py`) on two forced JAX host devices.

Its numbers are for GPUs; here only the code is checked: every mode runs on a tiny MLP, the first layer held
in blocks computes the same loss as in one piece, and the command line refuses bad batches.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT, run_on_two_host_devices


def test_every_mode_runs_and_blocks_keep_the_maths():
    done = run_on_two_host_devices(["-m", "tests.helpers.scaling_breakdown_report"], "jax")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = result["rows"]
    assert len(rows) == 9
    assert all(row["step_ms"] > 0 and row["steady_epoch_s"] > 0 for row in rows.values())
    assert rows["1 gpu"]["steps"] == 4 and rows["2 gpu, fp32 all-reduce"]["steps"] == 4
    first, blocked = result["losses"]
    assert abs(first - blocked) < 1e-5


def test_bad_batches_are_refused_with_exit_2():
    command = [sys.executable, "benchmarks/scaling_breakdown.py", "--batches", "1000"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "every batch must be even and divide 49,152" in done.stderr
