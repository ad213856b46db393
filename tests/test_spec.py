"""ModelSpec arithmetic, validation, clamping and the generated Keras script."""

from __future__ import annotations

import dataclasses

import pytest

from lib.limits import ServerLimits
from lib.presets import PRESETS
from lib.spec import (
    LayerRow,
    LayerSpec,
    ModelSpec,
    SpecError,
    clamp_to_limits,
    count_params,
    dataset_dims,
    flops_per_epoch,
    flops_per_sample,
    keras_code,
    layer_table,
    memory_estimate,
    model_layers,
    validate_spec,
)

LIMITS = ServerLimits()
TINY = ModelSpec(hidden_units=(8, 4), batch_size=16, epochs=1)


def test_dataset_dims_come_from_the_registry():
    assert dataset_dims("fashion_mnist") == ((28, 28), 10)
    assert dataset_dims("cifar10") == ((32, 32, 3), 10)
    with pytest.raises(SpecError, match="unknown dataset 'mnist'.*fashion_mnist"):
        dataset_dims("mnist")


def test_count_params_of_the_tutorial_models():
    # Flatten 784 -> 5 x 500 -> 10: weights plus biases.
    assert count_params(PRESETS["fashion-seed"].spec) == 784 * 500 + 500 + 4 * (500 * 500 + 500) + 500 * 10 + 10
    # Flatten 3072 -> 3000 -> 1000 -> 10.
    assert count_params(PRESETS["cifar10-seed"].spec) == 12_230_010


def test_count_params_with_explicit_sizes():
    assert count_params(TINY, input_size=3, num_classes=2) == (3 * 8 + 8) + (8 * 4 + 4) + (4 * 2 + 2)


def test_flops_follow_the_documented_formula():
    # 6 x sum(in x out): 2 forward + 4 backward FLOPs per weight per sample, biases left out.
    assert flops_per_sample(TINY, input_size=3, num_classes=2) == 6 * (3 * 8 + 8 * 4 + 4 * 2)
    assert flops_per_sample(TINY) == 6 * (784 * 8 + 8 * 4 + 4 * 10)
    assert flops_per_epoch(TINY, 1000) == 1000 * flops_per_sample(TINY)
    assert flops_per_epoch(TINY, 10, input_size=3, num_classes=2) == 10 * 6 * 64


@pytest.mark.parametrize(("optimizer", "slots"), [("sgd", 0), ("adam", 2), ("adamw", 2), ("rmsprop", 1)])
def test_memory_estimate_counts_optimizer_state(optimizer, slots):
    spec = TINY.with_changes(optimizer=optimizer)
    estimate = memory_estimate(spec)
    params = count_params(spec)
    assert estimate.weights_bytes == params * 4
    assert estimate.gradients_bytes == params * 4
    assert estimate.optimizer_bytes == slots * params * 4
    assert estimate.activations_bytes == 16 * (784 + 8 + 4 + 10) * 4
    assert estimate.total_bytes == sum(
        [estimate.weights_bytes, estimate.gradients_bytes, estimate.optimizer_bytes, estimate.activations_bytes]
    )


def test_memory_estimate_mixed_precision_halves_hidden_activations():
    mixed = memory_estimate(TINY.with_changes(precision="mixed_bfloat16"))
    assert mixed.activations_bytes == 16 * (784 * 4 + (8 + 4) * 2 + 10 * 4)
    assert mixed.weights_bytes == memory_estimate(TINY).weights_bytes


def test_model_layers_are_plain_data_from_input_to_output():
    assert model_layers(TINY.with_changes(precision="mixed_bfloat16")) == (
        LayerSpec("Input", shape=(28, 28)),
        LayerSpec("Flatten", "flatten"),
        LayerSpec("Dense", "hidden_1", units=8, activation="relu", dtype="mixed_bfloat16"),
        LayerSpec("Dense", "hidden_2", units=4, activation="relu", dtype="mixed_bfloat16"),
        LayerSpec("Dense", "output", units=10, activation="softmax", dtype="float32"),
    )
    other = model_layers(TINY.with_changes(hidden_activation="tanh"), image_shape=(32, 32, 3), num_classes=3)
    assert other[0].shape == (32, 32, 3)
    assert [(layer.units, layer.activation, layer.dtype) for layer in other[2:]] == [
        (8, "tanh", "float32"),
        (4, "tanh", "float32"),
        (3, "softmax", "float32"),
    ]


