"""The engine against its peers, in one run: same MLP, same data, same batch size, same device.

Peers, each timed per epoch (epoch 1 includes compilation or warm-up; steady = median of epochs 2..n):
- engine: `lib.engine.train_on_devices`, as the app runs it;
- engine, input on device: the same model trained by `lib.device_resident` (data and shuffle on the device,
  one compiled call per epoch; JAX backend only);
- keras fit: `build_model` + a bare `model.fit` on the same NumPy arrays, same compile settings;
- pytorch eager: a hand-written PyTorch loop for the same MLP (Linear/ReLU layers, logits + cross-entropy,
  the spec's optimizer and learning rate) with the data already on the device, shuffled there with
  `torch.randperm`; on GPUs once with TF32 matmuls allowed and once in strict float32.
Training FLOPs per epoch are `lib.spec.flops_per_sample` x samples (6 x weights per sample).

Run:
    python benchmarks/peers.py --preset cifar10-seed --batch-sizes 256 --samples 10240 --synthetic
    KERAS_BACKEND=jax python benchmarks/peers.py --synthetic --json out/peers.json   # GPU: batch 32 and 2048
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.perf_report import (  # noqa: E402
    bare_fit,
    csv_list,
    describe_record,
    int_list,
    load_data,
    log,
    print_table,
    run_record,
    write_json,
)
from lib import device_resident  # noqa: E402
from lib.device_run import steady_epoch_seconds  # noqa: E402
from lib.devices import has_gpu, list_devices, resolve_device  # noqa: E402
from lib.diagnosis import run_precision  # noqa: E402
from lib.engine import TrainingData, prepare_data, train_on_devices  # noqa: E402
from lib.presets import PRESETS, get_preset  # noqa: E402
from lib.spec import ModelSpec, flops_per_sample  # noqa: E402

PEERS = ("engine", "device-resident", "keras-fit", "torch")
TORCH_MISSING = "pytorch peer: not available (pip install torch)"
COLUMNS = (
    ("peer", "peer", ""),
    ("batch_size", "batch", "d"),
    ("precision", "precision", ""),
    ("first_epoch_s", "epoch 1 (s)", ".3f"),
    ("steady_epoch_s", "steady epoch (s)", ".4f"),
    ("best_epoch_s", "best epoch (s)", ".4f"),
    ("samples_per_s", "samples/s", ",.0f"),
    ("tflops", "TFLOP/s", ".4g"),
    ("vs_engine", "time / engine", ".3f"),
    ("final_loss", "last loss", ".4f"),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", default="cifar10-seed", choices=sorted(PRESETS), help="model (default cifar10-seed)"
    )
    parser.add_argument("--batch-sizes", type=int_list, default=[32, 2048], help="comma-separated (default 32,2048)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per peer, at least 2 (default 4)")
    parser.add_argument("--samples", type=int, help="training samples (default: the whole training split)")
    parser.add_argument("--synthetic", action="store_true", help="generated data of the real shapes")
    parser.add_argument("--device", help="device to train on (default: gpu:0 when present, else cpu:0)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), help="override the preset's precision")
    parser.add_argument("--steps-per-execution", type=int, help="override the preset's steps_per_execution")
    parser.add_argument("--peers", type=csv_list, default=list(PEERS), help=f"subset of {','.join(PEERS)}")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 compiles or warms up; the steady state needs more)")
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {','.join(PEERS)}")
    return args


def default_device() -> str:
    """gpu:0 when the backend sees a GPU, else cpu:0."""
    return "gpu:0" if has_gpu(list_devices()) else "cpu:0"


def timing_row(peer: str, spec: ModelSpec, precision: str, epoch_s: list[float], flops: dict, loss: float | None):
    """One table row from per-epoch times: steady epoch, throughput and TFLOP/s.

    `flops` holds "num_train" (samples per epoch) and "per_epoch" (training FLOPs per epoch).
    """
    steady = steady_epoch_seconds(epoch_s)
    num_train = flops["num_train"]
    return {
        "peer": peer,
        "batch_size": spec.batch_size,
        "precision": precision,
        "epoch_s": epoch_s,
        "first_epoch_s": epoch_s[0],
        "steady_epoch_s": steady,
        "best_epoch_s": min(epoch_s[1:] or epoch_s),  # least disturbed by other work on the machine
        "samples_per_s": num_train / steady,
        "tflops": flops["per_epoch"] / steady / 1e12,
        "final_loss": loss,
        "spec": spec.to_dict(),
    }


def run_engine(spec: ModelSpec, dataset, device: str, samples: int | None, flops, label: str = "engine") -> dict:
    run = train_on_devices(spec, dataset, [device], sample_limit=samples, test_limit=0)[0]
    if run.status != "done":
        raise RuntimeError(f"engine run {run.status}: {run.error}")
    precision = run_precision(spec.precision, run.backend, device)
    return timing_row(label, spec, precision, run.epoch_s, flops, run.train_loss[-1])


def run_keras_fit(spec: ModelSpec, data: TrainingData, device: str, flops) -> dict[str, Any]:
    epoch_s, losses = bare_fit(spec, data, device)
    precision = run_precision(spec.precision, keras.backend.backend(), device)
    return timing_row("keras fit (bare)", spec, precision, epoch_s, flops, losses[-1])


def run_torch(spec: ModelSpec, data: TrainingData, device: str, tf32: bool, flops) -> dict[str, Any]:
    """A hand-written PyTorch eager training loop with the data already on the device."""
    import torch

    target = torch.device("cuda", int(device.split(":")[1])) if device.startswith("gpu") else torch.device("cpu")
    torch.manual_seed(spec.seed)
    model = torch_mlp(torch, spec, int(np.prod(data.image_shape)), data.num_classes).to(target)
    optimizer = torch_optimizer(torch, spec, model.parameters())
    x = torch.from_numpy(data.x_train.reshape(len(data.x_train), -1)).to(target)
    labels = data.y_train.argmax(axis=1) if data.y_train.ndim == 2 else data.y_train
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(target)
    mixed = spec.precision == "mixed_bfloat16"
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        epoch_s, loss = torch_epochs(torch, model, optimizer, x, y, spec, target, mixed)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    precision = "bfloat16" if mixed else ("tf32" if tf32 else "float32 strict")
    return timing_row("pytorch eager", spec, precision, epoch_s, flops, loss)


def torch_mlp(torch, spec: ModelSpec, inputs: int, classes: int):
    activations = {
        "relu": torch.nn.ReLU,
        "tanh": torch.nn.Tanh,
        "sigmoid": torch.nn.Sigmoid,
        "gelu": torch.nn.GELU,
        "elu": torch.nn.ELU,
        "selu": torch.nn.SELU,
        "linear": torch.nn.Identity,
    }
    layers, width = [], inputs
    for units in spec.hidden_units:
        layers += [torch.nn.Linear(width, units), activations[spec.hidden_activation]()]
        width = units
    # Logits + CrossEntropyLoss is softmax + categorical cross-entropy, as the Keras model computes it.
    layers.append(torch.nn.Linear(width, classes))
    model = torch.nn.Sequential(*layers)
    for layer in model:  # Keras' Dense defaults: Glorot-uniform kernels, zero biases
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


def torch_optimizer(torch, spec: ModelSpec, parameters):
    rate = spec.learning_rate
    makers = {
        "sgd": lambda: torch.optim.SGD(parameters, lr=rate),
        "adam": lambda: torch.optim.Adam(parameters, lr=rate, eps=1e-7),  # Keras' epsilon
        "adamw": lambda: torch.optim.AdamW(parameters, lr=rate, eps=1e-7, weight_decay=0.004),
        "rmsprop": lambda: torch.optim.RMSprop(parameters, lr=rate, alpha=0.9, eps=1e-7),
        "adagrad": lambda: torch.optim.Adagrad(parameters, lr=rate, initial_accumulator_value=0.1),
        "nadam": lambda: torch.optim.NAdam(parameters, lr=rate, eps=1e-7),
    }
    return makers[spec.optimizer]()


def torch_epochs(torch, model, optimizer, x, y, spec: ModelSpec, target, mixed: bool) -> tuple[list[float], float]:
    batch, steps = spec.batch_size, len(x) // spec.batch_size
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_s, mean_loss = [], float("nan")
    for _ in range(spec.epochs):
        synchronize(torch, target)
        started = time.perf_counter()
        order = torch.randperm(len(x), device=target)
        total = torch.zeros((), device=target)
        for step in range(steps):
            index = order[step * batch : (step + 1) * batch]
            with torch.autocast(device_type=target.type, dtype=torch.bfloat16, enabled=mixed):
                logits = model(x[index])
            loss = loss_fn(logits.float(), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        mean_loss = float(total) / steps  # float() waits for the device
        synchronize(torch, target)
        epoch_s.append(time.perf_counter() - started)
    return epoch_s, mean_loss


def synchronize(torch, target) -> None:
    if target.type == "cuda":
        torch.cuda.synchronize(target)


def run_batch_size(args, spec: ModelSpec, dataset, device: str) -> list[dict[str, Any]]:
    data = prepare_data(spec, dataset, sample_limit=args.samples, test_limit=0)
    flops = {
        "num_train": len(data.x_train),
        "per_epoch": flops_per_sample(spec, int(np.prod(data.image_shape)), data.num_classes) * len(data.x_train),
    }
    log(f"batch {spec.batch_size}: {len(data.x_train)} samples, {flops['per_epoch'] / 1e12:.3f} TFLOP per epoch")
    rows = []
    for peer in args.peers:
        try:
            rows.extend(run_peer(peer, args, spec, dataset, data, device, flops))
        except Exception as error:  # one failed peer must not lose the others' numbers
            log(f"batch {spec.batch_size}: {peer}: FAILED: {type(error).__name__}: {error}")
            rows.append({"peer": f"{peer} (failed)", "batch_size": spec.batch_size, "error": str(error)})
    engine = next((row for row in rows if row["peer"] == "engine"), None)
    for row in rows:
        if engine and "steady_epoch_s" in row:
            row["vs_engine"] = row["steady_epoch_s"] / engine["steady_epoch_s"]
    return rows


def run_peer(peer: str, args, spec: ModelSpec, dataset, data: TrainingData, device: str, flops) -> list[dict]:
    log(f"batch {spec.batch_size}: {peer}...")
    if peer == "engine":
        rows = [run_engine(spec, dataset, device, args.samples, flops)]
    elif peer == "device-resident":
        if not device_resident.supported():
            log(device_resident.unsupported_reason())
            return []
        resident = spec.with_changes(device_resident=True)
        rows = [run_engine(resident, dataset, device, args.samples, flops, label="engine, input on device")]
    elif peer == "keras-fit":
        rows = [run_keras_fit(spec, data, device, flops)]
    else:
        if importlib.util.find_spec("torch") is None:
            log(TORCH_MISSING)
            return []
        modes = (True, False) if device.startswith("gpu") and spec.precision == "float32" else (False,)
        rows = [run_torch(spec, data, device, tf32, flops) for tf32 in modes]
    for row in rows:
        epochs = ", ".join(f"{t:.3f}" for t in row["epoch_s"])
        log(f"batch {spec.batch_size}: {row['peer']} ({row['precision']}): epochs {epochs} s")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    record = run_record("peers")
    print(describe_record(record), flush=True)
    device = resolve_device(args.device or default_device())
    preset = get_preset(args.preset)
    changes = {"epochs": args.epochs}
    if args.precision:
        changes["precision"] = args.precision
    if args.steps_per_execution:
        changes["steps_per_execution"] = args.steps_per_execution
    dataset = load_data(preset.spec.dataset, args.samples, args.synthetic)
    rows = []
    payload = {**record, "preset": args.preset, "device": device, "synthetic": dataset.synthetic, "rows": rows}
    for batch_size in args.batch_sizes:
        spec = preset.spec.with_changes(batch_size=batch_size, **changes)
        rows.extend(run_batch_size(args, spec, dataset, device))
        write_json(args.json, payload, quiet=True)  # a run stopped by a time limit keeps its rows
    title = f"{args.preset} on {device}, {'synthetic' if dataset.synthetic else 'real'} data, {args.epochs} epochs"
    print(f"\n{title}", flush=True)
    print_table(rows, COLUMNS)
    write_json(args.json, payload)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
