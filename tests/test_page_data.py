"""Tests of the plain helpers behind the Build, Train and Results pages."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

from lib.formatting import format_count
from lib.presets import PRESETS
from lib.spec import ModelSpec
from ui.keys import Key, layer_units_key
from ui.page_data import (
    batch_size_options,
    build_widget_values,
    history_table,
    machines_table,
    matching_preset,
    run_filters,
    run_label,
    run_machines,
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


def test_run_filters_keep_the_chosen_machines():
    assert run_filters([], [], [], None, []) == {}
    assert run_filters([], ["gpu:0"], [], None, ["machine-2"]) == {"device": ["gpu:0"], "machine": ["machine-2"]}


def _history_runs() -> pd.DataFrame:
    """Two stored-looking runs: a preset on real data, a custom model on generated data."""
    return pd.DataFrame(
        {
            "id": [1, 2],
            "created_at": pd.to_datetime(["2025-01-02 10:11", "2025-01-03 09:00"], utc=True),
            "status": ["done", "done"],
            "preset": ["fashion-seed", None],
            "dataset": ["fashion_mnist", "cifar10"],
            "hidden_units": [[500] * 5, [64, 32]],
            "device": ["cpu:0", "cpu:0"],
            "synthetic": [False, True],
            "batch_size": [32, 256],
            "test_accuracy": [0.8123, 0.1],
        }
    )


def test_history_table_shows_titles_and_no_accuracy_for_generated_data():
    table = history_table(_history_runs())
    assert list(table["Run"]) == [2, 1]
    assert list(table["Model"]) == ["CIFAR-10, custom model (layers 64-32)", "Fashion-MNIST, as in the tutorial"]
    assert list(table["Dataset"]) == ["CIFAR-10", "Fashion-MNIST"]
    assert list(table["Data"]) == ["generated", "real"]
    assert list(table["Test accuracy"]) == ["— (generated data)", "81.2%"]
    assert "Preset" not in table and "Generated data" not in table


def test_history_table_shows_a_dash_for_a_missing_accuracy():
    runs = _history_runs().assign(test_accuracy=[float("nan"), float("nan")], synthetic=[False, False])
    assert list(history_table(runs)["Test accuracy"]) == ["—", "—"]


def test_run_label_uses_the_preset_title_and_marks_generated_data():
    real, generated = (row for _, row in _history_runs().iterrows())
    assert run_label(real) == "#1 cpu:0 · Fashion-MNIST, as in the tutorial · batch 32 · 2025-01-02 10:11"
    assert run_label(generated).endswith("· generated data")
    assert "fashion-seed" not in run_label(real)


@pytest.mark.parametrize(("value", "text"), [(999, "999 FLOP"), (8_380_000, "8.38 MFLOP"), (5.03e11, "503.00 GFLOP")])
def test_format_count(value, text):
    assert format_count(value, "FLOP") == text


MACHINE_1 = {"node": "machine-1", "host": "ip-1", "cpu_model": "Test CPU", "logical_cores": 8, "gpus": []}
MACHINE_2 = {"node": "machine-2", "host": "ip-2", "cpu_model": "Test CPU", "logical_cores": 8, "gpus": ["NVIDIA L4"]}


def _cluster_runs() -> pd.DataFrame:
    """Three runs: one stored before runs kept a machine name, then one on each of a cluster's two machines."""
    return pd.concat([_history_runs(), _history_runs().iloc[:1].assign(id=3)], ignore_index=True).assign(
        hardware=[{"cpu_model": "Old CPU"}, MACHINE_1, MACHINE_2]
    )


def test_history_table_names_each_runs_machine():
    assert list(history_table(_cluster_runs())["Machine"]) == ["machine-2", "machine-1", "this server"]
    assert "Machine" not in history_table(_history_runs())  # a frame without hardware (none stored)


def test_run_label_names_the_machine_when_asked():
    old, first, _ = (row for _, row in _cluster_runs().iterrows())
    assert run_label(first, with_machine=True).startswith("#2 cpu:0 on machine-1 · CIFAR-10, custom model")
    assert run_label(old, with_machine=True).startswith("#1 cpu:0 on this server · ")
    assert "machine-1" not in run_label(first)


def test_machines_table_says_what_each_machine_has_and_how_many_runs_it_ran():
    runs = _cluster_runs()
    assert run_machines(runs) == ["machine-1", "machine-2", "this server"]
    assert run_machines(_history_runs()) == []
    table = machines_table(pd.concat([runs, runs.iloc[1:2]], ignore_index=True))
    assert list(table["Machine"]) == ["machine-1", "machine-2", "this server"]
    assert list(table["Host"]) == ["ip-1", "ip-2", "—"]
    assert list(table["Runs"]) == [2, 1, 1]
    hardware = list(table["CPU, RAM and GPUs"])
    assert hardware[1] == "Test CPU, 8 logical cores, RAM unknown, GPUs: NVIDIA L4"
    assert hardware[2].startswith("Old CPU, ")