def test_keras_code_prints_one_line_per_layer_and_dtypes_only_when_mixed():
    plain = keras_code(TINY)
    assert "keras.Input(shape=(28, 28))," in plain
    assert 'keras.layers.Dense(8, activation="relu", name="hidden_1"),' in plain
    assert "dtype=" not in plain
    mixed = keras_code(TINY.with_changes(precision="mixed_bfloat16"))
    assert 'keras.layers.Dense(4, activation="relu", name="hidden_2", dtype="mixed_bfloat16"),' in mixed
    assert 'keras.layers.Dense(10, activation="softmax", name="output", dtype="float32"),' in mixed


def test_layer_table_rows():
    rows = layer_table(TINY)
    assert rows == [
        LayerRow("flatten", "Flatten", (None, 784), 0, ""),
        LayerRow("hidden_1", "Dense", (None, 8), 784 * 8 + 8, "relu"),
        LayerRow("hidden_2", "Dense", (None, 4), 8 * 4 + 4, "relu"),
        LayerRow("output", "Dense", (None, 10), 4 * 10 + 10, "softmax"),
    ]
    assert sum(row.params for row in rows) == count_params(TINY)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    validate_spec(PRESETS[name].spec, LIMITS)


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"hidden_units": ()}, ["hidden_units", "at least one hidden layer"]),
        ({"hidden_units": (64, 0)}, ["hidden_units", "layer 2", "from 1 to 4,096", "GPUX_MAX_UNITS"]),
        ({"hidden_units": (-5,)}, ["layer 1", "-5"]),
        ({"hidden_units": (5000,)}, ["5000", "GPUX_MAX_UNITS"]),
        ({"hidden_units": (16,) * 9}, ["9 hidden layers", "limit of 8", "GPUX_MAX_HIDDEN_LAYERS"]),
        ({"hidden_activation": "swish"}, ["hidden_activation", "'swish'", "relu"]),
        ({"output_activation": "relu"}, ["output_activation", "softmax"]),
        ({"optimizer": "lbfgs"}, ["optimizer", "'lbfgs'", "adam"]),
        ({"label_encoding": "onehot"}, ["label_encoding", "one_hot"]),
        ({"dataset": "mnist"}, ["dataset", "'mnist'", "cifar10"]),
        ({"precision": "float16"}, ["precision", "mixed_bfloat16"]),
        ({"learning_rate": 0.0}, ["learning_rate", "above 0"]),
        ({"learning_rate": -0.1}, ["learning_rate"]),
        ({"learning_rate": float("nan")}, ["learning_rate"]),
        ({"batch_size": 0}, ["batch_size", "1 to 8,192", "GPUX_MAX_BATCH_SIZE"]),
        ({"batch_size": 10_000}, ["batch_size", "GPUX_MAX_BATCH_SIZE"]),
        ({"epochs": 51}, ["epochs", "1 to 50", "GPUX_MAX_EPOCHS"]),
        ({"epochs": 2.5}, ["epochs", "whole number"]),
        ({"steps_per_execution": 0}, ["steps_per_execution"]),
        ({"seed": -1}, ["seed"]),
        ({"jit_compile": "yes"}, ["jit_compile"]),
        ({"device_resident": 1}, ["device_resident"]),
    ],
)
def test_validate_spec_names_the_field_and_limit(changes, fragments):
    spec = dataclasses.replace(ModelSpec(), **changes)
    with pytest.raises(SpecError) as caught:
        validate_spec(spec, LIMITS)
    assert len(caught.value.problems) == 1
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_validate_spec_parameter_limit():
    spec = ModelSpec(hidden_units=(4096, 4096))  # 785 x 4096 + 4097 x 4096 + 4097 x 10 = 20,037,642
    with pytest.raises(SpecError, match=r"20,037,642 parameters.*20,000,000.*GPUX_MAX_PARAMS"):
        validate_spec(spec, LIMITS)
    validate_spec(spec, ServerLimits(params=30_000_000))


def test_validate_spec_lists_every_problem():
    spec = ModelSpec(optimizer="lbfgs", epochs=0, hidden_units=())
    with pytest.raises(SpecError) as caught:
        validate_spec(spec, LIMITS)
    assert len(caught.value.problems) == 3


