"""The model and training specification: one dataclass that says everything about a run.

A `ModelSpec` is plain data (no Keras import), so pages, the CLI, the job runner and the run store
can pass it around, compare it and serialise it. `lib.model.build_model` turns it into a Keras model;
the arithmetic here (parameters, FLOPs, memory) needs no Keras at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from lib.datasets import DATASETS
from lib.limits import LIMIT_ENV_VARS, ServerLimits

HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "selu", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adamw", "adagrad", "nadam")
LABEL_ENCODINGS = ("one_hot", "integer")
PRECISIONS = ("float32", "mixed_bfloat16")
DEFAULT_LEARNING_RATES = {
    "sgd": 0.01,
    "adam": 0.001,
    "rmsprop": 0.001,
    "adamw": 0.001,
    "adagrad": 0.01,
    "nadam": 0.001,
}


@dataclass(frozen=True)
class ModelSpec:
    """A multilayer perceptron and how to train it.

    The defaults are the tutorial's Fashion-MNIST test (5 x Dense 500 relu, Adam, 5 epochs, batch 32).
    """

    dataset: str = "fashion_mnist"  # "fashion_mnist" or "cifar10"
    hidden_units: tuple[int, ...] = (500, 500, 500, 500, 500)  # units per hidden Dense layer
    hidden_activation: str = "relu"  # one of HIDDEN_ACTIVATIONS
    output_activation: str = "softmax"  # softmax (one class per image) or sigmoid (the tutorial's)
    optimizer: str = "adam"  # one of OPTIMIZERS
    learning_rate: float = 0.001  # optimizer step size
    label_encoding: str = "integer"  # "integer" + sparse CCE, or "one_hot" float32 + CCE
    batch_size: int = 32  # samples per training step
    epochs: int = 5  # passes over the training set
    seed: int = 0  # weight initialisation and shuffle order
    # Tuned options (all off = the tutorial's configuration).
    steps_per_execution: int = 1  # training steps per compiled call (removes per-step overhead)
    jit_compile: bool = False  # XLA-compile the train step (always on for the JAX backend)
    precision: str = "float32"  # "float32" or "mixed_bfloat16" (float32 outputs)
    device_resident: bool = False  # data kept on the device, one compiled call per epoch (JAX backend only)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # free-form notes

    def to_dict(self) -> dict[str, Any]:
        """Returns the spec as JSON-ready plain data (tuples become lists)."""
        data = asdict(self)
        data["hidden_units"] = list(self.hidden_units)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Builds a spec from `to_dict` output, ignoring unknown keys.

        Args:
            data: Plain data as written by `to_dict`.

        Returns:
            The spec. Values are not validated here; call `validate_spec`.
        """
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "hidden_units" in values:
            values["hidden_units"] = tuple(int(u) for u in values["hidden_units"])
        return cls(**values)

    def with_changes(self, **changes: Any) -> ModelSpec:
        """Returns a copy with some fields changed."""
        if "hidden_units" in changes:
            changes["hidden_units"] = tuple(int(u) for u in changes["hidden_units"])
        return replace(self, **changes)

    @property
    def loss_name(self) -> str:
        """The Keras loss that matches the label encoding."""
        if self.label_encoding == "one_hot":
            return "categorical_crossentropy"
        return "sparse_categorical_crossentropy"


