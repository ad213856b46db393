"""Data-parallel training over all GPUs of one machine, through the backends' own distribution engines.

One model is trained on several devices at once: every device ("replica") holds a full copy of the
weights, each global batch is split evenly between the replicas, and the gradients are averaged across
them before every update, so the weights stay identical and the maths is that of one device with the
global batch. Nothing here splits batches or averages gradients by hand; the backend's engine does it:

- TensorFlow: `tf.distribute.MirroredStrategy(devices=[...])`, built and trained inside `strategy.scope()`;
- JAX: `keras.distribution.DataParallel(devices=[...])`, made the current distribution for the run;
- PyTorch: not available (Keras 3 has no single-process data-parallel engine for it).

The app names this choice with a pseudo device name, `ALL_GPUS` ("gpu:all"); `ALL_CPUS` ("cpu:all")
spreads over all CPU devices, which exists so the same code path runs in CI: TensorFlow can split one CPU
into logical devices (`tf.config.set_logical_device_configuration`) and JAX can present several host
devices (`XLA_FLAGS=--xla_force_host_platform_device_count=N`).

The backend libraries are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Any

from lib.backend import backend_name
from lib.devices import DeviceInfo, DeviceNotFoundError, keras_device_name, normalize_device_name
from lib.formatting import format_count

ALL_GPUS = "gpu:all"  # pseudo device: data parallel over every GPU
ALL_CPUS = "cpu:all"  # pseudo device: data parallel over every (logical) CPU device; for tests and CI
PARALLEL_NAMES = {ALL_GPUS: "gpu", ALL_CPUS: "cpu", "all-gpus": "gpu", "cuda:all": "gpu", "all-cpus": "cpu"}
PARALLEL_LABELS = {"gpu": "all GPUs (data parallel)", "cpu": "all CPU devices (data parallel)"}
SUPPORTED_BACKENDS = ("tensorflow", "jax")  # backends with a data-parallel engine that Keras trains through
MIN_REPLICAS = 2  # fewer devices than this is not data parallel
GRADIENT_BYTES_PER_PARAM = 4  # float32 gradients, all-reduced every step
SCALING_COLUMNS = ("config", "num_gpus", "epoch_s", "speedup", "efficiency", "runs")  # scaling_frame output


class DataParallelUnavailableError(DeviceNotFoundError):
    """Data-parallel training was asked for where it cannot run: too few devices, or the PyTorch backend."""


class BatchSplitError(ValueError):
    """The global batch cannot be split evenly between the replicas."""


def is_data_parallel(name: str) -> bool:
    """Tells whether a device name asks for data-parallel training ("gpu:all", "cpu:all", "all-gpus").

    Args:
        name: A device name as the user or the app wrote it.
    """
    return str(name).strip().lower() in PARALLEL_NAMES


def canonical_name(name: str) -> str:
    """Returns the app's spelling of a data-parallel name: "gpu:all" or "cpu:all".

    Args:
        name: A data-parallel name in any accepted spelling.

    Raises:
        ValueError: The name does not ask for data-parallel training.
    """
    kind = _device_kind(name)
    return ALL_GPUS if kind == "gpu" else ALL_CPUS


def device_kind(name: object) -> str:
    """The kind of a device from its name, in lower case: "cpu" for "CPU:0", "gpu" for "gpu:all"."""
    return str(name).strip().lower().partition(":")[0]


def device_label(name: str) -> str:
    """Names a device for people: "all GPUs (data parallel)" for "gpu:all", the name itself otherwise.

    Args:
        name: A device name ("gpu:0", "gpu:all").
    """
    if is_data_parallel(name):
        return PARALLEL_LABELS[_device_kind(name)]
    return str(name)


def replica_devices(name: str, backend: str | None = None) -> list[str]:
    """Lists the devices that a data-parallel name trains on, as normalised names ("gpu:0", "gpu:1").

    TensorFlow is asked for its logical devices (what `MirroredStrategy` places replicas on; one CPU can
    be split into several), JAX for `jax.devices(kind)`.

    Args:
        name: "gpu:all" or "cpu:all" (or another accepted spelling).
        backend: "tensorflow", "jax" or "torch"; the active Keras backend when None.

    Returns:
        At least `MIN_REPLICAS` device names, in the backend's order.

    Raises:
        DataParallelUnavailableError: The backend has no data-parallel engine, or fewer than two devices
            of the kind are present; the message says what to choose instead.
    """
    kind = _device_kind(name)
    backend = backend or backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DataParallelUnavailableError(
            f"{PARALLEL_LABELS[kind]} is not available on the {backend} backend: Keras 3 has no single-process "
            f"data-parallel engine for it. Choose one device such as {kind}:0, or run with KERAS_BACKEND=jax "
            "or tensorflow."
        )
    devices = _logical_devices(kind, backend)
    if len(devices) < MIN_REPLICAS:
        present = ", ".join(devices) or "none"
        raise DataParallelUnavailableError(
            f"{PARALLEL_LABELS[kind]} needs at least {MIN_REPLICAS} {kind.upper()} devices; the {backend} backend "
            f"sees {len(devices)} ({present}). Choose one device such as {kind}:0 instead."
        )
    return devices


def replica_count(name: str, backend: str | None = None) -> int:
    """Returns how many devices train together under a device name: 1 for "gpu:0", N for "gpu:all".

    Args:
        name: A device name.
        backend: The Keras backend; the active one when None.

    Raises:
        DataParallelUnavailableError: A data-parallel name that cannot run here.
    """
    return len(replica_devices(name, backend)) if is_data_parallel(name) else 1


def resolve_data_parallel(name: str, backend: str | None = None) -> str:
    """Checks that a data-parallel name can run here and returns its canonical spelling.

    Args:
        name: "gpu:all", "all-gpus", "cpu:all", ...
        backend: The Keras backend; the active one when None.

    Raises:
        DataParallelUnavailableError: Fewer than two devices of the kind, or an unsupported backend.
    """
    replica_devices(name, backend)
    return canonical_name(name)


def per_replica_batch(global_batch: int, replicas: int) -> int:
    """Returns the samples each replica gets from one global batch.

    Args:
        global_batch: The spec's batch size: samples per training step, all replicas together.
        replicas: Devices training together.

    Raises:
        BatchSplitError: The batch does not divide evenly (every replica must run the same shape, and
            the averaged gradient must weigh every sample the same); the message suggests batch sizes.
        ValueError: `replicas` is below 1.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, not {replicas}.")
    if global_batch % replicas == 0 and global_batch >= replicas:
        return global_batch // replicas
    below = global_batch // replicas * replicas
    choices = f"{below} or {below + replicas}" if below >= replicas else f"{replicas}"
    raise BatchSplitError(
        f"A global batch of {global_batch} cannot be split evenly between {replicas} replicas: every replica must "
        f"get the same number of samples per step. Choose a batch size that is a multiple of {replicas}, "
        f"e.g. {choices}."
    )