def test_clamp_to_limits_leaves_a_valid_spec_alone():
    spec = PRESETS["fashion-seed"].spec
    assert clamp_to_limits(spec, LIMITS) == (spec, [])


def test_clamp_to_limits_clamps_with_one_notice_per_change():
    limits = ServerLimits(hidden_layers=2, units=100, epochs=3, batch_size=64)
    spec = ModelSpec(hidden_units=(500, 50, 20), epochs=10, batch_size=128, learning_rate=-1.0, optimizer="sgd")
    clamped, notices = clamp_to_limits(spec, limits)
    assert clamped.hidden_units == (100, 50)
    assert clamped.epochs == 3
    assert clamped.batch_size == 64
    assert clamped.learning_rate == 0.01  # the SGD default
    assert len(notices) == 5
    joined = " ".join(notices)
    for fragment in ("3 hidden layers -> 2", "GPUX_MAX_UNITS", "epochs: 10 -> 3", "batch_size: 128 -> 64", "-1.0"):
        assert fragment in joined
    validate_spec(clamped, limits)


def test_clamp_to_limits_replaces_unknown_names_and_bad_numbers():
    spec = dataclasses.replace(ModelSpec(), optimizer="lbfgs", dataset="mnist", epochs=0, seed=-3, hidden_units=())
    clamped, notices = clamp_to_limits(spec, LIMITS)
    assert clamped.optimizer == "adam"
    assert clamped.dataset == "fashion_mnist"
    assert clamped.epochs == 1
    assert clamped.seed == 0
    assert clamped.hidden_units == (1,)
    assert len(notices) == 5
    validate_spec(clamped, LIMITS)


def test_clamp_to_limits_narrows_layers_to_the_parameter_limit():
    limits = ServerLimits(params=1_000_000)
    clamped, notices = clamp_to_limits(PRESETS["cifar10-seed"].spec, limits)
    assert count_params(clamped) <= 1_000_000
    assert len(clamped.hidden_units) == 2
    assert clamped.hidden_units[0] > clamped.hidden_units[1]  # same shape, narrower
    assert len(notices) == 1 and "GPUX_MAX_PARAMS" in notices[0]
    validate_spec(clamped, limits)


def _exec_keras_code(spec: ModelSpec):
    namespace = {"__name__": "generated_snippet"}
    exec(compile(keras_code(spec), "<keras_code>", "exec"), namespace)
    return namespace["model"]


@pytest.mark.parametrize(
    "spec",
    [
        PRESETS["fashion-seed"].spec,
        PRESETS["cifar10-tuned"].spec,
        ModelSpec(hidden_units=(32, 16), optimizer="rmsprop", learning_rate=0.002, precision="mixed_bfloat16"),
    ],
    ids=["fashion-seed", "cifar10-tuned", "mixed-rmsprop"],
)
def test_keras_code_renders_the_model_layers(spec):
    model = _exec_keras_code(spec)
    assert model.count_params() == count_params(spec)
    assert [layer.name for layer in model.layers] == [row.name for row in layer_table(spec)]
    described = model_layers(spec)[1:]  # the Input is not one of the model's layers
    assert [type(layer).__name__ for layer in model.layers] == [layer.kind for layer in described]
    assert [getattr(layer, "units", 0) for layer in model.layers] == [layer.units for layer in described]
    assert model.loss == spec.loss_name
    assert type(model.optimizer).__name__.lower() == spec.optimizer
    assert float(model.optimizer.learning_rate) == pytest.approx(spec.learning_rate)
    assert model.steps_per_execution == spec.steps_per_execution
    hidden_policy = model.layers[1].dtype_policy.name
    assert hidden_policy == ("mixed_bfloat16" if spec.precision == "mixed_bfloat16" else "float32")
    assert model.layers[-1].dtype_policy.name == "float32"


def test_keras_code_is_a_script_with_data_loading_and_fit():
    code = keras_code(PRESETS["cifar10-seed"].spec)
    assert "keras.datasets.cifar10.load_data()" in code
    assert 'astype("float32") / 255' in code
    assert "to_categorical" in code
    assert "model.fit(x_train, y_train, batch_size=32, epochs=10, shuffle=True)" in code
    assert "keras.optimizers.SGD(learning_rate=0.01)" in code
