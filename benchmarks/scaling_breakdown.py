"""Where the time of a data-parallel training step goes on several GPUs: compute, gradient all-reduce, overlap.

`benchmarks/scaling.py` measures the app's engine on one GPU and on all GPUs. This script takes the same
model apart, in plain JAX (no Keras, so nothing else is in the step), to see what bounds the speedup:

- `1 gpu`: the CIFAR-10 MLP (3072-3000-1000-10, relu, softmax cross-entropy, SGD) on one GPU, global batch B;
- `1 gpu, half batch`: the same on one GPU with B / 2: the compute of one replica of a 2-GPU step, alone;
- `2 gpu, no all-reduce`: both GPUs train on their halves without averaging gradients (not a valid
  data-parallel run: the lower bound of a 2-GPU step, all compute and no communication);
- `2 gpu, all-reduce only`: just the per-step all-reduce of a gradient-sized set of arrays (float32 and
  bfloat16), the communication alone;
- `2 gpu, fp32 all-reduce` / `bf16 all-reduce`: data parallel as `lib.device_resident` does it (shard_map, `pmean` of
  the gradients before the update), with the gradients averaged in float32 or sent as bfloat16;
- `..., first layer in 4 blocks`: the same maths with the first layer's weights held as 4 column blocks, so
  its gradient (37 MB of the 49 MB) is 4 all-reduces that can start while the other blocks are computed.

Each configuration runs under several XLA flag sets, each in its own process (XLA reads `XLA_FLAGS` once):
the default, the latency-hiding scheduler, and that scheduler without combining the per-layer all-reduces
into one (so the all-reduce of the last layers' gradients can overlap the first layer's backward work).
Every epoch is one compiled call over data already on the devices (49,152 samples: whole batches for every B
listed). Steady = median of epochs 2..n.

Run on a machine with at least two GPUs (JAX with CUDA; keep NCCL_NVLS_ENABLE=0 as the machine sets it):
    python3 benchmarks/scaling_breakdown.py --json breakdown.json
    python3 benchmarks/scaling_breakdown.py --batches 2048,8192 --flag-sets default

Exit status: 0 when every configuration ran, 1 when one failed (its error is in the table), 2 for bad
arguments or fewer than two GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

LAYERS = (3072, 3000, 1000, 10)  # the tutorial's CIFAR-10 MLP
LEARNING_RATE = 0.08  # the cifar10-tuned preset's SGD rate
NUM_SAMPLES = 49_152  # 24 x 2048: whole batches for every power-of-two batch up to 16,384
AXIS = "replica"
FLAG_SETS = {
    "default": "",
    "latency-hiding": "--xla_gpu_enable_latency_hiding_scheduler=true",
    "latency-hiding, per-layer all-reduce": (
        "--xla_gpu_enable_latency_hiding_scheduler=true --xla_gpu_all_reduce_combine_threshold_bytes=1"
    ),
}
MODES = (
    "1 gpu",
    "1 gpu, half batch",
    "2 gpu, no all-reduce",
    "2 gpu, all-reduce only (fp32)",
    "2 gpu, all-reduce only (bf16)",
    "2 gpu, fp32 all-reduce",
    "2 gpu, bf16 all-reduce",
    "2 gpu, fp32 all-reduce, first layer in 4 blocks",
    "2 gpu, bf16 all-reduce, first layer in 4 blocks",
)
FIRST_LAYER_BLOCKS = 4  # "in 4 blocks": the first layer's columns as 4 arrays, so their all-reduces can pipeline


def main(argv: list[str] | None = None) -> int:
    """Runs every flag set in a child process and prints one table; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.child is not None:
        return run_child(args)
    unknown = [name for name in args.flag_sets if name not in FLAG_SETS]
    if unknown:
        print(f"error: unknown flag set {unknown[0]!r}; choose from {', '.join(FLAG_SETS)}", file=sys.stderr)
        return 2
    rows, failed = [], False
    for name in args.flag_sets:
        child_rows, error = _run_flag_set(name, args)
        if error:
            failed = True
            print(f"[{name}] FAILED: {error}", file=sys.stderr)
        rows.extend(child_rows)
    if not rows:
        return 2 if error and "needs at least 2" in error else 1
    print(format_table(rows))
    if args.json is not None:
        document = {"benchmark": "data-parallel step breakdown", "layers": LAYERS, "samples": NUM_SAMPLES}
        document["flag_sets"] = {name: FLAG_SETS[name] for name in args.flag_sets}
        document["rows"] = rows
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if failed or any(row["error"] for row in rows) else 0


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser."""
    parser = argparse.ArgumentParser(description="Break a 2-GPU data-parallel MLP step into compute and all-reduce.")
    parser.add_argument(
        "--batches", type=_batches, default=(2048, 4096, 8192), help="global batch sizes, e.g. 2048,8192"
    )
    parser.add_argument("--epochs", type=int, default=6, help="epochs per configuration (steady = median of 2..n)")
    parser.add_argument(
        "--flag-sets", type=lambda text: text.split(";"), default=list(FLAG_SETS), help="';'-separated flag-set names"
    )
    parser.add_argument(
        "--kind",
        choices=("gpu", "cpu"),
        default="gpu",
        help="device kind (cpu: a check of the code with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=2; its times say nothing about GPUs)",
    )
    parser.add_argument("--json", type=pathlib.Path, help="write the rows as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the flag set this process runs
    return parser


def _run_flag_set(name: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """Runs one flag set in a child process; returns its rows and an error text ('' when it ran)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {FLAG_SETS[name]}".strip()
    command = [sys.executable, __file__, "--child", name, "--epochs", str(args.epochs), "--kind", args.kind]
    command += ["--batches", ",".join(str(batch) for batch in args.batches)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0:
        return rows, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
    return rows, ""


def run_child(args: argparse.Namespace) -> int:
    """Measures every mode and batch under this process's XLA flags; prints one JSON row per line."""
    import jax

    try:
        gpus = jax.devices(args.kind)
    except RuntimeError:  # no backend of that kind
        gpus = []
    if len(gpus) < 2:
        print(f"error: needs at least 2 {args.kind.upper()}s; JAX sees {len(gpus)}", file=sys.stderr)
        return 2
    for batch in args.batches:
        for mode in MODES:
            row = {"flag_set": args.child, "batch": batch, "mode": mode, "error": ""}
            try:
                row.update(measure(mode, batch, args.epochs, gpus[:2]))
            except Exception as error:  # noqa: BLE001 - one failed configuration must not hide the others
                row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            print(json.dumps(row), flush=True)
    return 0


def measure(mode: str, batch: int, epochs: int, gpus: list[Any]) -> dict[str, float]:
    """Times one mode at one global batch; returns steady epoch seconds, step milliseconds, first epoch seconds."""
    import jax

    devices = gpus[:1] if mode.startswith("1 gpu") else gpus
    per_device = batch // 2 if "half batch" in mode or len(devices) == 2 else batch
    steps = NUM_SAMPLES // batch
    epoch_fn, state, inputs = _build(mode, devices, per_device, steps)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        state = epoch_fn(state, *inputs, jax.random.key(epoch))
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    steady = statistics.median(times[1:])
    return {"steps": steps, "first_epoch_s": times[0], "steady_epoch_s": steady, "step_ms": 1000 * steady / steps}


def _build(mode: str, devices: list[Any], per_device: int, steps: int) -> tuple[Callable, Any, tuple]:
    """(jitted epoch, initial state, data arguments) for a mode, everything already on its devices."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    rng = np.random.default_rng(0)
    samples = per_device * steps * len(devices)
    x = rng.integers(0, 256, size=(samples, LAYERS[0]), dtype=np.uint8)
    y = rng.integers(0, LAYERS[-1], size=(samples,), dtype=np.int32)
    params = _init_params(jax.random.key(0), FIRST_LAYER_BLOCKS if "blocks" in mode else 1)
    if len(devices) == 1:
        epoch = jax.jit(_train_epoch(steps, per_device, None, sharded=False), donate_argnums=0)
        return epoch, jax.device_put(params, devices[0]), tuple(jax.device_put((x, y), devices[0]))
    mesh = Mesh(np.array(devices), (AXIS,))
    split, replicated = NamedSharding(mesh, PartitionSpec(AXIS)), NamedSharding(mesh, PartitionSpec())
    if "all-reduce only" in mode:
        dtype = jnp.bfloat16 if "bf16" in mode else jnp.float32
        body, in_specs = _all_reduce_epoch(steps, dtype), (PartitionSpec(), PartitionSpec())
        state, inputs = jax.device_put(params, replicated), (jax.device_put(np.zeros(1, np.float32), replicated),)
    else:
        reduce = None if "no all-reduce" in mode else ("bf16" if "bf16" in mode else "fp32")
        body = _train_epoch(steps, per_device, reduce, sharded=True)
        in_specs = (PartitionSpec(), PartitionSpec(AXIS), PartitionSpec(AXIS))
        state, inputs = jax.device_put(params, replicated), (jax.device_put(x, split), jax.device_put(y, split))
    mapped = jax.shard_map(
        body, mesh=mesh, in_specs=(*in_specs, PartitionSpec()), out_specs=PartitionSpec(), check_vma=False
    )
    return jax.jit(mapped, donate_argnums=0), state, inputs


def _init_params(key: Any, first_layer_blocks: int) -> list[list[tuple[Any, Any]]]:
    """Glorot-uniform weights and zero biases, as Keras' Dense layers start; each layer a list of column blocks."""
    import jax
    import jax.numpy as jnp

    params = []
    for index, (fan_in, fan_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:], strict=True)):
        key, sub = jax.random.split(key)
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        weights = jax.random.uniform(sub, (fan_in, fan_out), jnp.float32, -limit, limit)
        blocks = first_layer_blocks if index == 0 else 1
        pairs = zip(jnp.array_split(weights, blocks, axis=1), jnp.array_split(jnp.zeros(fan_out), blocks), strict=True)
        params.append([(block, bias) for block, bias in pairs])
    return params


