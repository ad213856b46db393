"""build_model: the compiled Keras model matches the spec's arithmetic and settings."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lib.model import build_model, resolve_jit_compile, resolve_steps_per_execution
from lib.presets import PRESETS
from lib.spec import ModelSpec, count_params, dataset_dims, layer_table, model_layers

SPECS = {
    "fashion-seed": PRESETS["fashion-seed"].spec,
    "cifar10-seed": PRESETS["cifar10-seed"].spec,
    "fashion-tuned": PRESETS["fashion-tuned"].spec,
    "one-layer-tanh": ModelSpec(hidden_units=(7,), hidden_activation="tanh", optimizer="sgd"),
    "cifar-mixed": ModelSpec(dataset="cifar10", hidden_units=(64, 32, 16), precision="mixed_bfloat16"),
}


def _build(spec: ModelSpec) -> keras.Model:
    keras.utils.clear_session()
    image_shape, num_classes = dataset_dims(spec.dataset)
    return build_model(spec, image_shape, num_classes)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_params_and_layer_table_match_keras(name):
    spec = SPECS[name]
    model = _build(spec)
    assert model.count_params() == count_params(spec)
    rows = layer_table(spec)
    assert [layer.name for layer in model.layers] == [row.name for row in rows]
    assert [tuple(layer.output.shape) for layer in model.layers] == [row.output_shape for row in rows]
    assert [layer.count_params() for layer in model.layers] == [row.params for row in rows]
    assert [type(layer).__name__ for layer in model.layers] == [row.kind for row in rows]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_build_model_builds_the_model_layers(name):
    spec = SPECS[name]
    model = _build(spec)
    described = model_layers(spec)
    assert tuple(model.inputs[0].shape[1:]) == described[0].shape
    assert [layer.name for layer in model.layers] == [layer.name for layer in described[1:]]
    dense = [(layer.units, layer.activation.__name__, layer.dtype_policy.name) for layer in model.layers[1:]]
    assert dense == [(layer.units, layer.activation, layer.dtype) for layer in described[2:]]


def test_compile_settings_follow_the_spec():
    spec = PRESETS["fashion-tuned"].spec
    model = _build(spec)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(spec.learning_rate)
    assert model.loss == "sparse_categorical_crossentropy"
    assert model.steps_per_execution == spec.steps_per_execution
    assert model.jit_compile is True
    assert model.layers[-1].activation.__name__ == "softmax"
    seed_model = _build(PRESETS["cifar10-seed"].spec)
    assert isinstance(seed_model.optimizer, keras.optimizers.SGD)
    assert float(seed_model.optimizer.momentum) == 0.0
    assert seed_model.loss == "categorical_crossentropy"
    assert seed_model.jit_compile is False


def test_mixed_precision_is_per_layer_and_does_not_leak():
    mixed = _build(SPECS["cifar-mixed"])
    assert [layer.dtype_policy.name for layer in mixed.layers[1:]] == ["mixed_bfloat16"] * 3 + ["float32"]
    assert mixed.layers[1].variable_dtype == "float32"
    assert mixed.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0).dtype == np.float32
    assert keras.config.dtype_policy().name == "float32"
    plain = _build(SPECS["one-layer-tanh"])
    assert {layer.dtype_policy.name for layer in plain.layers} == {"float32"}


def test_same_seed_same_weights_other_seed_other_weights():
    spec = SPECS["one-layer-tanh"]
    first = _build(spec).get_weights()[0]
    again = _build(spec).get_weights()[0]
    other = _build(spec.with_changes(seed=1)).get_weights()[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("requested", "backend", "expected"),
    [(False, "jax", True), (True, "jax", True), (False, "tensorflow", False), (True, "tensorflow", True)],
)
def test_resolve_jit_compile(requested, backend, expected):
    assert resolve_jit_compile(requested, backend) is expected


@pytest.mark.parametrize(("backend", "expected"), [("tensorflow", 16), ("jax", 16), ("torch", 1)])
def test_steps_per_execution_is_one_on_torch(backend, expected):
    assert resolve_steps_per_execution(16, backend) == expected
