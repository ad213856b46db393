"""Training with the input kept on the device: one compiled call per epoch (JAX backend).

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
`mixed_bfloat16` computes in bfloat16 with float32 outputs). Like the engine, only whole batches are
trained (the ragged remainder is dropped), so every step has the same shape and nothing recompiles.
The shuffle order differs from `model.fit`'s, so loss curves match in trend, not value by value.

Only the JAX backend supports this; `supported()` says so, and callers fall back to `model.fit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.backend import backend_name

SUPPORTED_BACKENDS = ("jax",)  # backends with a device-resident training loop
UNSUPPORTED_MESSAGE = "input kept on the device: not available on the {backend} backend (JAX only); using model.fit"


class FastPathError(ValueError):
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
    on_epoch_end: Callable[[int, EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[EpochStats]:
    """Trains a compiled Keras model with its data on the device, one jitted call per epoch.

    Args:
        model: A built and compiled `keras.Model` (loss and optimizer set by `compile`).
        x: Training inputs, shaped as the model expects; float32, or uint8 with `input_scale`.
        y: Labels: integer class indices (n,) or one-hot rows (n, classes), matching the compiled loss.
        batch_size: Samples per step; the last `len(x) % batch_size` samples of each shuffle are dropped
            (with fewer samples than one batch, all of them make one step, as in `lib.engine`).
        epochs: Passes over the data.
        seed: Seed of the per-epoch shuffle (epoch e uses the seed folded with e).
        shuffle: Reshuffle every epoch; False trains the batches in order, as `model.fit(shuffle=False)`
            does, which makes the two loss curves comparable value by value.
        input_scale: Multiplies the inputs in the step, after casting to float32 (1/255 for uint8
            images); None leaves float inputs as they are.
        on_epoch_end: Called after each epoch with the 1-based epoch number and its `EpochStats`.
        should_stop: Polled before each epoch; training stops early when it returns True.

    Returns:
        `EpochStats` of each finished epoch. The model holds the trained weights afterwards.

    Raises:
        FastPathError: Not the JAX backend, a Keras distribution (data parallel) in force, model not
            compiled, or no samples.
    """
    if not supported():
        raise FastPathError(unsupported_reason())
    import jax
    import jax.numpy as jnp

    _check_single_device()
    batch_size, steps = _batch_and_steps(len(x), batch_size)
    loss_fn = _compiled_loss(model)
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    device = _model_device(model)
    x_device, y_device = _to_device(x, y, device)
    # Copies, so that donating the state never invalidates the buffers the model's variables hold.
    state = jax.device_put(jax.tree.map(jnp.copy, _variable_values(model)), device)
    run_epoch = _epoch_function(model, loss_fn, steps, batch_size, input_scale, shuffle)
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
    _write_back(model, state)
    return history


def _check_single_device() -> None:
    """The loop trains on the device holding the weights; a Keras distribution spreads them over several."""
    import keras

    if keras.distribution.distribution() is not None:
        raise FastPathError(
            "Input kept on the device trains on one device; a data-parallel run (a Keras distribution is set) "
            "uses model.fit instead."
        )


def _batch_and_steps(num_samples: int, batch_size: int) -> tuple[int, int]:
    """Whole batches per epoch; fewer samples than one batch make one smaller batch, as in the engine."""
    if batch_size < 1:
        raise FastPathError(f"batch_size must be at least 1, not {batch_size}.")
    if num_samples < 1:
        raise FastPathError("There are no training samples; give at least one.")
    if num_samples < batch_size:
        return num_samples, 1
    return batch_size, num_samples // batch_size


def _compiled_loss(model: Any) -> Callable[[Any, Any], Any]:
    """The loss the model was compiled with, as a function of (labels, predictions)."""
    import keras

    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise FastPathError("The model must be compiled with a loss and an optimizer before training.")
    return keras.losses.get(model.loss)


def _model_device(model: Any):
    """The JAX device holding the model's weights: the data goes where the weights are."""
    value = model.trainable_variables[0].value
    return next(iter(value.devices()))


def _to_device(x: Any, y: Any, device: Any) -> tuple[Any, Any]:
    """Copies the training arrays to the device once; integer labels become int32."""
    import jax
    import numpy as np

    if len(x) != len(y):
        raise FastPathError(f"x has {len(x)} samples but y has {len(y)}; give one label per sample.")
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


def _write_back(model: Any, state: tuple[list[Any], list[Any], list[Any]]) -> None:
    """Stores the trained state in the model's variables (weights, non-trainable state, optimizer slots)."""
    trainable, non_trainable, optimizer_values = state
    pairs = [
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.optimizer.variables, optimizer_values),
    ]
    for variables, values in pairs:
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def _epoch_function(
    model: Any, loss_fn: Callable, steps: int, batch_size: int, input_scale: float | None, shuffle: bool
):
    """Builds the jitted `epoch(state, x, y, key, epoch) -> (state, mean loss, mean accuracy)`."""
    import jax
    import jax.numpy as jnp

    def loss_and_updates(trainable, non_trainable, inputs, labels):
        predictions, non_trainable = model.stateless_call(trainable, non_trainable, inputs, training=True)
        predictions = predictions.astype(jnp.float32)  # float32 loss, also under mixed precision
        return jnp.mean(loss_fn(labels, predictions)), (predictions, non_trainable)

    gradient_fn = jax.value_and_grad(loss_and_updates, has_aux=True)

    def epoch(state, x, y, key, epoch_number):
        if shuffle:
            order = jax.random.permutation(jax.random.fold_in(key, epoch_number), x.shape[0])
        else:
            order = jnp.arange(x.shape[0])
        batches = order[: steps * batch_size].reshape(steps, batch_size)

        def step(state, indices):
            trainable, non_trainable, optimizer_values = state
            inputs, labels = _prepare_batch(x[indices], y[indices], input_scale)
            (loss, (predictions, non_trainable)), grads = gradient_fn(trainable, non_trainable, inputs, labels)
            trainable, optimizer_values = model.optimizer.stateless_apply(optimizer_values, grads, trainable)
            return (trainable, non_trainable, optimizer_values), (loss, _accuracy(labels, predictions))

        state, (losses, accuracies) = jax.lax.scan(step, state, batches)
        return state, jnp.mean(losses), jnp.mean(accuracies)

    return jax.jit(epoch, donate_argnums=0)


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