def describe_data_parallel(global_batch: int, replicas: int) -> str:
    """Says how a global batch is shared, e.g. "global batch 2048 split into 2 x 1024 per replica".

    Args:
        global_batch: Samples per training step, all replicas together.
        replicas: Devices training together.

    Returns:
        The sentence (with its full stop) to show next to the device choice; the reason and the fix when the
        batch does not split.
    """
    try:
        share = per_replica_batch(global_batch, replicas)
    except BatchSplitError as error:
        return str(error)
    return (
        f"global batch {global_batch:,} split into {replicas} x {share:,} per replica: each device computes "
        f"the gradient of its {share:,} samples and the gradients are averaged before every update."
    )


def describe_gradient_exchange(params: int, flops_per_sample: int, global_batch: int, replicas: int) -> str:
    """Says what each data-parallel step costs in work and in communication, and why that bounds the speedup.

    Every step ends with an all-reduce of all the gradients (4 bytes per float32 parameter) between the
    devices; its size does not shrink with more devices or a smaller share of the batch, while each
    device's work does. The ratio of the two (work per exchanged byte) is what decides whether a second
    GPU pays off.

    Args:
        params: Trainable parameters of the model (`lib.spec.count_params`).
        flops_per_sample: Training FLOPs per sample (`lib.spec.flops_per_sample`).
        global_batch: Samples per step, all replicas together.
        replicas: Devices training together.

    Returns:
        The sentences; "" when the batch does not split evenly (`describe_data_parallel` says why).
    """
    try:
        share = per_replica_batch(global_batch, replicas)
    except BatchSplitError:
        return ""
    gradient_bytes = GRADIENT_BYTES_PER_PARAM * params
    work = flops_per_sample * share
    return (
        f"Each step, every device computes {format_count(work, 'FLOP')} on its {share:,} samples, then the devices "
        f"exchange {format_count(gradient_bytes, 'B')} of gradients (4 bytes x {params:,} parameters): "
        f"{work / gradient_bytes:,.0f} FLOP "
        "of work per exchanged byte. A GPU computes roughly a thousand times faster than a link between GPUs moves "
        "bytes (an H200: ~400 TFLOP/s in TF32; NVLink: a few hundred GB/s), so near a thousand FLOP per byte the "
        "exchange takes about as long as the maths and a second GPU gains little; near-perfect scaling needs many "
        "times that, i.e. a larger batch per device."
    )


