"""The tutorial presets at their own batch size (32) and the tuned presets, through the engine, against
the device's ceiling measured in the same run, each with the app's one-line diagnosis.

Configurations per dataset (CIFAR-10 and Fashion-MNIST):
- tutorial: the seed preset as the tutorial ran it (batch 32, one step per call);
- tutorial + steps_per_execution: the same batch size and math, K steps per compiled call (--spe, default 64);
- tuned: the tuned preset (larger batch, steps_per_execution, XLA);
- tuned + mixed_bfloat16: the tuned preset in mixed precision (GPUs only: CPUs without bfloat16 units
  emulate it);
and with --device-resident (JAX backend only: `lib.device_resident`, data and shuffle on the device, one compiled
call per epoch): the tutorial preset, the tuned preset, and the tuned preset in mixed_bfloat16.
Steady epoch = median of epochs 2..n; TFLOP/s = training FLOPs per epoch / steady epoch; "% of ceiling"
compares with the device's matmul ceiling in the precision the run computes in (`lib.diagnosis`).

Run:
    python benchmarks/presets.py --samples 4096 --epochs 3 --synthetic        # CPU check, TensorFlow backend
    KERAS_BACKEND=jax python benchmarks/presets.py --synthetic --device-resident --json out/presets.json
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras  # noqa: E402

from benchmarks.perf_report import (  # noqa: E402
    csv_list,
    describe_record,
    device_resident_run,
    load_data,
    log,
    print_table,
    profile_fit,
    run_record,
    write_json,
)
from lib import device_resident  # noqa: E402
from lib.backend import backend_name  # noqa: E402
from lib.ceilings import CeilingError, measure_ceilings  # noqa: E402
from lib.device_run import DeviceRun  # noqa: E402
from lib.devices import has_gpu, list_devices, resolve_device  # noqa: E402
from lib.diagnosis import assess, run_precision  # noqa: E402
from lib.engine import prepare_data, train_on_devices  # noqa: E402
from lib.presets import PRESETS, get_preset  # noqa: E402
from lib.spec import ModelSpec  # noqa: E402

DEFAULT_PRESETS = ("cifar10-seed", "cifar10-tuned", "fashion-seed", "fashion-tuned")
COLUMNS = (
    ("config", "configuration", ""),
    ("batch_size", "batch", "d"),
    ("steps_per_call", "steps per call", ""),
    ("precision", "precision", ""),
    ("first_epoch_s", "epoch 1 (s)", ".3f"),
    ("steady_epoch_s", "steady epoch (s)", ".4f"),
    ("best_epoch_s", "best epoch (s)", ".4f"),
    ("tflops", "TFLOP/s", ".4g"),
    ("share_pct", "% of ceiling", ".1f"),
    ("test_accuracy", "test acc", ".3f"),
    ("diagnosis", "diagnosis (steady state)", ""),
)


PROFILE_COLUMNS = (
    ("config", "configuration", ""),
    ("wall_s", "traced epoch (s)", ".4f"),
    ("busy_s", "GPU busy (s)", ".4f"),
    ("busy_pct", "GPU busy %", ".1f"),
    ("matmul_s", "GEMM kernels (s)", ".4f"),
    ("other_s", "other kernels (s)", ".4f"),
    ("kernels", "kernels", "d"),
    ("top", "top kernel", ""),
)


@dataclass(frozen=True)
class Config:
    """One row of the benchmark: a label, a spec, and whether the input stays on the device."""

    label: str  # shown in the table
    spec: ModelSpec  # what trains
    device_resident: bool = False  # train with lib.device_resident instead of the engine
    notes: dict[str, Any] = field(default_factory=dict)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", type=csv_list, default=list(DEFAULT_PRESETS), help="comma-separated names")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per configuration, at least 2 (default 4)")
    parser.add_argument("--samples", type=int, help="training samples (default: the whole training split)")
    parser.add_argument("--test-samples", type=int, default=1000, help="test samples evaluated (default 1000)")
    parser.add_argument("--synthetic", action="store_true", help="generated data of the real shapes")
    parser.add_argument("--device", help="device (default: gpu:0 when present, else cpu:0)")
    parser.add_argument("--spe", type=int, default=64, help="steps_per_execution for the tutorial rows (default 64)")
    parser.add_argument(
        "--device-resident", action="store_true", help="add lib.device_resident rows (JAX backend only)"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip measuring the device's matmul ceiling")
    parser.add_argument("--ceiling-n", type=int, help="matrix size of the ceiling (default 4096 CPU, 8192 GPU)")
    parser.add_argument(
        "--profile", action="store_true", help="JAX profiler trace of one extra steady epoch per row (GPU busy time)"
    )
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.profile and backend_name() != "jax":
        parser.error("--profile uses the JAX profiler: run with KERAS_BACKEND=jax")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 compiles; the steady state needs more)")
    unknown = [name for name in args.presets if name not in PRESETS]
    if unknown:
        parser.error(f"unknown presets {unknown}; choose from {', '.join(PRESETS)}")
    return args


def configs_for(name: str, args, device: str) -> list[Config]:
    """The configurations of one preset, as the module docstring lists them."""
    spec = get_preset(name).spec.with_changes(epochs=args.epochs)
    resident = args.device_resident and device_resident.supported()
    if name.endswith("-seed"):
        configs = [Config(f"{name} (tutorial)", spec)]
        if args.spe > 1:
            tuned_dispatch = spec.with_changes(steps_per_execution=args.spe, jit_compile=True)
            configs.append(Config(f"{name} + steps_per_execution {args.spe}", tuned_dispatch))
        if resident:
            configs.append(Config(f"{name}, input on device", spec, device_resident=True))
        return configs
    mixed = spec.with_changes(precision="mixed_bfloat16")
    configs = [Config(name, spec)]
    if device.startswith("gpu"):
        configs.append(Config(f"{name} + mixed_bfloat16", mixed))
    if resident:
        configs.append(Config(f"{name}, input on device", spec, device_resident=True))
        configs.append(Config(f"{name}, input on device, mixed_bfloat16", mixed, device_resident=True))
    return configs


def run_config(config: Config, dataset, device: str, args) -> tuple[DeviceRun, dict | None]:
    """Trains one configuration; with --profile, also profiles one steady epoch (not counted in the timings)."""
    spec = config.spec
    data = prepare_data(spec, dataset, sample_limit=args.samples, test_limit=args.test_samples)
    if config.device_resident:
        return device_resident_run(spec, data, device, profile=args.profile)
    run = train_on_devices(spec, dataset, [device], sample_limit=args.samples, test_limit=args.test_samples)[0]
    if run.status != "done":
        raise RuntimeError(f"{config.label}: {run.status}: {run.error}")
    return run, profile_fit(spec, data, device) if args.profile else None


def measure_device_ceilings(device: str, precisions: set[str], args) -> list:
    if args.no_ceiling:
        return []
    log(f"measuring the matmul ceiling of {device} ({', '.join(sorted(precisions))})...")
    try:
        ceilings = measure_ceilings(device, args.ceiling_n, precisions=sorted(precisions))
    except CeilingError as error:
        log(f"ceiling not measured: {error}")
        return []
    for ceiling in ceilings:
        log(f"ceiling {ceiling.precision}: {ceiling.flops_per_s / 1e12:.4g} TFLOP/s at n={ceiling.n} {ceiling.note}")
    return ceilings


def row_for(config: Config, run: DeviceRun, ceilings: list) -> dict[str, Any]:
    result = assess(run, config.spec, ceilings)
    return {
        "config": config.label,
        "batch_size": config.spec.batch_size,
        "steps_per_call": "epoch" if config.device_resident else str(config.spec.steps_per_execution),
        "precision": run_precision(config.spec.precision, run.backend, run.device),
        "device_resident": config.device_resident,
        "num_train": run.num_train,
        "epoch_s": run.epoch_s,
        "first_epoch_s": run.first_epoch_s,
        "steady_epoch_s": run.steady_epoch_s,
        "best_epoch_s": min(run.epoch_s[1:] or run.epoch_s),  # least disturbed by other work on the machine
        "tflops": run.achieved_flops_per_s / 1e12,
        "share_pct": None if result.share_of_ceiling is None else 100 * result.share_of_ceiling,
        "train_loss": run.train_loss,
        "test_accuracy": run.test_accuracy,
        "compile_share_of_first_epoch": result.compile_share_of_first_epoch,
        "diagnosis": result.steady_message,
        "run_diagnosis": result.message,
        "spec": config.spec.to_dict(),
    }


def profile_columns(trace: dict) -> dict[str, Any]:
    """The profile table's cells from a `summarise_trace` result."""
    if "error" in trace:
        return {"wall_s": trace["wall_s"], "top": trace["error"]}
    share = trace["device_busy_share"]
    lines = sorted(trace["lines"], key=lambda line: -line["busy_s"])
    top = lines[0]["top"][0] if lines and lines[0]["top"] else {"name": "-", "s": 0.0}
    return {
        "wall_s": trace["wall_s"],
        "busy_s": trace["device_busy_s"],
        "busy_pct": None if share is None else 100 * share,
        "matmul_s": trace["matmul_kernel_s"],
        "other_s": trace["other_kernel_s"],
        "kernels": trace["kernels"],
        "top": f"{top['name'][:60]} ({top['s']:.4f} s)",
    }


