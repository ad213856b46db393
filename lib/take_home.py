"""Take it home: a plain Keras script and a Jupyter notebook that reproduce stored runs, with what they measured.

`run_script(spec, runs)` and `run_notebook(spec, runs)` render the same content for runs of one spec (one job's
devices, or compared runs with the same settings): the settings, the measured times per device and the machine
they ran on (as comments, or as a markdown table), then the data, the model (`lib.spec.keras_model_lines`, the
lines `keras_code` prints) and a training loop that trains on each device in turn and times every epoch the way
the app does (epoch 1, with compilation, apart from the later ones). The notebook is nbformat 4 JSON written
with the standard library. Nothing here imports Keras.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from lib.comparison import GENERATED_ACCURACY_NOTE
from lib.datasets import DATASETS, GENERATED_SOURCE
from lib.hardware import hardware_summary
from lib.spec import ModelSpec, keras_model_lines, keras_preprocessing_lines
from lib.store import RunStore, StoredRun

FILE_PREFIX = "cpu-vs-gpu"  # downloads are named cpu-vs-gpu-<job id>.py, or cpu-vs-gpu-runs-3-4.ipynb
COMMENT_WIDTH = 110  # characters of a header comment line, after "# "
MISSING = "-"  # a time a run does not have (it failed before its first epoch)
DATA_PARALLEL_SUFFIX = ":all"  # "gpu:all": data parallel over every GPU (lib.parallel); the script uses device 0
TIME_COLUMNS = (
    "Device",
    "Run",
    "Status",
    "Epoch 1, with compilation (s)",
    "Later epochs (s)",
    "Total (s)",
    "Samples/s",
)


def job_runs(store: RunStore, job_id: str) -> list[StoredRun]:
    """Returns one job's stored runs, oldest first, decoded (spec, result, machine)."""
    return stored_runs(store, [int(run_id) for run_id in store.runs(job_id=job_id)["id"]])


def stored_runs(store: RunStore, run_ids: Sequence[int]) -> list[StoredRun]:
    """Returns the stored runs with these ids, in this order."""
    return [store.get(int(run_id)) for run_id in run_ids]


def same_settings_groups(runs: Sequence[StoredRun]) -> list[list[StoredRun]]:
    """Splits runs into groups that one script reproduces: same spec, same kind of data, same backend.

    Args:
        runs: Stored runs, in the order to keep.

    Returns:
        The groups, in order of their first run.
    """
    groups: dict[str, list[StoredRun]] = {}
    for stored in runs:
        settings = {**stored.spec.to_dict(), "extra": None}
        key = json.dumps([settings, stored.run.synthetic, stored.run.backend], sort_keys=True)
        groups.setdefault(key, []).append(stored)
    return list(groups.values())


def file_name(runs: Sequence[StoredRun], extension: str) -> str:
    """Returns the download's name: `cpu-vs-gpu-<job id>.<extension>`, or `cpu-vs-gpu-runs-<ids>.<extension>`.

    Args:
        runs: The runs the file reproduces.
        extension: "py" or "ipynb".
    """
    job_ids = {stored.job_id for stored in runs}
    if len(job_ids) == 1 and None not in job_ids:
        return f"{FILE_PREFIX}-{job_ids.pop()}.{extension}"
    return f"{FILE_PREFIX}-runs-{'-'.join(str(stored.id) for stored in runs)}.{extension}"


