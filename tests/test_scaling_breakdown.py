"""The data-parallel step breakdown benchmark (`benchmarks/scaling_breakdown.py`) on two forced JAX host devices.

Its numbers are for GPUs; here only the code is checked: every mode runs on a tiny MLP, the first layer held
in blocks computes the same loss as in one piece, and the command line refuses bad batches.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT, run_on_two_host_devices

TINY_BREAKDOWN = """
import json, sys
sys.path.insert(0, "benchmarks")
import jax, numpy as np
import scaling_breakdown as breakdown
breakdown.LAYERS, breakdown.NUM_SAMPLES = (64, 48, 32, 10), 256
rows = {mode: breakdown.measure(mode, 64, 2, jax.devices("cpu")[:2]) for mode in breakdown.MODES}
inputs = jax.numpy.asarray(np.random.default_rng(0).random((8, 64)), jax.numpy.float32)
labels = jax.numpy.arange(8) % 10
params = [breakdown._init_params(jax.random.key(0), blocks) for blocks in (1, 4)]
losses = [float(breakdown._loss(weights, inputs, labels)) for weights in params]
print(json.dumps({"rows": rows, "losses": losses}))
"""


def test_every_mode_runs_and_blocks_keep_the_maths():
    done = run_on_two_host_devices(["-c", TINY_BREAKDOWN], "jax")
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
