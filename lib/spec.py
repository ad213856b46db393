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


@dataclass(frozen=True)
class SpecField:
    """Everything the app says about one `ModelSpec` field: checks, link, CLI option, widget and stored column.

    Validation, clamping, shareable links (`lib.links`), `python -m lib.bench` options, the Build page's
    widgets (`ui.page_data`, `ui.keys`) and the run store (`lib.store`) all read `SPEC_FIELDS`, so a new
    field is its default in `ModelSpec` plus one entry there.
    """

    name: str  # the ModelSpec field
    kind: str  # "choice", "int", "rate" (a float above 0), "flag" (a bool) or "layers" (hidden_units, own code)
    label: str  # the Build page's widget label
    words: str  # the setting in a sentence, in the Build page's words: "the optimizer"
    link: str  # its query parameter in a shared link
    cli: str  # its `python -m lib.bench` option
    widget_key: str = ""  # the Build page's widget key; "" = the field's name
    choices: tuple[str, ...] = ()  # "choice": the allowed values
    low: int = 0  # "int": the smallest value
    high: float = 0  # "int": the largest value where no server limit caps it; "rate": the largest a link may ask
    limit: str = ""  # "int": the `ServerLimits` attribute capping it (GPUX_MAX_ variable: LIMIT_ENV_VARS[limit])
    unit: str = ""  # what one of it is, after a number: "epochs", "samples per step"
    link_phrase: str = ""  # "int": a link's value in a notice: "{:,} epochs"
    help: str = ""  # the widget's tooltip and the CLI option's help
    column: bool = False  # a column of its own in the run store's runs table (every field is in its spec JSON)

    @property
    def key(self) -> str:
        """The Build page's widget key (`ui.keys.Key` has it as a member named in upper case)."""
        return self.widget_key or self.name


SPEC_FIELDS: tuple[SpecField, ...] = (
    SpecField(
        name="dataset",
        kind="choice",
        label="Dataset",
        words="the dataset",
        link="dataset",
        cli="--dataset",
        widget_key="build_dataset",  # "dataset" is the Datasets page's
        choices=tuple(DATASETS),
        column=True,
    ),
    SpecField(
        name="hidden_units",
        kind="layers",  # a tuple: links `layers` + `units`, CLI --layers/--units too, one widget per layer
        label="Units per hidden layer",
        words="the hidden layers",
        link="units",
        cli="--hidden-units",
        widget_key="units",
        unit="units per layer",
        help="units per hidden layer",
    ),
    SpecField(
        name="hidden_activation",
        kind="choice",
        label="Hidden activation",
        words="the hidden activation",
        link="act",
        cli="--activation",
        choices=HIDDEN_ACTIVATIONS,
        help="hidden-layer activation",
    ),
    SpecField(
        name="output_activation",
        kind="choice",
        label="Output activation",
        words="the output activation",
        link="out",
        cli="--output-activation",
        choices=OUTPUT_ACTIVATIONS,
        help="softmax: one class per image, probabilities that sum to 1 (what cross-entropy expects).",
    ),
    SpecField(
        name="optimizer",
        kind="choice",
        label="Optimizer",
        words="the optimizer",
        link="opt",
        cli="--optimizer",
        choices=OPTIMIZERS,
    ),
    SpecField(
        name="learning_rate",
        kind="rate",
        label="Learning rate",
        words="the learning rate",
        link="lr",
        cli="--learning-rate",
        high=1.0,  # larger steps only diverge
        help="the optimizer's step size",
    ),
    SpecField(
        name="label_encoding",
        kind="choice",
        label="Labels",
        words="the labels",
        link="labels",
        cli="--labels",
        choices=LABEL_ENCODINGS,
        help="integer labels + sparse cross-entropy, or one-hot float32 labels (the tutorial's CIFAR-10 test).",
    ),
    SpecField(
        name="batch_size",
        kind="int",
        label="Batch size",
        words="the batch size",
        link="batch",
        cli="--batch-size",
        low=1,
        limit="batch_size",
        unit="samples per step",
        link_phrase="a batch size of {:,}",
        column=True,
    ),
    SpecField(
        name="epochs",
        kind="int",
        label="Epochs",
        words="the number of epochs",
        link="epochs",
        cli="--epochs",
        # Not "epochs", the Train page's slider: a key on two pages would carry one page's widget state to the
        # other (Streamlit's widget ids differ per page), and the Build slider would show the Train one's value.
        widget_key="build_epochs",
        low=1,
        limit="epochs",
        unit="epochs",
        link_phrase="{:,} epochs",
        column=True,
    ),
    SpecField(
        name="seed",
        kind="int",
        label="Seed",
        words="the seed",
        link="seed",
        cli="--seed",
        low=0,
        high=2**32 - 1,
        link_phrase="seed {:,}",
        help="weight initialisation and shuffle order",
    ),
    SpecField(
        name="steps_per_execution",
        kind="int",
        label="Steps per execution",
        words="steps per execution",
        link="spe",
        cli="--steps-per-execution",
        low=1,
        high=2**31 - 1,
        link_phrase="{:,} steps per execution",
        help="Training steps per call into the compiled function: fewer Python round trips per epoch.",
    ),
    SpecField(
        name="jit_compile",
        kind="flag",
        label="XLA compilation (jit_compile)",
        words="XLA compilation",
        link="jit",
        cli="--jit-compile",
        help="XLA compiles each training step into fused kernels: fewer, faster operations per step.",
    ),
    SpecField(
        name="precision",
        kind="choice",
        label="Precision",
        words="the precision",
        link="precision",
        cli="--precision",
        choices=PRECISIONS,
        help="mixed_bfloat16 computes hidden layers in bfloat16: faster on recent GPUs.",
    ),
    SpecField(
        name="device_resident",
        kind="flag",
        label="Keep the data on the device",
        words="keeping the data on the device",
        link="resident",
        cli="--device-resident",
        help="JAX backend only; other backends train with model.fit.",
    ),
)
SPEC_FIELD = {spec_field.name: spec_field for spec_field in SPEC_FIELDS}  # field name -> its facts


