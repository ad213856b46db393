"""The model and training specification: one dataclass that says everything about a run.

A `ModelSpec` is plain data (no Keras import), so pages, the CLI, the job runner and the run store
can pass it around, compare it and serialise it. `lib.model.build_model` turns it into a Keras model;
the arithmetic here (parameters, FLOPs, memory) needs no Keras at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

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
