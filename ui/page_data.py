"""Plain helpers behind the Build, Train and Results pages: widget values <-> ModelSpec, option lists, number formats.

Nothing here imports Streamlit: the pages keep one `ModelSpec` in session state and use these functions to
fill their widgets from it and to rebuild it from the widgets, so the mapping is tested without a browser.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lib.class_board import model_text
from lib.comparison import GENERATED_DATA, data_label, run_model_title
from lib.datasets import DATASETS
from lib.formatting import DASH
from lib.hardware import hardware_known, hardware_summary, machine_name
from lib.presets import PRESETS, Preset
from lib.spec import SPEC_FIELDS, LayerRow, ModelSpec
from ui.keys import Key, layer_units_key

NICE_UNITS = (8, 16, 32, 64, 100, 128, 200, 256, 300, 500, 512, 1000, 1024, 2000, 2048, 3000, 4096, 8192, 16384)
STEPS_PER_EXECUTION_OPTIONS = (1, 2, 4, 8, 16, 32, 64, 128)


def matching_preset(spec: ModelSpec, presets: Mapping[str, Preset]) -> str | None:
    """Returns the name of the preset this spec is, ignoring the number of epochs (a run setting).

    Args:
        spec: The spec being built.
        presets: Preset name -> preset, e.g. `lib.presets.PRESETS`.

    Returns:
        The first preset whose spec equals `spec` apart from `epochs`, or None.
    """
    for name, preset in presets.items():
        if spec.with_changes(epochs=preset.spec.epochs) == preset.spec:
            return name
    return None


def build_widget_values(spec: ModelSpec) -> dict[str, Any]:
    """Returns the Build page's widget values (by key) that show this spec.

    Per-layer unit inputs are included for every layer; `Key.UNITS` holds the first layer's width.
    """
    values: dict[str, Any] = {}
    for spec_field in SPEC_FIELDS:
        value = getattr(spec, spec_field.name)
        if spec_field.kind != "layers":  # hidden_units: the widgets below
            values[spec_field.key] = float(value) if spec_field.kind == "rate" else value  # a float number_input
    values[Key.HIDDEN_LAYERS] = len(spec.hidden_units)
    values[Key.UNITS] = spec.hidden_units[0] if spec.hidden_units else 1
    for index, units in enumerate(spec.hidden_units):
        values[layer_units_key(index)] = units
    return values


def spec_from_build_widgets(values: Mapping[str, Any], base: ModelSpec) -> ModelSpec:
    """Rebuilds the spec from the Build page's widget values.

    Args:
        values: Widget key -> value (the session state); missing keys keep `base`'s value.
        base: The spec before the change.

    Returns:
        The new spec. With `Key.PER_LAYER_UNITS` on, each layer's width comes from its own input (a
        new layer copies the previous layer's width); off, every layer gets `Key.UNITS`.
    """
    layers = int(values.get(Key.HIDDEN_LAYERS, len(base.hidden_units)))
    if values.get(Key.PER_LAYER_UNITS, False):
        widths: list[int] = []
        for index in range(layers):
            fallback = widths[-1] if widths else (base.hidden_units[0] if base.hidden_units else 1)
            widths.append(int(values.get(layer_units_key(index), fallback)))
    else:
        widths = [int(values.get(Key.UNITS, base.hidden_units[0] if base.hidden_units else 1))] * layers
    changes = {
        spec_field.name: values[spec_field.key]
        for spec_field in SPEC_FIELDS
        if spec_field.kind != "layers" and spec_field.key in values
    }
    return base.with_changes(hidden_units=widths, **changes)


def units_options(limit: int, current: int) -> list[int]:
    """Widths offered by the units slider: round numbers up to the server limit, plus the current width."""
    return sorted({units for units in NICE_UNITS if units <= limit} | {min(current, limit), limit, 1})


def batch_size_options(limit: int, current: int) -> list[int]:
    """Batch sizes offered by the slider: powers of two up to the server limit, plus the current size."""
    powers = {2**power for power in range(0, 31) if 2**power <= limit}
    return sorted(powers | {min(current, limit)})


def steps_per_execution_options(current: int) -> list[int]:
    """Steps-per-execution values offered, plus the current one."""
    return sorted({*STEPS_PER_EXECUTION_OPTIONS, current})


def layer_table_frame(rows: list[LayerRow]) -> pd.DataFrame:
    """The model summary as a table: layer, type, output shape, activation and parameters."""
    return pd.DataFrame(
        {
            "Layer": [row.name for row in rows],
            "Type": [row.kind for row in rows],
            "Output shape": [str(row.output_shape).replace("None", "batch") for row in rows],
            "Activation": [row.activation or "-" for row in rows],
            "Parameters": [row.params for row in rows],
        }
    )


HISTORY_COLUMNS = {
    "id": "Run",
    "created_at": "Date (UTC)",
    "status": "Status",
    "model": "Model",
    "dataset": "Dataset",
    "machine": "Machine",
    "device": "Device",
    "backend": "Backend",
    "data": "Data",
    "num_train": "Samples",
    "batch_size": "Batch",
    "epochs": "Epochs",
    "params": "Parameters",
    "total_s": "Total (s)",
    "first_epoch_s": "Epoch 1 (s)",
    "steady_epoch_s": "Later epochs (s)",
    "samples_per_s": "Samples/s",
    "test_accuracy": "Test accuracy",
}


def run_filters(
    datasets: list[str],
    devices: list[str],
    presets: list[str],
    since: datetime.date | None,
    machines: Sequence[str] = (),
) -> dict[str, Any]:
    """Turns the Results page's filter choices into `RunStore.runs()` keyword arguments.

    Args:
        datasets: Dataset names to keep; empty keeps all.
        devices: Device names to keep; empty keeps all.
        presets: Preset names to keep; empty keeps all (runs of custom models included).
        since: Keep runs created on or after this day (UTC); None keeps all.
        machines: Machine names (`lib.hardware.machine_name`) to keep; empty keeps all.

    Returns:
        Only the filters that narrow the result.
    """
    filters: dict[str, Any] = {}
    for name, chosen in (("dataset", datasets), ("device", devices), ("preset", presets), ("machine", machines)):
        if chosen:
            filters[name] = list(chosen)
    if since is not None:
        filters["since"] = datetime.datetime.combine(since, datetime.time(), tzinfo=datetime.UTC)
    return filters


def history_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The run history as shown on the Results page: newest first, readable column names.

    Models are named by their preset's title (or as a custom model), datasets by their title, and the
    data column says "real" or "generated". Test accuracy is text: a percentage, a dash when missing, or
    a note for generated data, whose labels are random (its accuracy would mean nothing).
    """
    table = runs.copy()
    table["model"] = [run_model_title(row) for _, row in table.iterrows()]
    table["dataset"] = [DATASETS[name].title if name in DATASETS else name for name in table["dataset"]]
    table["data"] = table["synthetic"].map(data_label)
    if "hardware" in table:
        table["machine"] = table["hardware"].map(machine_name)
    table["test_accuracy"] = [
        f"{DASH} ({GENERATED_DATA} data)" if data == GENERATED_DATA else DASH if pd.isna(value) else f"{value:.1%}"
        for data, value in zip(table["data"], table["test_accuracy"], strict=True)
    ]
    columns = [name for name in HISTORY_COLUMNS if name in table.columns]
    table = table[columns].iloc[::-1].reset_index(drop=True)
    return table.rename(columns=HISTORY_COLUMNS)