def _loss(params: list[list[tuple[Any, Any]]], inputs: Any, labels: Any) -> Any:
    import jax
    import jax.numpy as jnp

    hidden = inputs
    for index, blocks in enumerate(params):
        outputs = [hidden @ weights + bias for weights, bias in blocks]
        hidden = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=-1)
        if index < len(params) - 1:
            hidden = jax.nn.relu(hidden)
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(hidden) * jax.nn.one_hot(labels, LAYERS[-1]), axis=-1))


def _train_epoch(steps: int, batch: int, reduce: str | None, sharded: bool) -> Callable:
    """epoch(params, x, y, key) -> params: shuffled SGD steps.

    `sharded`: runs under shard_map, one replica per device (each shuffles its own block); `reduce` ("fp32",
    "bf16" or None) averages the gradients over the replicas before the update.
    """
    import jax
    import jax.numpy as jnp

    gradient = jax.grad(_loss)

    def average(grads):
        if reduce == "fp32":
            return jax.lax.pmean(grads, AXIS)
        if reduce == "bf16":
            return jax.tree.map(lambda g: jax.lax.pmean(g.astype(jnp.bfloat16), AXIS).astype(jnp.float32), grads)
        return grads

    def epoch(params, x, y, key):
        if sharded:
            key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
        order = jax.random.permutation(key, x.shape[0])[: steps * batch].reshape(steps, batch)

        def step(params, indices):
            grads = average(gradient(params, x[indices].astype(jnp.float32) / 255.0, y[indices]))
            return jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads), None

        return jax.lax.scan(step, params, order)[0]

    return epoch


