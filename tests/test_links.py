"""Tests of shareable links: spec and run settings to query parameters and back."""

from __future__ import annotations

import pytest

from lib.limits import ServerLimits
from lib.links import (
    RunSettings,
    preset_from_query_params,
    run_settings_from_query_params,
    spec_from_query_params,
    spec_to_query_params,
)
from lib.spec import ModelSpec, count_params

LIMITS = ServerLimits()


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(),
        ModelSpec(
            dataset="cifar10",
            hidden_units=(256, 128, 64),
            hidden_activation="tanh",
            output_activation="sigmoid",
            optimizer="sgd",
            learning_rate=0.05,
            label_encoding="one_hot",
            batch_size=128,
            epochs=3,
            seed=7,
            steps_per_execution=16,
            jit_compile=True,
            precision="mixed_bfloat16",
            device_resident=True,
        ),
    ],
)
def test_spec_round_trips_through_query_params(spec):
    params = spec_to_query_params(spec)
    assert all(isinstance(value, str) for value in params.values())
    parsed, notices = spec_from_query_params(params, LIMITS)
    assert parsed == spec
    assert notices == []


def test_equal_layers_are_written_as_layers_and_units():
    params = spec_to_query_params(ModelSpec(hidden_units=(500,) * 5))
    assert params["layers"] == "5" and params["units"] == "500"
    assert spec_to_query_params(ModelSpec(hidden_units=(64, 32)))["units"] == "64,32"
    assert "layers" not in spec_to_query_params(ModelSpec(hidden_units=(64, 32)))


def test_run_settings_and_preset_are_written():
    params = spec_to_query_params(
        ModelSpec(), RunSettings(devices=("cpu:0", "gpu:0"), sample_limit=500), "fashion-seed"
    )
    assert params["devices"] == "cpu:0,gpu:0"
    assert params["samples"] == "500"
    assert params["preset"] == "fashion-seed"


def test_partial_link_keeps_the_base_spec_for_missing_fields():
    base = ModelSpec(optimizer="sgd", learning_rate=0.01)
    parsed, notices = spec_from_query_params({"layers": "2", "units": "64", "epochs": "3"}, LIMITS, base=base)
    assert parsed.hidden_units == (64, 64)
    assert parsed.epochs == 3
    assert parsed.optimizer == "sgd" and parsed.learning_rate == 0.01
    assert notices == []


def test_layers_alone_repeats_the_base_width():
    parsed, _ = spec_from_query_params({"layers": "2"}, LIMITS, base=ModelSpec(hidden_units=(300, 100)))
    assert parsed.hidden_units == (300, 300)


def test_repeated_parameters_use_the_last_value():
    parsed, notices = spec_from_query_params({"epochs": ["2", "4"]}, LIMITS)
    assert parsed.epochs == 4 and notices == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"act": "swish"}, "act='swish'"),
        ({"opt": "lbfgs"}, "opt='lbfgs'"),
        ({"dataset": "imagenet"}, "dataset='imagenet'"),
        ({"epochs": "many"}, "not a whole number"),
        ({"batch": "0"}, "at least 1"),
        ({"lr": "nan"}, "positive number"),
        ({"lr": "-1"}, "positive number"),
        ({"lr": "5"}, "only diverge"),
        ({"jit": "maybe"}, "use 1 or 0"),
        ({"resident": "perhaps"}, "use 1 or 0"),
        ({"units": "64,abc"}, "whole numbers"),
        ({"units": ""}, "whole numbers"),
        ({"layers": "-3"}, "at least 1"),
        ({"colour": "red"}, "'colour'"),
    ],
)
def test_invalid_values_are_ignored_with_a_notice(params, fragment):
    parsed, notices = spec_from_query_params(params, LIMITS)
    assert parsed == ModelSpec()
    assert len(notices) == 1
    assert fragment in notices[0]


def test_values_beyond_limits_are_clamped_with_notices():
    limits = ServerLimits(hidden_layers=3, units=256, epochs=4, batch_size=64)
    params = {"layers": "10", "units": "1000", "epochs": "99", "batch": "4096"}
    parsed, notices = spec_from_query_params(params, limits)
    assert parsed.hidden_units == (256, 256, 256)
    assert parsed.epochs == 4
    assert parsed.batch_size == 64
    joined = " ".join(notices)
    for name in ("hidden_units", "epochs", "batch_size", "GPUX_MAX_UNITS"):
        assert name in joined


def test_parameter_limit_narrows_layers():
    limits = ServerLimits(params=100_000)
    parsed, notices = spec_from_query_params({"layers": "2", "units": "1000"}, limits)
    assert count_params(parsed) <= 100_000
    assert any("parameters" in notice for notice in notices)


def test_run_settings_filter_devices_and_clamp_samples():
    params = {"devices": "CPU:0,gpu:3,tpu:0,cpu:0", "samples": "1000000"}
    settings, notices = run_settings_from_query_params(params, ServerLimits(samples=60_000), ["cpu:0"])
    assert settings == RunSettings(devices=("cpu:0",), sample_limit=60_000)
    assert len(notices) == 3
    assert "gpu:3" in notices[0] and "this server has cpu:0" in notices[0]
    assert "tpu:0" in notices[1]
    assert "60,000" in notices[2]


def test_data_parallel_device_survives_a_link_where_the_server_offers_it():
    params = {"devices": "gpu:0,GPU:ALL"}
    settings, notices = run_settings_from_query_params(params, ServerLimits(), ["cpu:0", "gpu:0", "gpu:1", "gpu:all"])
    assert settings.devices == ("gpu:0", "gpu:all")
    assert notices == []
    round_trip = spec_to_query_params(ModelSpec(), settings, None)
    assert round_trip["devices"] == "gpu:0,gpu:all"


def test_data_parallel_device_is_dropped_with_a_notice_on_a_one_gpu_server():
    settings, notices = run_settings_from_query_params(
        {"devices": "gpu:all,cpu:all"}, ServerLimits(), ["cpu:0", "gpu:0"]
    )
    assert settings.devices == ()
    assert len(notices) == 2
    assert "gpu:all" in notices[0] and "this server has cpu:0, gpu:0" in notices[0]


def test_run_settings_ignore_bad_sample_limit():
    settings, notices = run_settings_from_query_params({"samples": "lots"}, LIMITS, ["cpu:0"])
    assert settings.sample_limit is None
    assert "samples='lots'" in notices[0]
    assert run_settings_from_query_params({}, LIMITS, ["cpu:0"]) == (RunSettings(), [])


def test_preset_from_query_params():
    names = ("fashion-seed", "cifar10-seed")
    assert preset_from_query_params({"preset": "fashion-seed"}, names) == ("fashion-seed", [])
    assert preset_from_query_params({}, names) == (None, [])
    name, notices = preset_from_query_params({"preset": "mnist"}, names)
    assert name is None and "'mnist'" in notices[0] and "fashion-seed" in notices[0]
