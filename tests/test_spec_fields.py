"""Adding a ModelSpec field is one entry in lib.spec.SPEC_FIELDS: checks, links, CLI, widgets and store follow it.

Every test here walks the table, so a new field needs no new test: a spec with every field away from its
default must survive a shareable link, the CLI's options, the Build page's widgets and the run store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lib.bench import build_parser, spec_from_args
from lib.device_run import DeviceRun
from lib.limits import ServerLimits
from lib.links import KNOWN_PARAMS, LAYERS_PARAM, SPEC_PARAMS, spec_from_query_params, spec_to_query_params
from lib.spec import SPEC_FIELDS, ModelSpec, SpecError, SpecField, clamp_to_limits, validate_spec
from lib.store import RUN_COLUMNS, RunStore
from ui.keys import Key
from ui.page_data import build_widget_values, spec_from_build_widgets

LIMITS = ServerLimits()
DEFAULTS = ModelSpec()


def changed_value(spec_field: SpecField) -> Any:
    """A legal value other than the field's default, chosen by the field's kind."""
    default = getattr(DEFAULTS, spec_field.name)
    return {
        "choice": lambda: next(choice for choice in spec_field.choices if choice != default),
        "int": lambda: default + 1,
        "rate": lambda: default * 2,
        "flag": lambda: not default,
        "layers": lambda: (64, 32),
    }[spec_field.kind]()


def bad_value(spec_field: SpecField) -> Any:
    """A value the field's checks refuse."""
    return {"choice": "nope", "int": -1, "rate": 0.0, "flag": "yes", "layers": ()}[spec_field.kind]


CHANGED = DEFAULTS.with_changes(**{spec_field.name: changed_value(spec_field) for spec_field in SPEC_FIELDS})


def test_every_spec_field_but_extra_has_one_entry():
    names = [spec_field.name for spec_field in dataclasses.fields(ModelSpec) if spec_field.name != "extra"]
    assert [spec_field.name for spec_field in SPEC_FIELDS] == names
    assert all(getattr(CHANGED, name) != getattr(DEFAULTS, name) for name in names)
    validate_spec(CHANGED, LIMITS)


def test_names_seen_outside_stay_as_they_were():
    """Old links, scripts, browser tests and databases keep working: these names are an interface."""
    assert {spec_field.name: (spec_field.link, spec_field.cli, spec_field.key) for spec_field in SPEC_FIELDS} == {
        "dataset": ("dataset", "--dataset", "build_dataset"),
        "hidden_units": ("units", "--hidden-units", "units"),
        "hidden_activation": ("act", "--activation", "hidden_activation"),
        "output_activation": ("out", "--output-activation", "output_activation"),
        "optimizer": ("opt", "--optimizer", "optimizer"),
        "learning_rate": ("lr", "--learning-rate", "learning_rate"),
        "label_encoding": ("labels", "--labels", "label_encoding"),
        "batch_size": ("batch", "--batch-size", "batch_size"),
        "epochs": ("epochs", "--epochs", "build_epochs"),
        "seed": ("seed", "--seed", "seed"),
        "steps_per_execution": ("spe", "--steps-per-execution", "steps_per_execution"),
        "jit_compile": ("jit", "--jit-compile", "jit_compile"),
        "precision": ("precision", "--precision", "precision"),
        "device_resident": ("resident", "--device-resident", "device_resident"),
    }


@pytest.mark.parametrize("spec_field", SPEC_FIELDS, ids=lambda spec_field: spec_field.name)
def test_each_field_is_checked_and_clamped(spec_field):
    spec = dataclasses.replace(DEFAULTS, **{spec_field.name: bad_value(spec_field)})
    with pytest.raises(SpecError) as refused:
        validate_spec(spec, LIMITS)
    assert all(problem.startswith(f"{spec_field.name}: ") for problem in refused.value.problems)
    clamped, notices = clamp_to_limits(spec, LIMITS)
    assert notices and all(notice.startswith(f"{spec_field.name}: ") for notice in notices)
    validate_spec(clamped, LIMITS)


def test_a_spec_survives_a_shareable_link():
    params = spec_to_query_params(CHANGED)
    assert set(params) <= set(SPEC_PARAMS) <= set(KNOWN_PARAMS)
    assert set(SPEC_PARAMS) == {LAYERS_PARAM, *(spec_field.link for spec_field in SPEC_FIELDS)}
    assert spec_from_query_params(params, LIMITS) == (CHANGED, [])


def cli_arguments(spec: ModelSpec) -> list[str]:
    arguments = []
    for spec_field in SPEC_FIELDS:
        value = getattr(spec, spec_field.name)
        if spec_field.kind == "flag":
            arguments.append(spec_field.cli if value else spec_field.cli.replace("--", "--no-", 1))
        elif spec_field.kind == "layers":
            arguments += [spec_field.cli, ",".join(map(str, value))]
        else:
            arguments += [spec_field.cli, str(value)]
    return arguments


def test_a_spec_survives_the_command_line_options():
    args = build_parser().parse_args(cli_arguments(CHANGED))
    assert spec_from_args(DEFAULTS, args) == CHANGED


def test_a_spec_survives_the_build_pages_widgets():
    values = build_widget_values(CHANGED) | {Key.PER_LAYER_UNITS: True}
    assert {spec_field.key for spec_field in SPEC_FIELDS} <= set(values)
    assert all(Key[spec_field.key.upper()] == spec_field.key for spec_field in SPEC_FIELDS)
    assert spec_from_build_widgets(values, DEFAULTS) == CHANGED


def test_a_spec_survives_the_run_store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run = DeviceRun(device="cpu:0", backend="jax", synthetic=True, status="failed", error="out of memory")
    run_id = store.record(CHANGED, run)
    assert store.get(run_id).spec == CHANGED
    (row,) = store.runs().to_dict("records")
    assert {spec_field.name for spec_field in SPEC_FIELDS} <= set(RUN_COLUMNS)  # a runs-frame column each
    for spec_field in SPEC_FIELDS:
        stored = row[spec_field.name]
        assert (tuple(stored) if spec_field.kind == "layers" else stored) == getattr(CHANGED, spec_field.name)