def validate_batch_split(devices: Sequence[str], global_batch: int, backend: str | None = None) -> None:
    """Checks, before any training, that the batch splits evenly for every data-parallel device.

    Args:
        devices: Resolved device names; ordinary ones are skipped.
        global_batch: The spec's batch size.
        backend: The Keras backend; the active one when None.

    Raises:
        BatchSplitError: The batch does not divide by a data-parallel device's replica count.
        DataParallelUnavailableError: A data-parallel name cannot run here.
    """
    for name in devices:
        if is_data_parallel(name):
            per_replica_batch(global_batch, replica_count(name, backend))


def trim_to_replicas(data: Any, replicas: int) -> Any:
    """Drops the last few samples so every split holds a multiple of the replica count.

    With a batch size that divides by the replicas, the last (ragged) batch then divides too: JAX
    shards each batch evenly and cannot place a batch of 9 samples on 2 devices.

    Args:
        data: A dataclass with x_train, y_train, x_test, y_test arrays (`lib.engine.TrainingData`).
        replicas: Devices training together; 1 returns `data` unchanged.

    Returns:
        A copy of `data` with shortened arrays (views, no copy of the samples).
    """
    if replicas <= 1:
        return data
    train = len(data.x_train) // replicas * replicas
    test = len(data.x_test) // replicas * replicas
    return dataclasses.replace(
        data,
        x_train=data.x_train[:train],
        y_train=data.y_train[:train],
        x_test=data.x_test[:test],
        y_test=data.y_test[:test],
    )


@contextlib.contextmanager
def distribution_scope(name: str, backend: str | None = None) -> Iterator[list[str]]:
    """Makes the backend's data-parallel engine current: build, compile, fit and evaluate inside it.

    Args:
        name: "gpu:all" or "cpu:all".
        backend: The Keras backend; the active one when None.

    Yields:
        The replica device names.

    Raises:
        DataParallelUnavailableError: Too few devices, or the PyTorch backend.
    """
    backend = backend or backend_name()
    devices = replica_devices(name, backend)
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices=[f"/{device.upper()}" for device in devices])
        with strategy.scope():
            yield devices
        return
    import keras

    # DataParallel.scope() sets the distribution and restores the previous one on exit.
    with keras.distribution.DataParallel(devices=devices).scope():
        yield devices