class SpecError(ValueError):
    """A model spec breaks a rule or a server limit; the message names each field, the value and the fix.

    Attributes:
        problems: One readable sentence per broken rule.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


# Optimizer state values kept per weight (SGD without momentum keeps none; Adam keeps m and v).
OPTIMIZER_SLOTS = {"sgd": 0, "adam": 2, "adamw": 2, "nadam": 2, "rmsprop": 1, "adagrad": 1}
FLOAT32_BYTES = 4
BFLOAT16_BYTES = 2
# Spec optimizer name -> class in keras.optimizers.
KERAS_OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "adam": "Adam",
    "rmsprop": "RMSprop",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
    "nadam": "Nadam",
}
# Dataset name -> module in keras.datasets, for the generated script.
_KERAS_DATASET_MODULES = {"fashion_mnist": "fashion_mnist", "cifar10": "cifar10"}


def dataset_names() -> tuple[str, ...]:
    """Returns the dataset names a spec may use (the keys of `lib.datasets.DATASETS`)."""
    return tuple(DATASETS)


def dataset_dims(name: str) -> tuple[tuple[int, ...], int]:
    """Returns the image shape and number of classes of a dataset, without loading it.

    Args:
        name: A dataset name, e.g. "fashion_mnist".

    Returns:
        `(image_shape, num_classes)`, e.g. `((28, 28), 10)`.

    Raises:
        SpecError: The dataset is unknown; the message lists the known names.
    """
    if name not in DATASETS:
        raise SpecError([f"dataset: unknown dataset {name!r}; choose one of {', '.join(dataset_names())}."])
    return tuple(DATASETS[name].image_shape), DATASETS[name].num_classes


def _dims(spec: ModelSpec, input_size: int | None, num_classes: int | None) -> tuple[int, int]:
    if input_size is None or num_classes is None:
        image_shape, classes = dataset_dims(spec.dataset)
        input_size = math.prod(image_shape) if input_size is None else input_size
        num_classes = classes if num_classes is None else num_classes
    return int(input_size), int(num_classes)


def layer_sizes(
    spec: ModelSpec, input_size: int | None = None, num_classes: int | None = None
) -> list[tuple[int, int]]:
    """Returns `(inputs, outputs)` of every Dense layer, hidden layers first, output layer last.

    Args:
        spec: The model spec.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    inputs, classes = _dims(spec, input_size, num_classes)
    widths = [inputs, *spec.hidden_units, classes]
    return list(zip(widths[:-1], widths[1:], strict=True))


