"""Training with the input kept on the device: one compiled call per epoch (JAX backend).

One feature, one name: the spec field `device_resident`, the Build page's "Keep the data on the device"
and this module (once called "fastpath").

`model.fit` on NumPy arrays shuffles and gathers the data on the host and copies every batch to the
device; at large batches on a fast GPU that host-side work, not the GPU, sets the epoch time. Here
the training arrays are copied to the device once, shuffled there each epoch
(`jax.random.permutation` seeded from the spec seed and the epoch number), and a whole epoch runs as
one jitted function: `jax.lax.scan` over the batches, each step built from Keras 3's public stateless
APIs (`model.stateless_call`, `optimizer.stateless_apply`), as in the keras.io guide "Writing a
training loop from scratch in JAX". The state (weights, optimizer slots) is donated to each call so
it is updated in place, and written back into the model at the end, so `model.evaluate` and
`model.predict` see the trained weights.

The math is the model's own: its layers, its compiled loss and optimizer, its dtype policy (so
`mixed_bfloat16` computes in bfloat16 with float32 outputs). Every sample trains, as in `model.fit`: the
whole batches run in the scan, and the remainder (`len(x) % batch_size` samples of each shuffle) as one
smaller step after it, in the same compiled call. Its shape is fixed for the whole run, so it is compiled
once, with the epoch, and nothing recompiles later. The shuffle order differs from `model.fit`'s, so loss
curves match in trend, not value by value (with `shuffle=False`, value by value).

With `devices` (two or more JAX devices) the same epoch runs data parallel, through `jax.shard_map`:
the state is replicated on every device, the training data is split into one contiguous block per
device, each replica shuffles its own block every epoch (the key folded with the epoch and the replica
index) and trains on `batch_size / replicas` samples per step, and the gradients are averaged across the
replicas (`lax.pmean`) before the optimizer step, so every replica applies the same update. The blocks are
equal, so the last `len(x) % replicas` samples (fewer than the replicas) are left out. The model is
built without a Keras distribution (its weights on one device); the trained state is written back there.

Only the JAX backend supports this; `supported()` says so, and callers fall back to `model.fit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.backend import backend_name

SUPPORTED_BACKENDS = ("jax",)  # backends with a device-resident training loop
REPLICA_AXIS = "replica"  # mesh axis name of the data-parallel loop
UNSUPPORTED_MESSAGE = "input kept on the device: not available on the {backend} backend (JAX only); using model.fit"


class DeviceResidentError(ValueError):
    """The device-resident loop cannot train this model on this data; the message says why."""


@dataclass(frozen=True)
class EpochStats:
    """One epoch of device-resident training."""

    seconds: float  # wall time of the epoch, read after the device finished (epoch 1 includes compiling)
    loss: float  # mean training loss over the epoch's steps
    accuracy: float  # mean training accuracy over the epoch's steps (fraction of correct predictions)


def supported(backend: str | None = None) -> bool:
    """Tells whether the device-resident loop runs on a Keras backend.

    Args:
        backend: "tensorflow", "jax" or "torch"; the active Keras backend when None.
    """
    return (backend or backend_name()) in SUPPORTED_BACKENDS


def unsupported_reason(backend: str | None = None) -> str:
    """The message to show when the option is asked for on a backend without it.

    Args:
        backend: The Keras backend; the active one when None.
    """
    return UNSUPPORTED_MESSAGE.format(backend=backend or backend_name())


def fit_device_resident(
    model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int,
    epochs: int,
    seed: int,
    input_scale: float | None = None,
    shuffle: bool = True,
    devices: list[Any] | None = None,
    on_epoch_end: Callable[[int, EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[EpochStats]:
    """Trains a compiled Keras model with its data on the device, one jitted call per epoch.

    Args:
        model: A built and compiled `keras.Model` (loss and optimizer set by `compile`).
        x: Training inputs, shaped as the model expects; float32, or uint8 with `input_scale`.
        y: Labels: integer class indices (n,) or one-hot rows (n, classes), matching the compiled loss.
        batch_size: Samples per step (the global batch: with several devices each takes an equal share);
            the last `len(x) % batch_size` samples of each shuffle make one smaller step at the end of the
            epoch. With R devices each replica trains its own block of `len(x) // R` samples the same way.
        epochs: Passes over the data.
        seed: Seed of the per-epoch shuffle (epoch e uses the seed folded with e).
        shuffle: Reshuffle every epoch; False trains the batches in order, as `model.fit(shuffle=False)`
            does, which makes the two loss curves comparable value by value.
        input_scale: Multiplies the inputs in the step, after casting to float32 (1/255 for uint8
            images); None leaves float inputs as they are.
        devices: JAX devices to train on data parallel (`jax_devices(["gpu:0", "gpu:1"])`); None or one
            device trains on one device (None: the one holding the model's weights).
        on_epoch_end: Called after each epoch with the 1-based epoch number and its `EpochStats`.
        should_stop: Polled before each epoch; training stops early when it returns True.

    Returns:
        `EpochStats` of each finished epoch. The model holds the trained weights afterwards.

    Raises:
        DeviceResidentError: Not the JAX backend, a Keras distribution in force (pass `devices` instead), model
            not compiled, no samples, a device listed twice, or a batch that does not split evenly.
    """
    if not supported():
        raise DeviceResidentError(unsupported_reason())
    import jax
    import jax.numpy as jnp

    _check_no_distribution()
    loss_fn = _compiled_loss(model)
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    home = _model_device(model)
    mesh, data_placement, state_placement = _placement(devices or [home])
    replicas = 1 if mesh is None else mesh.size
    batch_size, steps, tail, num_used = _replica_batch_and_steps(len(x), batch_size, replicas)
    x_device, y_device = _to_device(x[:num_used], y[:num_used], data_placement)
    # Copies, so that donating the state never invalidates the buffers the model's variables hold.
    state = jax.device_put(jax.tree.map(jnp.copy, _variable_values(model)), state_placement)
    run_epoch = _epoch_function(model, loss_fn, (steps, batch_size, tail), input_scale, shuffle, mesh)
    base_key = jax.random.key(seed)
    history: list[EpochStats] = []
    for epoch in range(1, epochs + 1):
        if should_stop is not None and should_stop():
            break
        start = time.perf_counter()
        state, loss, accuracy = run_epoch(state, x_device, y_device, base_key, epoch)
        jax.block_until_ready(state)
        stats = EpochStats(time.perf_counter() - start, float(loss), float(accuracy))
        history.append(stats)
        if on_epoch_end is not None:
            on_epoch_end(epoch, stats)
    # Only now does the model change: an error above leaves its weights as they were.
    _write_back(model, state, home)
    return history


def jax_devices(names: list[str]) -> list[Any]:
    """The JAX devices behind normalised device names, for `fit_device_resident(devices=...)`.

    Args:
        names: Names such as ["gpu:0", "gpu:1"] (`lib.parallel.replica_devices("gpu:all")`).

    Raises:
        DeviceResidentError: A name that no JAX device has.
    """
    import jax

    found = []
    for name in names:
        kind, _, index = name.partition(":")
        matches = [device for device in jax.devices(kind) if str(device.id) == index]
        if not matches:
            present = ", ".join(f"{kind}:{device.id}" for device in jax.devices(kind))
            raise DeviceResidentError(f"No JAX device {name!r}; the {kind} devices are {present}. Choose one of them.")
        found.append(matches[0])
    return found


def _check_no_distribution() -> None:
    """The loop places (and replicates) the weights itself; a Keras distribution would place them too."""
    import keras

    if keras.distribution.distribution() is not None:
        raise DeviceResidentError(
            "Input kept on the device replicates the weights itself: build the model without a Keras "
            "distribution and pass devices=[...] for a data-parallel run."
        )


def _placement(devices: list[Any]) -> tuple[Any, Any, Any]:
    """(mesh or None, where the data goes, where the state goes) for one device or several."""
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    if len(set(devices)) != len(devices):
        raise DeviceResidentError(f"Each device may appear once; got {[str(device) for device in devices]}.")
    if len(devices) == 1:
        return None, devices[0], devices[0]
    mesh = Mesh(np.array(devices), (REPLICA_AXIS,))
    # The data splits on axis 0 into one contiguous block per device; the state is copied to every device.
    return mesh, NamedSharding(mesh, PartitionSpec(REPLICA_AXIS)), NamedSharding(mesh, PartitionSpec())


def _replica_batch_and_steps(num_samples: int, batch_size: int, replicas: int) -> tuple[int, int, int, int]:
    """(samples per replica step, whole steps per epoch, samples in the smaller last step, samples sent)."""
    if batch_size % replicas:
        raise DeviceResidentError(
            f"A global batch of {batch_size} does not split evenly over {replicas} devices; choose a multiple of "
            f"{replicas}."
        )
    if 1 <= num_samples < replicas:
        raise DeviceResidentError(f"{num_samples} samples cannot fill {replicas} devices; give at least {replicas}.")
    block = num_samples // replicas
    per_replica, steps, tail = _batch_and_steps(block, batch_size // replicas)
    return per_replica, steps, tail, block * replicas


def _batch_and_steps(num_samples: int, batch_size: int) -> tuple[int, int, int]:
    """(batch, whole batches per epoch, samples left for one smaller step); under one batch: one step of all."""
    if batch_size < 1:
        raise DeviceResidentError(f"batch_size must be at least 1, not {batch_size}.")
    if num_samples < 1:
        raise DeviceResidentError("There are no training samples; give at least one.")
    if num_samples < batch_size:
        return num_samples, 1, 0
    return batch_size, num_samples // batch_size, num_samples % batch_size


def _compiled_loss(model: Any) -> Callable[[Any, Any], Any]:
    """The loss the model was compiled with, as a function of (labels, predictions)."""
    import keras

    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise DeviceResidentError("The model must be compiled with a loss and an optimizer before training.")
    return keras.losses.get(model.loss)


def _model_device(model: Any):
    """The JAX device holding the model's weights: the data goes where the weights are."""
    value = model.trainable_variables[0].value
    return next(iter(value.devices()))


def _to_device(x: Any, y: Any, device: Any) -> tuple[Any, Any]:
    """Copies the training arrays to the device (or split over the mesh) once; integer labels become int32."""
    import jax
    import numpy as np

    if len(x) != len(y):
        raise DeviceResidentError(f"x has {len(x)} samples but y has {len(y)}; give one label per sample.")
    labels = np.asarray(y)
    if labels.ndim == 1 or np.issubdtype(labels.dtype, np.integer):
        labels = labels.astype(np.int32)
    return jax.device_put(np.asarray(x), device), jax.device_put(labels, device)


def _variable_values(model: Any) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
    )


