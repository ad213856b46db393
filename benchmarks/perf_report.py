"""Shared pieces of the benchmarks (ceilings.py, peers.py, presets.py, engine_overhead.py): the record of where
and when a benchmark ran, a plain-text table, the JSON file, flushed progress lines, loading the data, and the
bare `model.fit` baseline.

Nothing here imports TensorFlow, Streamlit or Altair: the GPU machine has none of them.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pathlib
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lib.backend import backend_name, library_versions  # noqa: E402
from lib.devices import keras_device_name  # noqa: E402


def log(message: str) -> None:
    """Prints a progress line at once (the GPU machine's output is read while the script runs)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_record(benchmark: str) -> dict[str, Any]:
    """Where and when the benchmark ran: date, command, backend, hardware, library versions, load.

    Args:
        benchmark: The script's name, e.g. "peers".
    """
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([pathlib.Path(sys.executable).name, *sys.argv]),
        "backend": backend_name(),
        "hardware": _hardware(),
        "versions": library_versions(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _hardware() -> dict[str, Any]:
    try:
        from lib.hardware import describe_hardware
    except ImportError:
        import platform

        return {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()}
    return describe_hardware(probe_devices=True)


def describe_record(record: dict[str, Any]) -> str:
    """One line for the top of a printed table: backend, CPU, cores, GPUs, date."""
    hardware = record["hardware"]
    gpus = ", ".join(hardware.get("gpus") or []) or "no GPU"
    cpu = hardware.get("cpu_model") or hardware.get("platform") or "unknown CPU"
    cores = hardware.get("logical_cores") or hardware.get("cpus")
    return f"{record['date']} | backend {record['backend']} | {cpu}, {cores} cores | {gpus}"


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> None:
    """Prints rows as an aligned table.

    Args:
        rows: One dict per row.
        columns: (key, heading, format spec such as ".3f" or "" for text) per column.
    """
    cells = [[_cell(row.get(key), spec) for key, _, spec in columns] for row in rows]
    headings = [heading for _, heading, _ in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headings)]
    numeric = [bool(spec) for _, _, spec in columns]  # numbers right-aligned, text left-aligned
    print("  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip(), flush=True)
    print("  ".join("-" * w for w in widths), flush=True)
    for row in cells:
        parts = [c.rjust(w) if right else c.ljust(w) for c, w, right in zip(row, widths, numeric, strict=True)]
        print("  ".join(parts).rstrip())
    sys.stdout.flush()


def _cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if spec and isinstance(value, int | float):
        return format(value, spec)
    return str(value)


def write_json(path: pathlib.Path | None, payload: dict[str, Any], *, quiet: bool = False) -> None:
    """Writes the payload (NaN and infinity as null) when a path was given.

    Scripts also write after each finished row (`quiet`), so a run stopped by a time limit keeps its rows.
    """
    if path is None:
        return
    if hasattr(os, "getloadavg"):  # other work on the machine while it ran makes its numbers slower
        payload = {**payload, "load_average_1min_end": os.getloadavg()[0]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(payload), indent=2) + "\n")
    if not quiet:
        log(f"wrote {path}")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def load_data(name: str, samples: int | None, synthetic: bool, test_samples: int = 1000):
    """Loads a dataset (or generates one of the same shapes) for a benchmark.

    Args:
        name: "cifar10" or "fashion_mnist".
        samples: Training samples wanted; the dataset's full size when None.
        synthetic: Generate the data instead of loading it.
        test_samples: Test samples to generate with `synthetic`.

    Raises:
        SystemExit: The dataset is not available here (exit status 2, with the fix).
    """
    from lib.datasets import DATASETS, DatasetUnavailableError, load_dataset, synthetic_dataset

    if synthetic:
        return synthetic_dataset(name, samples or DATASETS[name].num_train, test_samples, seed=0)
    try:
        return load_dataset(name)
    except DatasetUnavailableError as error:
        print(f"error: {error} Or run with --synthetic.", file=sys.stderr)
        raise SystemExit(2) from error


def bare_fit(spec, data, device: str) -> tuple[list[float], list[float]]:
    """The baseline every engine number is compared with: `build_model` + a plain `model.fit`, no engine.

    Returns:
        Wall seconds and training loss of each epoch (Keras syncs with the device before `on_epoch_end`).
    """
    import keras

    from lib.model import build_model

    epoch_s: list[float] = []
    started = [0.0]
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.__setitem__(0, time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_s.append(time.perf_counter() - started[0]),
    )
    keras.utils.clear_session()
    with keras.device(keras_device_name(device)):
        model = build_model(spec, data.image_shape, data.num_classes)
        history = model.fit(
            data.x_train,
            data.y_train,
            batch_size=spec.batch_size,
            epochs=spec.epochs,
            shuffle=True,
            verbose=0,
            callbacks=[clock],
        )
    keras.utils.clear_session()
    return epoch_s, [float(loss) for loss in history.history["loss"]]


def csv_list(text: str) -> list[str]:
    """Splits "a,b, c" into ["a", "b", "c"] (argparse type)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def int_list(text: str) -> list[int]:
    """Splits "32,2048" into [32, 2048] (argparse type)."""
    return [int(item) for item in csv_list(text)]


def device_resident_run(spec, data, device: str, *, evaluate: bool = True, profile: bool = False):
    """Trains a spec with `lib.device_resident` (input on the device) and returns a `DeviceRun` like the engine's.

    Args:
        spec: The `ModelSpec` to train.
        data: `lib.engine.TrainingData` (float32 images, encoded labels, whole batches).
        device: Normalised device name.
        evaluate: Also evaluate on `data.x_test` with `model.evaluate`.
        profile: Train one extra epoch under the JAX profiler; it is left out of the run's timings and
            its `summarise_trace` is returned as well.

    Returns:
        The `DeviceRun`, and the trace summary (None without `profile`).
    """
    import keras

    from lib.device_resident import fit_device_resident
    from lib.model import build_model

    keras.utils.clear_session()
    with tempfile.TemporaryDirectory(prefix="jax-trace-") as folder:
        tracing: dict[str, Any] = {}

        def start_trace_before_extra_epoch(epoch, stats) -> None:
            if profile and epoch == spec.epochs:
                tracing.update(start_trace(folder))

        with keras.device(keras_device_name(device)):
            model = build_model(spec, data.image_shape, data.num_classes)
            history = fit_device_resident(
                model,
                data.x_train,
                data.y_train,
                batch_size=spec.batch_size,
                epochs=spec.epochs + (1 if profile else 0),
                seed=spec.seed,
                on_epoch_end=start_trace_before_extra_epoch,
            )
            trace = None
            if profile:
                trace = stop_trace(tracing, pathlib.Path(folder), history[-1].seconds)
                history = history[:-1]
            test = None
            if evaluate and len(data.x_test):
                test = model.evaluate(data.x_test, data.y_test, batch_size=spec.batch_size, verbose=0)
    keras.utils.clear_session()
    return _device_run(spec, data, device, history, test), trace


def profile_fit(spec, data, device: str) -> dict[str, Any]:
    """Profiles one steady epoch of `build_model` + `model.fit` (what the engine runs) with the JAX profiler.

    Trains two epochs on the same arrays: epoch 1 compiles, epoch 2 is traced.

    Returns:
        `summarise_trace` of epoch 2.
    """
    import keras

    from lib.model import build_model

    class TraceSecondEpoch(keras.callbacks.Callback):
        def __init__(self, folder: str):
            super().__init__()
            self.folder, self.started, self.wall_s, self.tracing = folder, 0.0, 0.0, {}

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.tracing = start_trace(self.folder)
                self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.wall_s = time.perf_counter() - self.started

    keras.utils.clear_session()
    with tempfile.TemporaryDirectory(prefix="jax-trace-") as folder:
        tracer = TraceSecondEpoch(folder)
        with keras.device(keras_device_name(device)):
            model = build_model(spec, data.image_shape, data.num_classes)
            model.fit(
                data.x_train,
                data.y_train,
                batch_size=spec.batch_size,
                epochs=2,
                shuffle=True,
                verbose=0,
                callbacks=[tracer],
            )
        summary = stop_trace(tracer.tracing, pathlib.Path(folder), tracer.wall_s)
    keras.utils.clear_session()
    return summary


def start_trace(folder: str) -> dict[str, Any]:
    """Starts the JAX profiler without its Python tracer (which would slow every step and bloat the trace).

    Returns:
        {"started": True}, or {"error": why} when the profiler cannot start (a profile must never cost the
        benchmark its timings).
    """
    import jax

    try:
        options = jax.profiler.ProfileOptions()
        options.python_tracer_level = 0
        options.host_tracer_level = 1
        jax.profiler.start_trace(folder, create_perfetto_trace=True, profiler_options=options)
    except Exception as error:  # CUPTI missing, a trace already running, an older JAX: report, do not fail
        return {"error": f"profiler did not start: {type(error).__name__}: {error}"}
    return {"started": True}


def stop_trace(tracing: dict[str, Any], folder: pathlib.Path, wall_s: float) -> dict[str, Any]:
    """Stops a trace begun by `start_trace` and summarises it; passes on a start error instead."""
    import jax

    if not tracing.get("started"):
        return {"wall_s": wall_s, "error": tracing.get("error", "the profiler was not started")}
    try:
        jax.profiler.stop_trace()
        return summarise_trace(folder, wall_s)
    except Exception as error:  # a broken trace must not cost the benchmark its timings
        return {"wall_s": wall_s, "error": f"trace not read: {type(error).__name__}: {error}"}


def _device_run(spec, data, device: str, history, test):
    """A `DeviceRun` from per-epoch `EpochStats`, filled in as `lib.engine` fills its runs."""
    import keras

    from lib.device_run import DeviceRun
    from lib.spec import flops_per_epoch

    num_train = len(data.x_train)
    input_size = int(math.prod(data.image_shape))
    run = DeviceRun(
        device=device,
        backend=keras.backend.backend(),
        synthetic=data.synthetic,
        num_train=num_train,
        num_test=len(data.x_test) if test else 0,
        train_loss=[stats.loss for stats in history],
        train_accuracy=[stats.accuracy for stats in history],
        test_loss=float(test[0]) if test else None,
        test_accuracy=float(test[1]) if test else None,
    )
    run.set_epoch_times(
        [stats.seconds for stats in history], flops_per_epoch(spec, num_train, input_size, data.num_classes)
    )
    return run


MATMUL_KERNEL = re.compile(r"gemm|xmma|cutlass|nvjet|cublas|wgmma|matmul|\bdot", re.IGNORECASE)  # GEMM kernel names
TOP_KERNELS = 6  # kernels listed per trace line, by total time


def summarise_trace(folder: pathlib.Path, wall_s: float) -> dict[str, Any]:
    """Reads a JAX Perfetto trace and says how busy the device was, and with what.

    Device lines are the trace's processes named like a GPU ("/device:GPU:0"); kernel lines are their
    "Stream" threads (the other lines repeat the same time per XLA op or module). Busy time is the union
    of the kernel intervals, so overlapping kernels are not counted twice.

    Args:
        folder: The folder `jax.profiler.start_trace(folder, create_perfetto_trace=True)` wrote into.
        wall_s: Wall time of the traced work, read by the caller's clock.

    Returns:
        wall_s, device_busy_s, device_busy_share, matmul_kernel_s (GEMM kernels by name), other_kernel_s,
        kernels (count), and per line its name, events, busy seconds and top kernels. An "error" key when the
        trace holds no device lines (JAX on a CPU runs XLA on host threads, which this does not break down).
    """
    files = sorted(folder.rglob("perfetto_trace.json.gz"))
    if not files:
        return {"wall_s": wall_s, "error": "the profiler wrote no Perfetto trace"}
    with gzip.open(files[-1], "rt") as handle:
        trace = json.load(handle)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    processes = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    devices = {pid for pid, name in processes.items() if "gpu" in name.lower()}
    lines: dict[tuple[Any, Any], list[tuple[float, float, str]]] = {}
    for event in events:
        if event.get("ph") == "X" and event.get("pid") in devices:
            lines.setdefault((event["pid"], event.get("tid")), []).append(
                (float(event["ts"]), float(event.get("dur", 0.0)), str(event.get("name", "")))
            )
    if not lines:
        return {"wall_s": wall_s, "error": f"no GPU lines in the trace (processes: {sorted(processes.values())})"}
    described = [
        _describe_line(f"{processes[key[0]]} / {threads.get(key, key[1])}", spans) for key, spans in lines.items()
    ]
    kernel_keys = [key for key in lines if "stream" in str(threads.get(key, "")).lower()] or list(lines)
    kernels = [span for key in kernel_keys for span in lines[key]]
    busy_s = _union_us(kernels) / 1e6
    matmul_s = sum(dur for _, dur, name in kernels if MATMUL_KERNEL.search(name)) / 1e6
    return {
        "wall_s": wall_s,
        "device_busy_s": busy_s,
        "device_busy_share": busy_s / wall_s if wall_s else None,
        "matmul_kernel_s": matmul_s,
        "other_kernel_s": sum(dur for _, dur, _ in kernels) / 1e6 - matmul_s,
        "kernels": len(kernels),
        "lines": described,
    }


def _describe_line(name: str, spans: list[tuple[float, float, str]]) -> dict[str, Any]:
    totals: dict[str, float] = {}
    for _, dur, kernel in spans:
        totals[kernel] = totals.get(kernel, 0.0) + dur
    top = sorted(totals.items(), key=lambda item: -item[1])[:TOP_KERNELS]
    return {
        "line": name,
        "events": len(spans),
        "busy_s": _union_us(spans) / 1e6,
        "top": [{"name": kernel[:120], "s": dur / 1e6} for kernel, dur in top],
    }


def _union_us(spans: list[tuple[float, float, str]]) -> float:
    """Total length of the union of [ts, ts + dur) intervals, in the trace's microseconds."""
    total, end = 0.0, float("-inf")
    for start, dur, _ in sorted(spans):
        stop = start + dur
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total