def run_script(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    """Returns a runnable Keras script that trains `spec` as the runs did, with their settings and times as comments.

    Args:
        spec: The model and training settings the runs used.
        runs: Stored runs of this spec (`same_settings_groups`), one per device; at least one.
    """
    header = [f"# {line}".rstrip() for line in _header_lines(spec, runs)]
    sections = [code for _, code in _code_sections(spec, runs)]
    return "\n".join([_docstring(spec, runs), "", *header, "", "\n\n\n".join(sections)]) + "\n"


def run_notebook(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    """Returns a Jupyter notebook (nbformat 4 JSON) with the settings and times as a table, then the code in steps.

    Args:
        spec: The model and training settings the runs used.
        runs: Stored runs of this spec (`same_settings_groups`), one per device; at least one.
    """
    cells = [_markdown_cell(_notebook_intro(spec, runs))]
    for title, code in _code_sections(spec, runs):
        cells += [_markdown_cell(f"## {title}"), _code_cell(code)]
    for number, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{number}"  # nbformat 4.5: a unique id per cell
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1) + "\n"


def _title(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    layers = len(spec.hidden_units)
    devices = ", ".join(stored.run.device for stored in runs)
    return (
        f"Train an MLP with {layers} hidden layer{'s' if layers != 1 else ''} on "
        f"{DATASETS[spec.dataset].title} on {devices}, timing every epoch"
    )


def _docstring(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    first = textwrap.fill(f'"""{_title(spec, runs)} (generated by the CPU vs GPU app).', COMMENT_WIDTH)
    return f'{first}\n\nRun it with python; the comments below say what the app ran and measured.\n"""'


def _synthetic(runs: Sequence[StoredRun]) -> bool:
    return any(stored.run.synthetic for stored in runs)


def _evaluates(runs: Sequence[StoredRun]) -> bool:
    """Whether the script measures a test accuracy: on real data, when the runs tested any sample."""
    return not _synthetic(runs) and _samples(runs)[1] > 0


def _samples(runs: Sequence[StoredRun]) -> tuple[int, int]:
    """Training and test samples of the runs (the largest, when a data-parallel run trimmed a few)."""
    return max(stored.run.num_train for stored in runs), max(stored.run.num_test for stored in runs)


def _settings(spec: ModelSpec, runs: Sequence[StoredRun]) -> list[tuple[str, str]]:
    num_train, num_test = _samples(runs)
    data = DATASETS[spec.dataset].title
    if _synthetic(runs):
        data += f"'s shape: {GENERATED_SOURCE}"
    machines = {hardware_summary(stored.hardware) for stored in runs if stored.hardware}
    versions = {stored.versions.get("keras") for stored in runs if stored.versions.get("keras")}
    backend = ", ".join(sorted({stored.run.backend for stored in runs}))
    return [
        ("Dataset", data),
        ("Samples trained", f"{num_train:,} per epoch" + (f", {num_test:,} tested" if _evaluates(runs) else "")),
        ("Epochs", f"{spec.epochs}"),
        ("Batch size", f"{spec.batch_size}"),
        ("Devices", ", ".join(stored.run.device for stored in runs)),
        ("Keras backend", backend + (f" (Keras {', '.join(sorted(versions))})" if versions else "")),
        ("Machine", "; ".join(sorted(machines)) or "not recorded"),
    ]


def _time_rows(runs: Sequence[StoredRun]) -> list[list[str]]:
    rows = []
    for stored in runs:
        run = stored.run
        row = [
            run.device,
            f"#{stored.id}",
            run.status,
            _number(run.first_epoch_s, "{:.2f}"),
            _number(run.steady_epoch_s, "{:.2f}"),
            _number(run.total_s, "{:.2f}"),
            _number(run.samples_per_s, "{:,.0f}"),
        ]
        if not _synthetic(runs):
            row.append(_number(run.test_accuracy, "{:.1%}"))
        rows.append(row)
    return rows


def _time_columns(runs: Sequence[StoredRun]) -> list[str]:
    return [*TIME_COLUMNS, *(() if _synthetic(runs) else ("Test accuracy",))]


def _one_device(device: str) -> str:
    """The device a script can name: "gpu:all" (data parallel) becomes "gpu:0"."""
    kind, _, _ = device.partition(":")
    return f"{kind}:0" if device.endswith(DATA_PARALLEL_SUFFIX) else device


def _number(value: float | None, pattern: str) -> str:
    return MISSING if value is None else pattern.format(value)


def _notes(runs: Sequence[StoredRun]) -> list[str]:
    notes = [
        "Epoch 1 includes tracing and compilation; later epochs is the median of epochs 2 and on (epoch 1 when "
        "there is only one); samples/s is per later epoch."
    ]
    if _synthetic(runs):
        notes.append(f"No accuracy: {GENERATED_ACCURACY_NOTE}. The timings are real.")
    for device in sorted({stored.run.device for stored in runs if stored.run.device.endswith(DATA_PARALLEL_SUFFIX)}):
        notes.append(f"{device} trained data parallel on every device; this script trains on {_one_device(device)}.")
    if any(stored.spec.device_resident for stored in runs):
        notes.append("The app kept the data on the device (JAX); this script trains with model.fit.")
    return notes


def _header_lines(spec: ModelSpec, runs: Sequence[StoredRun]) -> list[str]:
    labels = [label for label, _ in _settings(spec, runs)]
    width = max(len(label) for label in labels) + 1
    lines = ["What the app ran", *(f"  {f'{label}:':<{width}} {value}" for label, value in _settings(spec, runs))]
    table = [_time_columns(runs), *_time_rows(runs)]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    lines += ["", "What it measured (wall-clock seconds)"]
    lines += ["  " + "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in table]
    notes = [wrapped for note in _notes(runs) for wrapped in textwrap.wrap(note, COMMENT_WIDTH)]
    return [*lines, "", *notes]


def _notebook_intro(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    columns = _time_columns(runs)
    lines = [
        f"# {_title(spec, runs)}",
        "",
        "Generated by the CPU vs GPU app: the settings of the runs and what they measured, then the same "
        "training with Keras alone.",
        "",
        "| Setting | Value |",
        "| --- | --- |",
        *(f"| {label} | {value} |" for label, value in _settings(spec, runs)),
        "",
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(row) + " |" for row in _time_rows(runs)),
        "",
        *(f"- {note}" for note in _notes(runs)),
    ]
    return "\n".join(lines)


def _code_sections(spec: ModelSpec, runs: Sequence[StoredRun]) -> list[tuple[str, str]]:
    """(title, code) of each step: settings, data, model, training; the script joins them, the notebook splits."""
    return [
        ("Settings", _settings_code(spec, runs)),
        ("Data", _data_code(spec, runs)),
        ("Model", _model_code(spec)),
        ("Training", _training_code(runs)),
    ]


def _settings_code(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    num_train, num_test = _samples(runs)
    devices = [_one_device(stored.run.device) for stored in runs]
    lines = [
        "import os",
        "import statistics",
        "import time",
        "",
        "# The backend the runs used, chosen before Keras is imported; set KERAS_BACKEND to try another.",
        f'os.environ.setdefault("KERAS_BACKEND", "{runs[0].run.backend}")',
        "",
        "import keras",
        "import numpy as np",
        "",
        "# The runs' settings. Remove a device this machine does not have (gpu:0 needs a GPU build of the backend).",
        f"DEVICES = {json.dumps(devices)}  # trained one after the other, each with a fresh model",
        f"SAMPLES = {num_train}  # training images per epoch",
    ]
    if _evaluates(runs):
        lines.append(f"TEST_SAMPLES = {num_test}  # test images evaluated after training")
    lines += [
        f"BATCH_SIZE = {spec.batch_size}  # samples per training step",
        f"EPOCHS = {spec.epochs}  # passes over the training images",
    ]
    return "\n".join(lines)


def _data_code(spec: ModelSpec, runs: Sequence[StoredRun]) -> str:
    info = DATASETS[spec.dataset]
    if _synthetic(runs):
        lines = [
            f"# The runs trained on generated images of {info.title}'s shape, not on {info.title}: random pixels",
            "# with random labels. The timings are real; an accuracy would say nothing, so none is measured.",
            f"rng = np.random.default_rng({spec.seed})",
            f"x_train = rng.integers(0, 256, size=(SAMPLES, {', '.join(map(str, info.image_shape))}), dtype=np.uint8)",
            f"y_train = rng.permutation(np.arange(SAMPLES) % {info.num_classes}).astype(np.uint8)",
            *keras_preprocessing_lines(spec, ("train",)),
            'print("x_train", x_train.shape, "y_train", y_train.shape)',
        ]
    elif _evaluates(runs):
        lines = [
            *_load_lines(info.title, spec.dataset),
            "# The runs used the first SAMPLES training images and the first TEST_SAMPLES test images.",
            "x_train, y_train = x_train[:SAMPLES], y_train[:SAMPLES]",
            "x_test, y_test = x_test[:TEST_SAMPLES], y_test[:TEST_SAMPLES]",
            *keras_preprocessing_lines(spec),
            'print("x_train", x_train.shape, "y_train", y_train.shape, "x_test", x_test.shape)',
        ]
    else:
        lines = [
            *_load_lines(info.title, spec.dataset),
            "# The runs used the first SAMPLES training images and tested none.",
            "x_train, y_train = x_train[:SAMPLES], y_train[:SAMPLES]",
            *keras_preprocessing_lines(spec, ("train",)),
            'print("x_train", x_train.shape, "y_train", y_train.shape)',
        ]
    return "\n".join(lines)


def _load_lines(title: str, dataset: str) -> list[str]:
    return [
        f"# Load {title} with the Keras loader (it downloads the files once into ~/.keras/datasets).",
        f"(x_train, y_train), (x_test, y_test) = keras.datasets.{dataset}.load_data()",
    ]


def _model_code(spec: ModelSpec) -> str:
    body = [f"    {line}".rstrip() for line in keras_model_lines(spec)]
    return "\n".join(
        [
            "def build_model():",
            '    """A fresh, compiled model: the same seed gives every device the same weights and shuffle order."""',
            *body,
            "    return model",
        ]
    )


def _training_code(runs: Sequence[StoredRun]) -> str:
    evaluate = [
        "        test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=BATCH_SIZE, verbose=0)",
    ]
    report = '    print(f"{device}: test accuracy {test_accuracy:.1%}")'
    lines = [
        "class EpochTimer(keras.callbacks.Callback):",
        '    """Wall time of every epoch.',
        "",
        "    Keras turns the epoch's loss into a Python number before calling on_epoch_end, which waits for the",
        "    device to finish, so the clock is read after the work is done, not when it was queued.",
        '    """',
        "",
        "    def on_train_begin(self, logs=None):",
        "        self.epoch_s = []",
        "",
        "    def on_epoch_begin(self, epoch, logs=None):",
        "        self.start = time.perf_counter()",
        "",
        "    def on_epoch_end(self, epoch, logs=None):",
        "        self.epoch_s.append(time.perf_counter() - self.start)",
        "",
        "",
        "for device in DEVICES:",
        "    keras.utils.clear_session()",
        "    with keras.device(device):",
        "        model = build_model()",
        "        timer = EpochTimer()",
        "        # verbose=2: one line per epoch (a per-step progress bar would cost time of its own).",
        "        model.fit(",
        "            x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True,",
        "            verbose=2, callbacks=[timer],",
        "        )",
        *(evaluate if _evaluates(runs) else []),
        "    # Epoch 1 traces and compiles; the later epochs show the device's steady speed.",
        "    later_s = statistics.median(timer.epoch_s[1:]) if len(timer.epoch_s) > 1 else timer.epoch_s[0]",
        "    print(",
        '        f"{device}: epoch 1, with compilation {timer.epoch_s[0]:.2f} s, later epochs {later_s:.2f} s, "',
        '        f"total {sum(timer.epoch_s):.2f} s, {len(x_train) / later_s:,.0f} samples/s"',
        "    )",
        *([report] if _evaluates(runs) else []),
    ]
    return "\n".join(lines)


def _markdown_cell(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": _source(text)}


def _code_cell(code: str) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": _source(code),
    }


def _source(text: str) -> list[str]:
    return text.splitlines(keepends=True)