def _write_back(model: Any, state: tuple[list[Any], list[Any], list[Any]], device: Any) -> None:
    """Stores the trained state in the model's variables (weights, non-trainable state, optimizer slots).

    A replicated state is copied back to the model's own device, so the model stays a one-device model.
    """
    import jax

    trainable, non_trainable, optimizer_values = jax.device_put(state, device)
    pairs = [
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.optimizer.variables, optimizer_values),
    ]
    for variables, values in pairs:
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def _epoch_function(
    model: Any,
    loss_fn: Callable,
    shape: tuple[int, int, int],
    input_scale: float | None,
    shuffle: bool,
    mesh: Any = None,
):
    """Builds the jitted `epoch(state, x, y, key, epoch) -> (state, mean loss, mean accuracy)`.

    `shape` is (whole steps, samples per step, samples in the smaller last step or 0), per replica.
    With a mesh, the epoch runs once per replica under `shard_map`: x and y split on axis 0, the rest replicated.
    """
    import jax

    axis = None if mesh is None else REPLICA_AXIS
    epoch = _epoch_body(model, loss_fn, shape, input_scale, shuffle, axis)
    if mesh is not None:
        from jax.sharding import PartitionSpec

        replicated, split = PartitionSpec(), PartitionSpec(REPLICA_AXIS)
        in_specs = (replicated, split, split, replicated, replicated)
        epoch = _shard_map(epoch, mesh, in_specs, (replicated, replicated, replicated))
    return jax.jit(epoch, donate_argnums=0)