def _all_reduce_epoch(steps: int, dtype: Any) -> Callable:
    """epoch(params, dummy, key) -> params: `steps` all-reduces of gradient-sized arrays and nothing else."""
    import jax
    import jax.numpy as jnp

    def epoch(params, dummy, key):
        def step(grads, _):
            averaged = jax.lax.pmean(jax.tree.map(lambda g: g.astype(dtype), grads), AXIS)
            return jax.tree.map(lambda g: g.astype(jnp.float32) + dummy[0], averaged), None

        return jax.lax.scan(step, params, None, length=steps)[0]

    return epoch


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as text: step time and speedup against `1 gpu` of the same flag set and batch."""
    baselines = {(row["flag_set"], row["batch"]): row.get("step_ms") for row in rows if row["mode"] == "1 gpu"}
    lines = [f"{'flag set':<38} {'batch':>6} {'mode':<31} {'step (ms)':>9} {'epoch (s)':>9} {'vs 1 gpu':>8}"]
    for row in rows:
        if row["error"]:
            lines.append(f"{row['flag_set']:<38} {row['batch']:>6} {row['mode']:<31} ERROR {row['error']}")
            continue
        base = baselines.get((row["flag_set"], row["batch"]))
        ratio = f"{base / row['step_ms']:.2f}x" if base and "only" not in row["mode"] else "-"
        lines.append(
            f"{row['flag_set']:<38} {row['batch']:>6} {row['mode']:<31} {row['step_ms']:>9.3f} "
            f"{row['steady_epoch_s']:>9.4f} {ratio:>8}"
        )
    return "\n".join(lines)


def _batches(text: str) -> tuple[int, ...]:
    try:
        batches = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of batch sizes") from None
    if any(batch < 2 or batch % 2 or NUM_SAMPLES % batch for batch in batches):
        raise argparse.ArgumentTypeError(f"every batch must be even and divide {NUM_SAMPLES:,}")
    return batches


if __name__ == "__main__":
    sys.exit(main())