def data_parallel_spec(spec: Any, name: str, backend: str | None = None) -> Any:
    """Returns the spec to train under a device name: on TensorFlow, data parallel runs one step per call, no XLA.

    Keras 3 cannot run `MirroredStrategy` with `steps_per_execution` above 1 (keras-team/keras#19246: "You
    must feed a value for placeholder tensor"), and XLA-compiled steps cannot reach variables mirrored on
    other devices. JAX's `DataParallel` has neither limit, so its spec is unchanged.

    Args:
        spec: A `lib.spec.ModelSpec`.
        name: The device name the spec will train on.
        backend: The Keras backend; the active one when None.
    """
    if not is_data_parallel(name) or (backend or backend_name()) != "tensorflow":
        return spec
    return spec.with_changes(steps_per_execution=1, jit_compile=False)


def device_scope(name: str, backend: str | None = None) -> contextlib.AbstractContextManager:
    """Returns where to build and train: the data-parallel scope for "gpu:all", `keras.device(name)` otherwise.

    Args:
        name: A resolved device name ("gpu:0", "gpu:all").
        backend: The Keras backend; the active one when None.
    """
    if is_data_parallel(name):
        return distribution_scope(name, backend)
    import keras

    return keras.device(keras_device_name(name, backend))


def data_parallel_choices(devices: Sequence[DeviceInfo]) -> list[str]:
    """Returns the data-parallel device choices to offer: ["gpu:all"] with two or more GPUs, else none.

    Args:
        devices: The listed devices (`lib.devices.list_devices()`); their backend decides support.
    """
    gpus = [device for device in devices if device.kind == "GPU"]
    if len(gpus) < MIN_REPLICAS or gpus[0].backend not in SUPPORTED_BACKENDS:
        return []
    return [ALL_GPUS]


def data_parallel_info(name: str, present: Sequence[DeviceInfo], backend: str | None = None) -> DeviceInfo:
    """Describes a data-parallel pseudo device like a real one, e.g. "2 x NVIDIA H200 (data parallel)".

    Args:
        name: "gpu:all" or "cpu:all".
        present: The listed devices, whose description and memory are reused.
        backend: The Keras backend; the active one when None.

    Raises:
        DataParallelUnavailableError: Too few devices, or the PyTorch backend.
    """
    replicas = replica_devices(name, backend)
    kind = _device_kind(name)
    same_kind = [device for device in present if device.name.startswith(f"{kind}:")]
    first = same_kind[0] if same_kind else None
    memory = [device.memory_bytes for device in same_kind if device.name in replicas]
    return DeviceInfo(
        name=canonical_name(name),
        kind=kind.upper(),
        description=f"{len(replicas)} x {first.description if first else kind.upper()} (data parallel)",
        memory_bytes=sum(memory) if memory and None not in memory else None,
        compute_capability=first.compute_capability if first else None,
        backend=backend or backend_name(),
    )


def _device_kind(name: str) -> str:
    kind = PARALLEL_NAMES.get(str(name).strip().lower())
    if kind is None:
        raise ValueError(f"{name!r} is not a data-parallel device name; use {ALL_GPUS!r} or {ALL_CPUS!r}.")
    return kind


def _logical_devices(kind: str, backend: str) -> list[str]:
    """Normalised names of the backend's devices of one kind ("gpu" or "cpu")."""
    if backend == "tensorflow":
        import tensorflow as tf

        names = [normalize_device_name(device.name) for device in tf.config.list_logical_devices(kind.upper())]
        return [name for name in names if name is not None]
    import jax

    try:
        return [f"{kind}:{device.id}" for device in jax.devices(kind)]
    except RuntimeError:  # JAX raises this when no backend of that kind is installed or visible
        return []