def run_label(run: Mapping[str, Any], with_machine: bool = False) -> str:
    """Names one stored run for a picker: "#12 cpu:0 · Fashion-MNIST, as in the tutorial · batch 32 · 2025-01-02 10:11".

    Runs on generated data end with "· generated data". With `with_machine` (the runs come from several
    machines) the device is followed by its machine: "#12 gpu:0 on machine-2 · ...".
    """
    created = pd.Timestamp(run["created_at"]).strftime("%Y-%m-%d %H:%M") if pd.notna(run["created_at"]) else ""
    data = " · generated data" if data_label(run.get("synthetic")) == GENERATED_DATA else ""
    where = f" on {machine_name(run.get('hardware'))}" if with_machine else ""
    model = f"{run_model_title(run)} · batch {int(run['batch_size']):,}"
    return f"#{run['id']} {run['device']}{where} · {model} · {created}{data}"


def run_machines(runs: pd.DataFrame) -> list[str]:
    """The names of the machines that ran these runs (`lib.hardware.machine_name`), sorted; none for no runs."""
    if runs.empty or "hardware" not in runs:
        return []
    return sorted(set(runs["hardware"].map(machine_name)))


def machines_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per machine that ran these runs: its name, host, what it has (CPU, RAM, GPUs) and its runs.

    A machine's newest run describes it (a machine that was upgraded is shown as it is now); runs stored
    without a node or host name are counted under "this server".
    """
    machines: dict[str, tuple[Mapping[str, Any], int]] = {}
    for cell in runs.get("hardware", []):
        hardware = cell if isinstance(cell, Mapping) else {}
        name = machine_name(hardware)
        machines[name] = (hardware, machines.get(name, ({}, 0))[1] + 1)
    names = sorted(machines)
    described = [machines[name][0] for name in names]
    return pd.DataFrame(
        {
            "Machine": names,
            "Host": [hardware.get("host") or DASH for hardware in described],
            "CPU, RAM and GPUs": [hardware_summary(h) if hardware_known(h) else DASH for h in described],
            "Runs": [machines[name][1] for name in names],
        }
    )


def model_summary(spec: ModelSpec) -> str:
    """One markdown line naming the model and its training settings (and its preset, if it is one)."""
    preset = matching_preset(spec, PRESETS)
    origin = f" (preset: {PRESETS[preset].title})" if preset else ""
    return (
        f"**{DATASETS[spec.dataset].title}**, {model_text(spec.hidden_units, spec.hidden_activation)}, "
        f"{spec.optimizer} (learning rate {spec.learning_rate:g}), batch {spec.batch_size:,}{origin}."
    )