def spec_fields(kind: str) -> tuple[SpecField, ...]:
    """Returns the fields of one kind ("choice", "int", "rate", "flag" or "layers"), in `SPEC_FIELDS` order."""
    return tuple(spec_field for spec_field in SPEC_FIELDS if spec_field.kind == kind)


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
class LayerSpec:
    """One layer of the model as plain data: `lib.model` builds it, `keras_code` prints it, `layer_table` lists it."""

    kind: str  # Keras class: "Input", "Flatten" or "Dense"
    name: str = ""  # layer name ("" for Input, which is not one of the model's layers)
    shape: tuple[int, ...] = ()  # Input only: one image's shape, e.g. (28, 28)
    units: int = 0  # Dense only: outputs
    activation: str = ""  # Dense only: activation function
    dtype: str | None = None  # dtype policy; None: Keras' default (float32)


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


def model_layers(
    spec: ModelSpec, image_shape: tuple[int, ...] | None = None, num_classes: int | None = None
) -> tuple[LayerSpec, ...]:
    """Returns the model's layers in order: Input, Flatten, the hidden Dense layers and the output layer.

    The one description of the model: `lib.model.build_model` makes Keras layers from it, `keras_code` prints
    them and `layer_table` lists them. Under mixed precision only the hidden layers compute in bfloat16; the
    output layer stays float32 so softmax and the loss are computed in full precision.

    Args:
        spec: The model spec.
        image_shape: Shape of one image, e.g. (28, 28); from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    if image_shape is None or num_classes is None:
        registry_shape, registry_classes = dataset_dims(spec.dataset)
        image_shape = registry_shape if image_shape is None else image_shape
        num_classes = registry_classes if num_classes is None else num_classes
    hidden_dtype = "mixed_bfloat16" if spec.precision == "mixed_bfloat16" else "float32"
    hidden = [
        LayerSpec(
            "Dense", hidden_layer_name(index), units=int(units), activation=spec.hidden_activation, dtype=hidden_dtype
        )
        for index, units in enumerate(spec.hidden_units)
    ]
    return (
        LayerSpec("Input", shape=tuple(int(size) for size in image_shape)),
        LayerSpec("Flatten", FLATTEN_LAYER_NAME),
        *hidden,
        LayerSpec(
            "Dense", OUTPUT_LAYER_NAME, units=int(num_classes), activation=spec.output_activation, dtype="float32"
        ),
    )


def layer_table(spec: ModelSpec, input_size: int | None = None, num_classes: int | None = None) -> list[LayerRow]:
    """Returns the model's layers with output shapes and parameter counts, matching `model.summary()`.

    Args:
        spec: The model spec.
        input_size: Values per flattened image; from the dataset registry when None.
        num_classes: Output units; from the dataset registry when None.
    """
    image_shape = None if input_size is None else (int(input_size),)
    rows = []
    width = 0
    for layer in model_layers(spec, image_shape, num_classes):
        if layer.kind == "Input":
            width = math.prod(layer.shape)
        elif layer.kind == "Flatten":
            rows.append(LayerRow(layer.name, layer.kind, (None, width), 0, ""))
        else:
            rows.append(
                LayerRow(layer.name, layer.kind, (None, layer.units), (width + 1) * layer.units, layer.activation)
            )
            width = layer.units
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
    return [
        f"{spec_field.name}: unknown value {value!r}; choose one of {', '.join(spec_field.choices)}."
        for spec_field in spec_fields("choice")
        if (value := getattr(spec, spec_field.name)) not in spec_field.choices
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rate(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value > 0


def _number_problems(spec: ModelSpec, limits: ServerLimits) -> list[str]:
    problems = []
    for spec_field in spec_fields("rate"):
        rate = getattr(spec, spec_field.name)
        if not _is_rate(rate):
            problems.append(f"{spec_field.name}: {rate!r} must be a number above 0 (e.g. 0.001).")
    for spec_field in spec_fields("int"):
        value = getattr(spec, spec_field.name)
        if spec_field.limit:
            high = getattr(limits, spec_field.limit)
            if not _is_int(value) or not spec_field.low <= value <= high:
                problems.append(
                    f"{spec_field.name}: {value!r} must be a whole number from {spec_field.low} to {high:,} "
                    f"(server limit {LIMIT_ENV_VARS[spec_field.limit]})."
                )
        elif not _is_int(value) or value < spec_field.low:
            problems.append(f"{spec_field.name}: {value!r} must be a whole number of {spec_field.low} or more.")
    for spec_field in spec_fields("flag"):
        if not isinstance(getattr(spec, spec_field.name), bool):
            problems.append(f"{spec_field.name}: {getattr(spec, spec_field.name)!r} must be True or False.")
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
    for spec_field in (*spec_fields("choice"), *spec_fields("flag")):
        value = getattr(spec, spec_field.name)
        known = value in spec_field.choices if spec_field.kind == "choice" else isinstance(value, bool)
        if not known:
            changes[spec_field.name] = getattr(defaults, spec_field.name)
            what = "unknown value " if spec_field.kind == "choice" else ""
            notices.append(f"{spec_field.name}: {what}{value!r} replaced by {changes[spec_field.name]!r}.")
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
    changes: dict[str, Any] = {}
    for spec_field in spec_fields("int"):
        high = getattr(limits, spec_field.limit) if spec_field.limit else int(spec_field.high)
        why = f"allowed {spec_field.low} to {high:,}" + (
            f", server limit {LIMIT_ENV_VARS[spec_field.limit]}" if spec_field.limit else ""
        )
        value, default = getattr(spec, spec_field.name), getattr(defaults, spec_field.name)
        changes[spec_field.name] = _clamp_int(spec_field.name, value, spec_field.low, high, default, notices, why)
    for spec_field in spec_fields("rate"):
        rate = getattr(spec, spec_field.name)
        if not _is_rate(rate):
            changes[spec_field.name] = DEFAULT_LEARNING_RATES[spec.optimizer]
            notices.append(f"{spec_field.name}: {rate!r} replaced by {changes[spec_field.name]} (must be above 0).")
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
    lines = [
        f'"""Train an MLP with {_hidden_layers_text(len(spec.hidden_units))} on {DATASETS[spec.dataset].title} '
        '(generated by the CPU vs GPU app)."""',
        "",
        "import keras",
        "",
        *keras_model_lines(spec),
        "",
        'if __name__ == "__main__":',
        *_keras_training_lines(spec),
    ]
    return "\n".join(lines) + "\n"