def profile_line(trace: dict) -> str:
    """One log line from a trace summary."""
    cells = profile_columns(trace)
    if "busy_s" not in cells:
        return cells["top"]
    return (
        f"epoch {cells['wall_s']:.4f} s, GPU busy {cells['busy_s']:.4f} s ({cells['busy_pct']:.0f}%), "
        f"GEMM {cells['matmul_s']:.4f} s, other kernels {cells['other_s']:.4f} s, {cells['kernels']} kernels"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    record = run_record("presets")
    print(describe_record(record), flush=True)
    device = resolve_device(args.device or ("gpu:0" if has_gpu(list_devices()) else "cpu:0"))
    if args.device_resident and not device_resident.supported():
        log(device_resident.unsupported_reason())
    configs = [config for name in args.presets for config in configs_for(name, args, device)]
    precisions = {run_precision(c.spec.precision, keras.backend.backend(), device) for c in configs}
    ceilings = measure_device_ceilings(device, precisions, args)
    datasets = {}
    rows = []
    payload = {**record, "device": device, "ceilings": [c.to_dict() for c in ceilings], "rows": rows}
    for config in configs:
        write_json(args.json, payload, quiet=True)
        name = config.spec.dataset
        if name not in datasets:
            datasets[name] = load_data(name, args.samples, args.synthetic, test_samples=args.test_samples)
        log(f"{config.label}: training...")
        try:
            run, trace = run_config(config, datasets[name], device, args)
        except Exception as error:  # one failed configuration must not lose the others' numbers
            log(f"{config.label}: FAILED: {type(error).__name__}: {error}")
            rows.append({"config": config.label, "diagnosis": f"failed: {type(error).__name__}", "error": str(error)})
            continue
        rows.append({**row_for(config, run, ceilings), "profile": trace})
        epochs = ", ".join(f"{t:.3f}" for t in run.epoch_s)
        log(f"{config.label}: epochs {epochs} s; {rows[-1]['tflops']:.4g} TFLOP/s; {rows[-1]['diagnosis']}")
        if trace:
            log(f"{config.label}: profile: {profile_line(trace)}")
    synthetic = sorted({str(d.synthetic) for d in datasets.values()})
    print(f"\nPresets on {device} ({keras.backend.backend()}), {args.epochs} epochs, synthetic data: {synthetic}")
    print_table(rows, COLUMNS)
    profiled = [{"config": row["config"], **profile_columns(row["profile"])} for row in rows if row.get("profile")]
    if profiled:
        print("\nOne extra steady epoch under the JAX profiler (kernel time from the trace's GPU stream lines)")
        print_table(profiled, PROFILE_COLUMNS)
    write_json(args.json, payload)
    return 0 if rows and all(math.isfinite(row.get("steady_epoch_s") or math.nan) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