def _shard_map(function: Callable, mesh: Any, in_specs: tuple, out_specs: tuple) -> Callable:
    """`jax.shard_map` (or its older home `jax.experimental.shard_map.shard_map`) without replication checks.

    With the checks on, JAX differentiates a replicated input of a per-replica loss by summing the gradients
    over the replicas on its own, and the explicit `pmean` would then see a sum: gradients R times too large.
    Without them, gradients stay per replica and the `pmean` in the step averages them, on every JAX version;
    the state stays replicated because every update to it is averaged (or equal) across replicas.
    """
    import jax

    if hasattr(jax, "shard_map"):
        return jax.shard_map(function, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map

    return shard_map(function, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def _epoch_body(
    model: Any,
    loss_fn: Callable,
    shape: tuple[int, int, int],
    input_scale: float | None,
    shuffle: bool,
    axis: str | None,
):
    """One epoch over (this replica's) x and y; with `axis`, gradients and results are averaged over replicas.

    The loss and accuracy are means over the epoch's samples: the smaller last step weighs by its size.
    """
    import jax
    import jax.numpy as jnp

    steps, batch_size, tail = shape

    def loss_and_updates(trainable, non_trainable, inputs, labels):
        predictions, non_trainable = model.stateless_call(trainable, non_trainable, inputs, training=True)
        predictions = predictions.astype(jnp.float32)  # float32 loss, also under mixed precision
        return jnp.mean(loss_fn(labels, predictions)), (predictions, non_trainable)

    gradient_fn = jax.value_and_grad(loss_and_updates, has_aux=True)

    def epoch(state, x, y, key, epoch_number):
        if shuffle:
            key = jax.random.fold_in(key, epoch_number)
            if axis is not None:  # each replica shuffles its own block differently
                key = jax.random.fold_in(key, jax.lax.axis_index(axis))
            order = jax.random.permutation(key, x.shape[0])
        else:
            order = jnp.arange(x.shape[0])
        batches = order[: steps * batch_size].reshape(steps, batch_size)

        def step(state, indices):
            trainable, non_trainable, optimizer_values = state
            inputs, labels = _prepare_batch(x[indices], y[indices], input_scale)
            (loss, (predictions, non_trainable)), grads = gradient_fn(trainable, non_trainable, inputs, labels)
            if axis is not None:  # equal-sized replica batches: the mean of their gradients is the global one
                grads = jax.lax.pmean(grads, axis)
                non_trainable = _replica_agree(non_trainable, axis)
            trainable, optimizer_values = model.optimizer.stateless_apply(optimizer_values, grads, trainable)
            return (trainable, non_trainable, optimizer_values), (loss, _accuracy(labels, predictions))

        state, (losses, accuracies) = jax.lax.scan(step, state, batches)
        loss, accuracy = jnp.mean(losses), jnp.mean(accuracies)
        if tail:  # a static size: this step is compiled once, with the epoch
            state, (tail_loss, tail_accuracy) = step(state, order[steps * batch_size :])
            share = tail / (steps * batch_size + tail)
            loss = loss * (1 - share) + tail_loss * share
            accuracy = accuracy * (1 - share) + tail_accuracy * share
        if axis is not None:
            loss, accuracy = jax.lax.pmean(loss, axis), jax.lax.pmean(accuracy, axis)
        return state, loss, accuracy

    return epoch


def _replica_agree(values: list[Any], axis: str) -> list[Any]:
    """Makes non-trainable state equal on every replica.

    Float state (batch statistics) is averaged; integer state (seed counters, the same on every replica) is
    taken as the maximum.
    """
    import jax
    import jax.numpy as jnp

    def agree(value):
        if jnp.issubdtype(value.dtype, jnp.floating):
            return jax.lax.pmean(value, axis)
        return jax.lax.pmax(value, axis)

    return jax.tree.map(agree, values)


def _prepare_batch(inputs: Any, labels: Any, input_scale: float | None) -> tuple[Any, Any]:
    import jax.numpy as jnp

    if input_scale is not None or not jnp.issubdtype(inputs.dtype, jnp.floating):
        inputs = inputs.astype(jnp.float32) * (1.0 if input_scale is None else input_scale)
    return inputs, labels


def _accuracy(labels: Any, predictions: Any) -> Any:
    """Fraction of the batch whose highest-scoring class is the labelled one."""
    import jax.numpy as jnp

    predicted = jnp.argmax(predictions, axis=-1)
    if labels.ndim == predictions.ndim:  # one-hot labels
        labels = jnp.argmax(labels, axis=-1)
    return jnp.mean((predicted == labels.reshape(predicted.shape)).astype(jnp.float32))