def count_params(spec: ModelSpec, input_size: int | None = None, num_classes: int | None = None) -> int:
    """Returns the trainable parameters (weights + biases), equal to Keras `model.count_params()`.

    Args:
        spec: The model spec.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in layer_sizes(spec, input_size, num_classes))


def flops_per_sample(spec: ModelSpec, input_size: int | None = None, num_classes: int | None = None) -> int:
    """Returns the training FLOPs for one sample: forward and backward pass through every Dense layer.

    Formula: `6 x sum(inputs x outputs)` over the Dense layers. A multiply-add counts as 2 FLOPs; the
    forward pass does one per weight (2 x in x out); the backward pass does two (gradient with respect to
    the layer's inputs and to its weights: 4 x in x out). Biases, activations, the loss and the optimizer
    update are O(units), not O(weights), and are left out.

    Args:
        spec: The model spec.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    return 6 * sum(fan_in * fan_out for fan_in, fan_out in layer_sizes(spec, input_size, num_classes))


def flops_per_epoch(
    spec: ModelSpec, num_train: int, input_size: int | None = None, num_classes: int | None = None
) -> int:
    """Returns the training FLOPs of one epoch: `flops_per_sample x num_train`.

    Args:
        spec: The model spec.
        num_train: Training samples per epoch.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    return flops_per_sample(spec, input_size, num_classes) * int(num_train)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes the training step needs on its device, estimated from the spec (no framework overhead)."""

    weights_bytes: int  # parameters, float32 (also under mixed precision: the variables stay float32)
    gradients_bytes: int  # one float32 gradient per parameter
    optimizer_bytes: int  # optimizer state: SGD 0, RMSprop/Adagrad 1, Adam/AdamW/Nadam 2 values per parameter
    activations_bytes: int  # one batch's layer inputs and outputs kept for the backward pass

    @property
    def total_bytes(self) -> int:
        """The sum of all parts."""
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes


def memory_estimate(spec: ModelSpec, input_size: int | None = None, num_classes: int | None = None) -> MemoryEstimate:
    """Estimates the device memory of one training step.

    Activations count the flattened input batch, every hidden layer's output and the output layer's values
    for one batch (bfloat16 for hidden layers under mixed precision, float32 otherwise). Frameworks keep some
    extra temporaries, so treat the total as a lower bound.

    Args:
        spec: The model spec.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    inputs, classes = _dims(spec, input_size, num_classes)
    params = count_params(spec, inputs, classes)
    hidden_bytes = BFLOAT16_BYTES if spec.precision == "mixed_bfloat16" else FLOAT32_BYTES
    activations = spec.batch_size * (
        inputs * FLOAT32_BYTES + sum(spec.hidden_units) * hidden_bytes + classes * FLOAT32_BYTES
    )
    return MemoryEstimate(
        weights_bytes=params * FLOAT32_BYTES,
        gradients_bytes=params * FLOAT32_BYTES,
        optimizer_bytes=params * FLOAT32_BYTES * OPTIMIZER_SLOTS.get(spec.optimizer, 0),
        activations_bytes=activations,
    )


@dataclass(frozen=True)
class LayerRow:
    """One row of the model summary, as Keras `model.summary()` prints it."""

    name: str  # layer name, as build_model names it
    kind: str  # Keras layer class: "Flatten" or "Dense"
    output_shape: tuple[int | None, ...]  # (None, units); None is the batch dimension
    params: int  # trainable parameters of this layer
    activation: str  # activation function ("" for Flatten)


def hidden_layer_name(index: int) -> str:
    """Returns the name build_model gives hidden layer `index` (0-based): "hidden_1", "hidden_2", ..."""
    return f"hidden_{index + 1}"


FLATTEN_LAYER_NAME = "flatten"
OUTPUT_LAYER_NAME = "output"


def layer_table(spec: ModelSpec, input_size: int | None = None, num_classes: int | None = None) -> list[LayerRow]:
    """Returns the model's layers with output shapes and parameter counts, matching `model.summary()`.

    Args:
        spec: The model spec.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    sizes = layer_sizes(spec, input_size, num_classes)
    rows = [LayerRow(FLATTEN_LAYER_NAME, "Flatten", (None, sizes[0][0]), 0, "")]
    for index, (fan_in, fan_out) in enumerate(sizes):
        is_output = index == len(sizes) - 1
        rows.append(
            LayerRow(
                name=OUTPUT_LAYER_NAME if is_output else hidden_layer_name(index),
                kind="Dense",
                output_shape=(None, fan_out),
                params=(fan_in + 1) * fan_out,
                activation=spec.output_activation if is_output else spec.hidden_activation,
            )
        )
    return rows


def validate_spec(spec: ModelSpec, limits: ServerLimits) -> None:
    """Checks every field of a spec and the server limits before any work starts.

    Args:
        spec: The spec to check.
        limits: The server limits in force.

    Raises:
        SpecError: One or more problems; `error.problems` lists them, each naming the field, the value and
            the allowed range or choices.
    """
    problems = _choice_problems(spec) + _number_problems(spec, limits) + _layer_problems(spec, limits)
    if not problems:
        params = count_params(spec)
        if params > limits.params:
            problems.append(
                f"hidden_units: the model has {params:,} parameters, over this server's limit of {limits.params:,} "
                f"({LIMIT_ENV_VARS['params']}); use fewer or smaller hidden layers."
            )
    if problems:
        raise SpecError(problems)


def _choice_problems(spec: ModelSpec) -> list[str]:
    choices = {
        "dataset": (spec.dataset, dataset_names()),
        "hidden_activation": (spec.hidden_activation, HIDDEN_ACTIVATIONS),
        "output_activation": (spec.output_activation, OUTPUT_ACTIVATIONS),
        "optimizer": (spec.optimizer, OPTIMIZERS),
        "label_encoding": (spec.label_encoding, LABEL_ENCODINGS),
        "precision": (spec.precision, PRECISIONS),
    }
    return [
        f"{name}: unknown value {value!r}; choose one of {', '.join(allowed)}."
        for name, (value, allowed) in choices.items()
        if value not in allowed
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_problems(spec: ModelSpec, limits: ServerLimits) -> list[str]:
    problems = []
    rate = spec.learning_rate
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        problems.append(f"learning_rate: {rate!r} must be a number above 0 (e.g. 0.001).")
    ranges = {
        "batch_size": (spec.batch_size, limits.batch_size, "batch_size"),
        "epochs": (spec.epochs, limits.epochs, "epochs"),
    }
    for name, (value, high, limit_name) in ranges.items():
        if not _is_int(value) or not 1 <= value <= high:
            problems.append(
                f"{name}: {value!r} must be a whole number from 1 to {high:,} "
                f"(server limit {LIMIT_ENV_VARS[limit_name]})."
            )
    if not _is_int(spec.steps_per_execution) or spec.steps_per_execution < 1:
        problems.append(f"steps_per_execution: {spec.steps_per_execution!r} must be a whole number of 1 or more.")
    if not _is_int(spec.seed) or spec.seed < 0:
        problems.append(f"seed: {spec.seed!r} must be a whole number of 0 or more.")
    for name in ("jit_compile", "device_resident"):
        if not isinstance(getattr(spec, name), bool):
            problems.append(f"{name}: {getattr(spec, name)!r} must be True or False.")
    return problems


def _layer_problems(spec: ModelSpec, limits: ServerLimits) -> list[str]:
    units = spec.hidden_units
    if len(units) == 0:
        return ["hidden_units: the model needs at least one hidden layer."]
    problems = []
    if len(units) > limits.hidden_layers:
        problems.append(
            f"hidden_units: {len(units)} hidden layers is over this server's limit of {limits.hidden_layers} "
            f"({LIMIT_ENV_VARS['hidden_layers']})."
        )
    for index, width in enumerate(units):
        if not _is_int(width) or not 1 <= width <= limits.units:
            problems.append(
                f"hidden_units: layer {index + 1} has {width!r} units; use a whole number from 1 to {limits.units:,} "
                f"(server limit {LIMIT_ENV_VARS['units']})."
            )
    return problems


def clamp_to_limits(spec: ModelSpec, limits: ServerLimits) -> tuple[ModelSpec, list[str]]:
    """Brings a spec inside the rules and limits, saying what changed (for shareable links).

    Out-of-range numbers are clamped to the nearest allowed value, unknown names fall back to the
    defaults, extra hidden layers are dropped and, if the model is still over the parameter limit,
    every hidden layer is narrowed by the same factor.

    Args:
        spec: A spec, possibly from an untrusted source such as query parameters.
        limits: The server limits in force.

    Returns:
        The adjusted spec (which passes `validate_spec`) and one notice per change.
    """
    notices: list[str] = []
    spec = _clamp_choices(spec, notices)
    spec = _clamp_numbers(spec, limits, notices)
    spec = _clamp_layers(spec, limits, notices)
    return spec, notices


def _clamp_choices(spec: ModelSpec, notices: list[str]) -> ModelSpec:
    defaults = ModelSpec()
    changes: dict[str, Any] = {}
    for name, value, allowed in (
        ("dataset", spec.dataset, dataset_names()),
        ("hidden_activation", spec.hidden_activation, HIDDEN_ACTIVATIONS),
        ("output_activation", spec.output_activation, OUTPUT_ACTIVATIONS),
        ("optimizer", spec.optimizer, OPTIMIZERS),
        ("label_encoding", spec.label_encoding, LABEL_ENCODINGS),
        ("precision", spec.precision, PRECISIONS),
    ):
        if value not in allowed:
            changes[name] = getattr(defaults, name)
            notices.append(f"{name}: unknown value {value!r} replaced by {changes[name]!r}.")
    for name in ("jit_compile", "device_resident"):
        if not isinstance(getattr(spec, name), bool):
            changes[name] = False
            notices.append(f"{name}: {getattr(spec, name)!r} replaced by False.")
    return spec.with_changes(**changes) if changes else spec


def _clamp_int(name: str, value: Any, low: int, high: int, default: int, notices: list[str], why: str) -> int:
    if not _is_int(value):
        notices.append(f"{name}: {value!r} is not a whole number; using {default}.")
        return default
    clamped = min(max(value, low), high)
    if clamped != value:
        notices.append(f"{name}: {value} -> {clamped} ({why}).")
    return clamped


def _clamp_numbers(spec: ModelSpec, limits: ServerLimits, notices: list[str]) -> ModelSpec:
    defaults = ModelSpec()
    batch_why = f"allowed 1 to {limits.batch_size:,}, server limit {LIMIT_ENV_VARS['batch_size']}"
    epochs_why = f"allowed 1 to {limits.epochs:,}, server limit {LIMIT_ENV_VARS['epochs']}"
    changes = {
        "batch_size": _clamp_int(
            "batch_size", spec.batch_size, 1, limits.batch_size, defaults.batch_size, notices, batch_why
        ),
        "epochs": _clamp_int("epochs", spec.epochs, 1, limits.epochs, defaults.epochs, notices, epochs_why),
        "steps_per_execution": _clamp_int(
            "steps_per_execution", spec.steps_per_execution, 1, 2**31 - 1, 1, notices, "at least 1"
        ),
        "seed": _clamp_int("seed", spec.seed, 0, 2**32 - 1, defaults.seed, notices, "0 to 2**32 - 1"),
    }
    rate = spec.learning_rate
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        changes["learning_rate"] = DEFAULT_LEARNING_RATES[spec.optimizer]
        notices.append(f"learning_rate: {rate!r} replaced by {changes['learning_rate']} (must be above 0).")
    return spec.with_changes(**changes)


def _clamp_layers(spec: ModelSpec, limits: ServerLimits, notices: list[str]) -> ModelSpec:
    units = [u if _is_int(u) else 1 for u in spec.hidden_units] or [1]
    if len(units) > limits.hidden_layers:
        notices.append(
            f"hidden_units: {len(units)} hidden layers -> {limits.hidden_layers} "
            f"(server limit {LIMIT_ENV_VARS['hidden_layers']})."
        )
        units = units[: limits.hidden_layers]
    clamped = [min(max(u, 1), limits.units) for u in units]
    if clamped != list(spec.hidden_units):
        notices.append(
            f"hidden_units: {list(spec.hidden_units)} -> {clamped} "
            f"(1 to {limits.units:,} units per layer, server limit {LIMIT_ENV_VARS['units']})."
        )
    spec = spec.with_changes(hidden_units=clamped)
    before = count_params(spec)
    while count_params(spec) > limits.params and max(spec.hidden_units) > 1:
        spec = spec.with_changes(hidden_units=[max(1, int(u * 0.9)) for u in spec.hidden_units])
    if count_params(spec) != before:
        notices.append(
            f"hidden_units: {clamped} -> {list(spec.hidden_units)} so the model has {count_params(spec):,} "
            f"parameters, within the limit of {limits.params:,} ({LIMIT_ENV_VARS['params']})."
        )
    return spec


def _hidden_layers_text(count: int) -> str:
    return f"{count} hidden layer{'s' if count != 1 else ''}"


def keras_code(spec: ModelSpec) -> str:
    """Returns a runnable Keras script that builds, compiles and trains the same model as `lib.model`.

    Executing the text defines `model`, compiled, with the same layers, names and parameter count as
    `lib.model.build_model`; the data loading and the `fit` call run only when the text runs as a script.

    Args:
        spec: The model spec.
    """
    image_shape, num_classes = dataset_dims(spec.dataset)
    optimizer = KERAS_OPTIMIZER_CLASSES.get(spec.optimizer, spec.optimizer)
    lines = [
        f'"""Train an MLP with {_hidden_layers_text(len(spec.hidden_units))} on {DATASETS[spec.dataset].title} '
        '(generated by the CPU vs GPU app)."""',
        "",
        "import keras",
        "",
        "# Same initial weights and shuffle order on every run.",
        f"keras.utils.set_random_seed({spec.seed})",
        "",
        "model = keras.Sequential(",
        "    [",
        *_keras_layer_lines(spec, tuple(image_shape), num_classes),
        "    ]",
        ")",
        "model.compile(",
        f"    optimizer=keras.optimizers.{optimizer}(learning_rate={spec.learning_rate!r}),",
        f'    loss="{spec.loss_name}",',
        '    metrics=["accuracy"],',
        f"    steps_per_execution={spec.steps_per_execution},",
        f"    jit_compile={spec.jit_compile},",
        ")",
        "",
        'if __name__ == "__main__":',
        *_keras_training_lines(spec, num_classes),
    ]
    return "\n".join(lines) + "\n"


def _keras_layer_lines(spec: ModelSpec, image_shape: tuple[int, ...], num_classes: int) -> list[str]:
    mixed = spec.precision == "mixed_bfloat16"
    hidden_dtype = ', dtype="mixed_bfloat16"' if mixed else ""
    output_dtype = ', dtype="float32"' if mixed else ""
    lines = [
        f"        keras.Input(shape={image_shape!r}),",
        f'        keras.layers.Flatten(name="{FLATTEN_LAYER_NAME}"),',
    ]
    for index, units in enumerate(spec.hidden_units):
        lines.append(
            f'        keras.layers.Dense({units}, activation="{spec.hidden_activation}", '
            f'name="{hidden_layer_name(index)}"{hidden_dtype}),'
        )
    lines.append(
        f'        keras.layers.Dense({num_classes}, activation="{spec.output_activation}", '
        f'name="{OUTPUT_LAYER_NAME}"{output_dtype}),'
    )
    return lines


def _keras_training_lines(spec: ModelSpec, num_classes: int) -> list[str]:
    module = _KERAS_DATASET_MODULES.get(spec.dataset, spec.dataset)
    lines = [
        "    model.summary()",
        f"    (x_train, y_train), (x_test, y_test) = keras.datasets.{module}.load_data()",
        "    # Scale images to the [0, 1] range, as float32.",
        '    x_train = x_train.astype("float32") / 255',
        '    x_test = x_test.astype("float32") / 255',
    ]
    if spec.label_encoding == "one_hot":
        lines += [
            "    # One-hot float32 labels for categorical cross-entropy.",
            f'    y_train = keras.utils.to_categorical(y_train, {num_classes}).astype("float32")',
            f'    y_test = keras.utils.to_categorical(y_test, {num_classes}).astype("float32")',
        ]
    lines += [
        f"    model.fit(x_train, y_train, batch_size={spec.batch_size}, epochs={spec.epochs}, shuffle=True)",
        "    model.evaluate(x_test, y_test)",
    ]
    return lines
