"""The tutorial presets and their tuned versions."""

from __future__ import annotations

import pytest

from lib.presets import PRESETS, Preset, PresetNotFoundError, get_preset


def test_preset_names():
    assert sorted(PRESETS) == ["cifar10-seed", "cifar10-tuned", "fashion-seed", "fashion-tuned"]
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset)
        assert preset.name == name
        assert preset.title and preset.description


def test_cifar10_seed_is_the_tutorial_model():
    spec = PRESETS["cifar10-seed"].spec
    assert spec.dataset == "cifar10"
    assert spec.hidden_units == (3000, 1000)
    assert spec.hidden_activation == "relu"
    assert spec.output_activation == "softmax"
    assert (spec.optimizer, spec.learning_rate) == ("sgd", 0.01)
    assert spec.label_encoding == "one_hot"
    assert spec.loss_name == "categorical_crossentropy"
    assert (spec.epochs, spec.batch_size) == (10, 32)
    assert (spec.steps_per_execution, spec.jit_compile, spec.precision) == (1, False, "float32")


def test_fashion_seed_is_the_tutorial_model():
    spec = PRESETS["fashion-seed"].spec
    assert spec.dataset == "fashion_mnist"
    assert spec.hidden_units == (500,) * 5
    assert spec.hidden_activation == "relu"
    assert spec.output_activation == "softmax"
    assert (spec.optimizer, spec.learning_rate) == ("adam", 0.001)
    assert spec.label_encoding == "integer"
    assert spec.loss_name == "sparse_categorical_crossentropy"
    assert (spec.epochs, spec.batch_size) == (5, 32)
    assert (spec.steps_per_execution, spec.jit_compile, spec.precision) == (1, False, "float32")


@pytest.mark.parametrize(
    ("tuned", "seed", "batch_size"), [("cifar10-tuned", "cifar10-seed", 2048), ("fashion-tuned", "fashion-seed", 1024)]
)
def test_tuned_presets_keep_the_model_and_change_the_feeding(tuned, seed, batch_size):
    tuned_spec, seed_spec = PRESETS[tuned].spec, PRESETS[seed].spec
    for field in ("dataset", "hidden_units", "hidden_activation", "output_activation", "optimizer", "label_encoding"):
        assert getattr(tuned_spec, field) == getattr(seed_spec, field)
    assert tuned_spec.epochs == seed_spec.epochs
    assert tuned_spec.batch_size == batch_size
    assert seed_spec.learning_rate < tuned_spec.learning_rate < seed_spec.learning_rate * batch_size / 32
    assert 8 <= tuned_spec.steps_per_execution <= 64
    assert tuned_spec.jit_compile is True
    assert tuned_spec.precision == "float32"
    assert tuned_spec.device_resident is True and seed_spec.device_resident is False
    description = PRESETS[tuned].description
    assert f"Batch {batch_size:,}" in description and "Steps per execution 16" in description
    assert "steps_per_execution" not in description and "jit_compile" not in description and "seed" not in description
    assert "stays on the device" in description


@pytest.mark.parametrize("name", ["cifar10-seed", "fashion-seed"])
def test_seed_descriptions_explain_the_softmax_fix(name):
    description = PRESETS[name].description
    for fragment in ("sigmoid", '"digits"', "softmax", "exactly one class", "categorical cross-entropy"):
        assert fragment in description


def test_get_preset():
    assert get_preset("fashion-seed") is PRESETS["fashion-seed"]
    with pytest.raises(PresetNotFoundError, match="'mnist-seed'.*cifar10-seed, fashion-seed, cifar10-tuned"):
        get_preset("mnist-seed")