def scaling_frame(store_df: Any, kind: str = "gpu") -> Any:
    """Turns stored GPU runs into a scaling table: epoch time, speedup and efficiency per GPU count.

    Runs are grouped by configuration (same spec, backend and data kind); a configuration appears only
    when it has runs on one GPU and on several (data parallel). Several runs of one GPU count are
    summarised by the median of their steady-state epoch times.

    Args:
        store_df: `lib.store.RunStore.runs()` output (columns device, status, steady_epoch_s, backend,
            synthetic, preset, dataset, batch_size, spec, result, id).
        kind: "gpu", or "cpu" to tabulate runs on CPU devices ("cpu:0", "cpu:all"; the CPU check of the
            same code in tests and benchmarks), with `num_gpus` then counting CPU devices.

    Returns:
        A tidy DataFrame with columns config (a readable label), num_gpus, epoch_s (steady-state seconds
        per epoch), speedup (one-GPU epoch time / epoch_s), efficiency (speedup / num_gpus; 1.0 is perfect
        scaling) and runs (how many runs the median is over), ordered by config and num_gpus.
    """
    import pandas as pd

    runs = _runs_of_kind(store_df, kind)
    rows = []
    for _, group in runs.groupby("key", sort=False):
        epochs = group.groupby("num_gpus")["steady_epoch_s"].agg(["median", "size"])
        if 1 not in epochs.index or len(epochs) < 2:
            continue
        baseline = float(epochs.loc[1, "median"])
        for num_gpus, (median, size) in epochs.iterrows():
            speedup = baseline / float(median)
            rows.append(
                {
                    "config": group["label"].iloc[0],
                    "num_gpus": int(num_gpus),
                    "epoch_s": float(median),
                    "speedup": speedup,
                    "efficiency": speedup / int(num_gpus),
                    "runs": int(size),
                }
            )
    return pd.DataFrame(rows, columns=list(SCALING_COLUMNS))


def _runs_of_kind(store_df: Any, kind: str) -> Any:
    """Finished runs on devices of one kind ("gpu") with their device count, configuration key and label."""
    import pandas as pd

    from lib.store import stored_dict

    columns = ["key", "label", "num_gpus", "steady_epoch_s"]
    if store_df is None or store_df.empty:
        return pd.DataFrame(columns=columns)
    done = store_df[
        (store_df["status"] == "done")
        & store_df["device"].astype(str).str.startswith(f"{kind}:")
        & (store_df["steady_epoch_s"].astype(float) > 0)
    ]
    rows = []
    for _, run in done.iterrows():
        num_gpus = int(stored_dict(run.get("result")).get("replicas") or 1)
        if is_data_parallel(run["device"]) and num_gpus < MIN_REPLICAS:
            continue  # a data-parallel run stored before the replica count was recorded: count unknown
        spec = stored_dict(run.get("spec"))
        key = json.dumps([spec, run.get("backend"), bool(run.get("synthetic"))], sort_keys=True, default=str)
        rows.append([key, _config_label(run, spec), num_gpus, float(run["steady_epoch_s"])])
    frame = pd.DataFrame(rows, columns=columns)
    return _unique_labels(frame)


def _config_label(run: Any, spec: dict[str, Any]) -> str:
    name = run.get("preset") or run.get("dataset") or spec.get("dataset") or "run"
    data = ", synthetic data" if bool(run.get("synthetic")) else ""
    return f"{name}: {list(spec.get('hidden_units') or [])}, batch {spec.get('batch_size')}, {run.get('backend')}{data}"


def _unique_labels(frame: Any) -> Any:
    """Numbers labels that two different configurations share ("... #2"), so the chart keeps them apart."""
    seen: dict[str, list[str]] = {}
    for key, label in zip(frame["key"], frame["label"], strict=True):
        keys = seen.setdefault(label, [])
        if key not in keys:
            keys.append(key)
    frame = frame.copy()
    frame["label"] = [
        label if seen[label].index(key) == 0 else f"{label} #{seen[label].index(key) + 1}"
        for key, label in zip(frame["key"], frame["label"], strict=True)
    ]
    return frame
