"""The "Take it home" script and notebook: settings and times as comments, valid Python and nbformat 4, a real run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from lib.backend import backend_name
from lib.device_run import DeviceRun
from lib.presets import PRESETS
from lib.spec import ModelSpec, keras_model_lines
from lib.store import RunStore, StoredRun
from lib.take_home import file_name, job_runs, run_notebook, run_script, same_settings_groups, stored_runs
from tests.conftest import subprocess_env

MACHINE = {"cpu_model": "Test CPU 9000", "logical_cores": 8, "ram_bytes": 16 * 2**30, "gpus": ["Test GPU X1"]}
TINY = ModelSpec(hidden_units=(8,), epochs=1, batch_size=16)


def stored(spec: ModelSpec, device: str, epoch_s: list[float], *, synthetic: bool = False, run_id: int = 1):
    run = DeviceRun(device=device, backend="tensorflow", synthetic=synthetic, num_train=3200, num_test=500)
    run.set_epoch_times(epoch_s)
    run.test_accuracy = 0.8125
    return StoredRun(
        id=run_id,
        created_at="2026-12-07T10:00:00+00:00",
        started_at=None,
        status="done",
        preset=None,
        job_id="0123456789ab",
        spec=spec,
        run=run,
        params=None,
        hardware=MACHINE,
        versions={"keras": "3.15.1"},
    )


def cpu_gpu_runs(spec: ModelSpec, synthetic: bool = False) -> list[StoredRun]:
    return [
        stored(spec, "cpu:0", [9.5, 7.25, 7.75], synthetic=synthetic, run_id=3),
        stored(spec, "gpu:0", [3.5, 0.75, 1.25], synthetic=synthetic, run_id=4),
    ]


def code_cells(notebook: dict) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_the_script_compiles_and_carries_the_settings_times_and_machine():
    spec = PRESETS["fashion-seed"].spec.with_changes(epochs=3)
    script = run_script(spec, cpu_gpu_runs(spec))
    compile(script, "x.py", "exec")
    header = script[: script.index("import os")]
    for fragment in (
        "Fashion-MNIST",
        "3,200 per epoch, 500 tested",
        "Epochs:          3",
        "Batch size:      32",
        "cpu:0, gpu:0",
        "tensorflow (Keras 3.15.1)",
        "Test CPU 9000, 8 logical cores, 16.0 GiB RAM, GPUs: Test GPU X1",
        "Epoch 1, with compilation (s)",
        "9.50",  # cpu:0 epoch 1
        "7.50",  # cpu:0 later epochs: the median of 7.25 and 7.75
        "24.50",  # cpu:0 total
        "3.50",  # gpu:0 epoch 1
        "1.00",  # gpu:0 later epochs
        "3,200",  # gpu:0 samples/s
        "81.2%",
        "#3",
    ):
        assert fragment in header, fragment
    assert 'DEVICES = ["cpu:0", "gpu:0"]' in script
    assert "with keras.device(device):" in script
    assert "SAMPLES = 3200" in script and "TEST_SAMPLES = 500" in script and "EPOCHS = 3" in script
    assert "keras.datasets.fashion_mnist.load_data()" in script
    assert "timer.epoch_s[0]" in script and "statistics.median(timer.epoch_s[1:])" in script


def test_the_script_builds_the_model_from_the_one_layer_list():
    spec = ModelSpec(hidden_units=(32, 16), precision="mixed_bfloat16", optimizer="rmsprop")
    script = run_script(spec, [stored(spec, "cpu:0", [1.0])])
    for line in keras_model_lines(spec):
        assert f"    {line}".rstrip() in script.splitlines()


def test_generated_data_is_said_and_has_no_accuracy():
    runs = cpu_gpu_runs(TINY, synthetic=True)
    script, notebook = run_script(TINY, runs), run_notebook(TINY, runs)
    for text in (script, notebook):
        assert "generated images" in text
        assert "accuracy means nothing" in text
        assert "81.2%" not in text and "Test accuracy" not in text
        assert "evaluate" not in text and "load_data" not in text
    compile(script, "x.py", "exec")


def test_the_notebook_is_nbformat_4_with_a_table_and_compiling_cells():
    runs = cpu_gpu_runs(PRESETS["cifar10-seed"].spec)
    notebook = json.loads(run_notebook(PRESETS["cifar10-seed"].spec, runs))
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 4
    assert [cell["cell_type"] for cell in notebook["cells"]][:2] == ["markdown", "markdown"]
    assert len({cell["id"] for cell in notebook["cells"]}) == len(notebook["cells"])
    intro = "".join(notebook["cells"][0]["source"])
    assert "| Dataset | CIFAR-10 |" in intro
    assert "| cpu:0 | #3 | done | 9.50 | 7.50 | 24.50 |" in intro
    assert "Test CPU 9000" in intro
    cells = code_cells(notebook)
    assert len(cells) == 4  # settings, data, model, training
    for cell in cells:
        compile(cell, "cell.py", "exec")
    compile("\n".join(cells), "notebook.py", "exec")
    assert any("to_categorical" in cell for cell in cells)  # the preset's one-hot labels


def test_runs_are_grouped_by_settings_and_named_by_job_or_ids():
    other = TINY.with_changes(batch_size=64)
    runs = [*cpu_gpu_runs(TINY), stored(other, "cpu:0", [1.0], run_id=7)]
    groups = same_settings_groups(runs)
    assert [[run.id for run in group] for group in groups] == [[3, 4], [7]]
    assert file_name(groups[0], "py") == "cpu-vs-gpu-0123456789ab.py"
    mixed = [runs[0], dataclasses.replace(runs[2], job_id=None)]
    assert file_name(mixed, "ipynb") == "cpu-vs-gpu-runs-3-7.ipynb"


def test_data_parallel_runs_train_on_one_device_with_a_note():
    script = run_script(TINY, [stored(TINY, "gpu:all", [2.0, 1.0])])
    assert 'DEVICES = ["gpu:0"]' in script
    assert "gpu:all trained data parallel" in script


def test_runs_are_read_back_from_the_store(runs_db):
    store = RunStore()
    first = store.record(TINY, stored(TINY, "cpu:0", [1.0]).run, job_id="job-a", hardware=MACHINE)
    store.record(TINY, stored(TINY, "gpu:0", [1.0]).run, job_id="job-b")
    assert [run.id for run in job_runs(store, "job-a")] == [first]
    assert job_runs(store, "job-a")[0].hardware == MACHINE
    assert [run.run.device for run in stored_runs(store, [first + 1, first])] == ["gpu:0", "cpu:0"]


def test_the_script_trains_a_tiny_model_on_generated_data(tmp_path):
    tiny_run = stored(TINY, "cpu:0", [0.5], synthetic=True)
    tiny_run.run.num_train = 64
    spec_runs = [tiny_run]
    path = tmp_path / file_name(spec_runs, "py")
    path.write_text(run_script(TINY, spec_runs))
    env = subprocess_env(KERAS_BACKEND=backend_name(), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cpu:0: epoch 1, with compilation" in done.stdout
    assert "x_train (64, 28, 28)" in done.stdout


@pytest.mark.parametrize("name", ["fashion-seed", "cifar10-tuned"])
def test_presets_render_compiling_scripts(name):
    spec = PRESETS[name].spec
    compile(run_script(spec, [stored(spec, "cpu:0", [2.0, 1.0])]), "x.py", "exec")
