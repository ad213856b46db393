"""Turns a `ModelSpec` into a compiled Keras model, the same on every backend and device.

The model is the tutorial's: `Flatten` followed by Dense layers. It expects float32 images already
scaled to [0, 1]; the scaling happens in the input pipeline (`lib.engine`), not inside the model, so
the layer table and the parameter count match the tutorial's `model.summary()`.

Keras is imported inside the functions: pages import `lib.spec` at start-up and must not pay for it.
"""

from __future__ import annotations

from typing import Any

from lib.spec import KERAS_OPTIMIZER_CLASSES, LayerSpec, ModelSpec, model_layers


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Builds and compiles the spec's model, with its seed set first.

    The layers are `lib.spec.model_layers(spec)`, the list `lib.spec.keras_code` prints. Their dtype
    policies are set per layer (hidden layers bfloat16 under mixed precision, the output layer float32),
    so nothing leaks into the next model.

    Args:
        spec: The model and training spec (assumed valid; see `lib.spec.validate_spec`).
        input_shape: Shape of one image, e.g. (28, 28) or (32, 32, 3).
        num_classes: Units of the output layer.

    Returns:
        A compiled `keras.Model` with accuracy as its metric.
    """
    import keras

    # Same initial weights (and, later, the same shuffle order) for the same seed.
    keras.utils.set_random_seed(spec.seed)
    layers = [keras_layer(layer) for layer in model_layers(spec, tuple(input_shape), num_classes)]
    model = keras.Sequential(layers)
    model.compile(
        optimizer=make_optimizer(spec),
        loss=spec.loss_name,
        metrics=["accuracy"],
        steps_per_execution=resolve_steps_per_execution(spec.steps_per_execution, keras.backend.backend()),
        jit_compile=resolve_jit_compile(spec.jit_compile, keras.backend.backend()),
    )
    return model


def keras_layer(layer: LayerSpec) -> Any:
    """Returns the Keras object of one layer of `lib.spec.model_layers` (what `lib.spec.keras_code` prints for it).

    Args:
        layer: An "Input", "Flatten" or "Dense" layer.
    """
    import keras

    if layer.kind == "Input":
        return keras.Input(shape=layer.shape)
    options = {} if layer.dtype is None else {"dtype": layer.dtype}
    if layer.kind == "Flatten":
        return keras.layers.Flatten(name=layer.name, **options)
    return keras.layers.Dense(layer.units, activation=layer.activation, name=layer.name, **options)


def make_optimizer(spec: ModelSpec) -> Any:
    """Returns a fresh Keras optimizer of the spec's kind and learning rate (SGD without momentum)."""
    import keras

    optimizer_class = getattr(keras.optimizers, KERAS_OPTIMIZER_CLASSES[spec.optimizer])
    return optimizer_class(learning_rate=spec.learning_rate)


def resolve_steps_per_execution(requested: int, backend: str) -> int:
    """Returns the `steps_per_execution` value to pass to `model.compile` on a backend.

    Keras 3's PyTorch trainer accepts only 1 ("`steps_per_execution` must be 1 with the PyTorch backend"),
    so a spec asking for more (the tuned presets ask for 16) trains one step per call there instead of
    failing; TensorFlow and JAX get what the spec asks for.

    Args:
        requested: The spec's `steps_per_execution`.
        backend: "tensorflow", "jax" or "torch".
    """
    return 1 if backend == "torch" else requested


def resolve_jit_compile(requested: bool, backend: str) -> bool:
    """Returns the `jit_compile` value to pass to `model.compile` on a backend.

    JAX always compiles: its non-jitted path runs op by op and is not what JAX users get. On the
    other backends the spec decides (TensorFlow: XLA; PyTorch: `torch.compile`).

    Args:
        requested: The spec's `jit_compile`.
        backend: The Keras backend name.
    """
    if backend == "jax":
        return True
    return bool(requested)
