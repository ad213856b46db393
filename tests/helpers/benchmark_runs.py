"""Runs the performance benchmarks at tiny sizes, so that only their code paths are exercised.

Run as `python -m tests.helpers.gpu_machine -m tests.helpers.benchmark_runs OUT_DIR` with KERAS_BACKEND=jax
(as the GPU machine runs them: TensorFlow, Streamlit and Altair unimportable). Each benchmark writes
OUT_DIR/NAME.json; one line, "CODES" followed by JSON, gives each benchmark's exit code.
"""

from __future__ import annotations

import json
import sys

from benchmarks import ceilings, peers, presets


def main(out: str) -> None:
    """Runs the ceilings, presets and peers benchmarks and prints their exit codes."""
    codes = {
        "ceilings": ceilings.main(
            ["--devices", "cpu:0", "--backends", "jax", "--n", "256", "--repeats", "1"]
            + ["--json", f"{out}/ceilings.json"]
        ),
        "presets": presets.main(
            ["--presets", "fashion-seed,fashion-tuned", "--samples", "1024", "--epochs", "2", "--synthetic"]
            + ["--device-resident", "--spe", "4", "--test-samples", "64", "--ceiling-n", "256", "--profile"]
            + ["--json", f"{out}/presets.json"]
        ),
        "peers": peers.main(
            ["--preset", "fashion-seed", "--batch-sizes", "64", "--samples", "256", "--epochs", "2", "--synthetic"]
            + ["--peers", "engine,device-resident,keras-fit", "--json", f"{out}/peers.json"]
        ),
    }
    print("CODES" + json.dumps(codes))


if __name__ == "__main__":
    main(sys.argv[1])