def keras_model_lines(spec: ModelSpec) -> list[str]:
    """Returns the lines of `keras_code` that seed, build and compile `model` (no indentation, no import).

    Args:
        spec: The model spec.
    """
    optimizer = KERAS_OPTIMIZER_CLASSES.get(spec.optimizer, spec.optimizer)
    return [
        "# Same initial weights and shuffle order on every run.",
        f"keras.utils.set_random_seed({spec.seed})",
        "",
        "model = keras.Sequential(",
        "    [",
        *_keras_layer_lines(model_layers(spec)),
        "    ]",
        ")",
        "model.compile(",
        f"    optimizer=keras.optimizers.{optimizer}(learning_rate={spec.learning_rate!r}),",
        f'    loss="{spec.loss_name}",',
        '    metrics=["accuracy"],',
        f"    steps_per_execution={spec.steps_per_execution},",
        f"    jit_compile={spec.jit_compile},",
        ")",
    ]


def keras_preprocessing_lines(spec: ModelSpec, splits: tuple[str, ...] = ("train", "test")) -> list[str]:
    """Returns the lines of `keras_code` that scale `x_<split>` and encode `y_<split>` (no indentation).

    Args:
        spec: The model spec (its label encoding and dataset).
        splits: The splits the script has: "train", "test".
    """
    _, num_classes = dataset_dims(spec.dataset)
    lines = ["# Scale images to the [0, 1] range, as float32."]
    lines += [f'x_{split} = x_{split}.astype("float32") / 255' for split in splits]
    if spec.label_encoding == "one_hot":
        lines.append("# One-hot float32 labels for categorical cross-entropy.")
        lines += [
            f'y_{split} = keras.utils.to_categorical(y_{split}, {num_classes}).astype("float32")' for split in splits
        ]
    return lines


