"""Tests of the plain helpers behind the Build, Train and Results pages."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

from lib.keys import Key, layer_units_key
from lib.presets import PRESETS
from lib.spec import ModelSpec
from lib.ui_state import (
    batch_size_options,
    build_widget_values,
    default_comparison,
    format_count,
    matching_preset,
    run_filters,
    spec_from_build_widgets,
    units_options,
)


@pytest.mark.parametrize("name", list(PRESETS))
def test_widget_values_round_trip_every_preset(name):
    spec = PRESETS[name].spec
    values = build_widget_values(spec)
    values[Key.PER_LAYER_UNITS] = len(set(spec.hidden_units)) > 1
    assert spec_from_build_widgets(values, ModelSpec()) == spec


def test_same_width_mode_repeats_units_and_per_layer_mode_fills_new_layers():
    base = ModelSpec(hidden_units=(100, 50))
    assert spec_from_build_widgets({Key.HIDDEN_LAYERS: 3, Key.UNITS: 64}, base).hidden_units == (64, 64, 64)
    values = {Key.PER_LAYER_UNITS: True, Key.HIDDEN_LAYERS: 3, layer_units_key(0): 100, layer_units_key(1): 50}
    assert spec_from_build_widgets(values, base).hidden_units == (100, 50, 50)


def test_matching_preset_ignores_epochs_only():
    seed = PRESETS["fashion-seed"].spec
    assert matching_preset(seed.with_changes(epochs=1), PRESETS) == "fashion-seed"
    assert matching_preset(seed.with_changes(batch_size=64), PRESETS) is None


def test_option_lists_stop_at_the_limit_and_keep_the_current_value():
    assert units_options(256, 300)[-1] == 256
    assert 300 in units_options(4096, 300)
    assert batch_size_options(100, 48) == [1, 2, 4, 8, 16, 32, 48, 64]


def test_run_filters_leave_out_empty_choices():
    assert run_filters([], [], [], None) == {}
    filters = run_filters(["cifar10"], ["cpu:0"], [], datetime.date(2025, 3, 4))
    assert filters == {
        "dataset": ["cifar10"],
        "device": ["cpu:0"],
        "since": datetime.datetime(2025, 3, 4, tzinfo=datetime.UTC),
    }


def test_default_comparison_prefers_the_session_job_then_the_latest():
    runs = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "job_id": ["a", "a", "b", "c"],
            "status": ["done", "done", "done", "failed"],
        }
    )
    assert default_comparison(runs, "a") == [1, 2]
    assert default_comparison(runs, None) == [3]
    assert default_comparison(runs, "gone") == [3]
    assert default_comparison(runs[runs["status"] == "failed"], None) == []


@pytest.mark.parametrize(("value", "text"), [(999, "999 FLOP"), (8_380_000, "8.38 MFLOP"), (5.03e11, "503.00 GFLOP")])
def test_format_count(value, text):
    assert format_count(value, "FLOP") == text