def _keras_layer_lines(layers: tuple[LayerSpec, ...]) -> list[str]:
    # dtype policies are printed only for a model that mixes them, so the float32 script stays the tutorial's.
    mixed = any(layer.dtype not in (None, "float32") for layer in layers)
    return [f"        {_keras_layer_text(layer, mixed)}," for layer in layers]


def _keras_layer_text(layer: LayerSpec, show_dtype: bool) -> str:
    if layer.kind == "Input":
        return f"keras.Input(shape={layer.shape!r})"
    arguments = [f"{layer.units}", f'activation="{layer.activation}"'] if layer.kind == "Dense" else []
    arguments.append(f'name="{layer.name}"')
    if show_dtype and layer.dtype is not None:
        arguments.append(f'dtype="{layer.dtype}"')
    return f"keras.layers.{layer.kind}({', '.join(arguments)})"


def _keras_training_lines(spec: ModelSpec) -> list[str]:
    module = _KERAS_DATASET_MODULES.get(spec.dataset, spec.dataset)
    lines = [
        "model.summary()",
        f"(x_train, y_train), (x_test, y_test) = keras.datasets.{module}.load_data()",
        *keras_preprocessing_lines(spec),
        f"model.fit(x_train, y_train, batch_size={spec.batch_size}, epochs={spec.epochs}, shuffle=True)",
        "model.evaluate(x_test, y_test)",
    ]
    return [f"    {line}" for line in lines]
