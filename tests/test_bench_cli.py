from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from lib import bench
from lib.device_run import DeviceRun
from lib.presets import PRESETS
from lib.spec import ModelSpec
from lib.store import RunStore
from tests.conftest import REPO_ROOT, subprocess_env

TINY = ["--preset", "fashion-seed", "--hidden-units", "32", "--devices", "cpu", "--epochs", "2"]
TINY_DATA = ["--limit", "512", "--test-limit", "256"]


@pytest.fixture(scope="module", autouse=True)
def backend_imported():
    """Imports the backend once, so its start-up messages do not mix with the CLI's output under test."""
    from lib.devices import list_devices

    return list_devices()


@pytest.fixture
def no_cifar(tmp_path, monkeypatch):
    """Makes sure no local CIFAR-10 copy can be found."""
    monkeypatch.setenv("GPUX_DATA_DIR", str(tmp_path / "empty-data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))


def run_cli(capsys, argv):
    code = bench.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_from_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "lib.bench", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m lib.bench [options]")
    assert "examples:" in result.stdout and "--preset fashion-seed --devices cpu --epochs 2" in result.stdout
    assert result.stderr == ""


def test_help_in_process(capsys):
    code, out, _ = run_cli(capsys, ["--help"])
    assert code == 0
    assert "--synthetic" in out and "--no-jit-compile" in out


def test_list_presets(capsys):
    code, out, err = run_cli(capsys, ["--list-presets"])
    assert code == 0 and err == ""
    for name in PRESETS:
        assert f"\n{name}\n" in f"\n{out}"
    assert "hidden [3000, 1000]" in out


def test_list_devices(capsys):
    code, out, _ = run_cli(capsys, ["--list-devices"])
    assert code == 0
    assert out.splitlines()[0] == "Keras backend: tensorflow"
    assert "cpu:0" in out


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--preset", "nope"], {}, "Unknown preset 'nope'; choose one of cifar10-seed"),
        (["--epochs", "abc"], {}, "argument --epochs: invalid int value: 'abc'"),
        (["--bogus"], {}, "unrecognized arguments: --bogus"),
        (["--hidden-units", "32,x"], {}, "'32,x' is not a comma-separated list"),
        (["--limit", "0"], {}, "'0' must be a whole number of 1 or more"),
        (["--activation", "swish"], {}, "invalid choice: 'swish'"),
        (["--epochs", "0"], {}, "epochs: 0 must be a whole number from 1 to 50"),
        (["--units", "5000"], {}, "has 5000 units; use a whole number from 1 to 4,096"),
        (["--hidden-units", "32", "--layers", "2"], {}, "either --hidden-units or --layers/--units"),
        (["--limit", "70000"], {}, "--limit 70,000 is over this server's limit of 60,000 training samples"),
        (["--epochs", "3"], {"GPUX_MAX_EPOCHS": "2"}, "epochs: 3 must be a whole number from 1 to 2"),
        (["--synthetic", "--devices", "tpu"], {}, "Device 'tpu' is not a device name. Present devices: cpu:0"),
        (["--synthetic", "--devices", "gpu:1"], {}, "Device 'gpu:1' is not present on this machine"),
        (["--json", "/nonexistent-folder/out.json"], {}, "the folder /nonexistent-folder does not exist"),
        (["--preset", "cifar10-seed"], {}, "or run with --synthetic to use generated data"),
        (["--target-accuracy", "1.5"], {}, "'1.5' must be between 0 and 1"),
        (["--synthetic", "--repeats", "9"], {}, "runs per device must be a whole number from 1 to 5"),
        (["--synthetic", "--target-accuracy", "0.5"], {}, "A target accuracy needs the real dataset"),
        (["--synthetic"], {"GPUX_PRICE_GPU_PER_HOUR": "free"}, "GPUX_PRICE_GPU_PER_HOUR: The GPU price per hour"),
    ],
)
def test_bad_arguments_give_one_error_line_and_exit_2(capsys, runs_db, no_cifar, monkeypatch, argv, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert expected.lower() in lines[0].lower()
    if runs_db.exists():
        assert RunStore(runs_db).count() == 0


def test_missing_dataset_message_says_the_fix(capsys, runs_db, no_cifar):
    _, _, err = run_cli(capsys, ["--preset", "cifar10-seed"])
    assert "CIFAR-10 is not available offline" in err
    assert "cifar-10-python.tar.gz" in err


def test_happy_path_json_csv_and_store(capsys, tmp_path):
    out_json, out_csv, db = tmp_path / "out.json", tmp_path / "out.csv", tmp_path / "tmp.sqlite"
    argv = [*TINY, *TINY_DATA, "--json", str(out_json), "--csv", str(out_csv), "--db", str(db)]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err

    document = json.loads(out_json.read_text())
    assert document["preset"] == "fashion-seed"
    assert document["changed_from_preset"] == ["hidden_units", "epochs"]
    assert document["synthetic"] is False
    assert document["spec"]["hidden_units"] == [32] and document["spec"]["epochs"] == 2
    assert document["hardware"]["logical_cores"] >= 1 and "keras" in document["versions"]
    assert document["sample_limit"] == 512 and document["test_limit"] == 256
    (result,) = document["results"]
    assert result["device"] == "cpu:0" and result["backend"] == "tensorflow" and result["status"] == "done"
    assert result["synthetic"] is False
    assert result["num_train"] == 512 and result["num_test"] == 256
    assert len(result["epoch_s"]) == 2 and all(seconds > 0 for seconds in result["epoch_s"])
    assert result["total_s"] == pytest.approx(sum(result["epoch_s"]))
    assert result["first_epoch_s"] == result["epoch_s"][0] and result["steady_epoch_s"] == result["epoch_s"][1]
    assert result["samples_per_s"] == pytest.approx(512 / result["steady_epoch_s"])
    flops_per_sample = 6 * (784 * 32 + 32 * 10)
    assert result["achieved_flops_per_s"] == pytest.approx(flops_per_sample * 512 / result["steady_epoch_s"])
    assert len(result["train_loss"]) == 2 and len(result["train_accuracy"]) == 2
    assert 0 <= result["test_accuracy"] <= 1 and result["test_loss"] > 0

    frame = RunStore(db).runs()
    assert len(frame) == 1 and document["run_ids"] == [int(frame.iloc[0]["id"])]
    row = frame.iloc[0]
    assert row["status"] == "done" and row["preset"] == "fashion-seed" and not row["synthetic"]
    assert row["epoch_s"] == result["epoch_s"] and row["total_s"] == pytest.approx(result["total_s"])
    assert row["hardware"] == document["hardware"]

    from_csv = pd.read_csv(out_csv)
    assert from_csv.loc[0, "device"] == "cpu:0"
    assert json.loads(from_csv.loc[0, "epoch_s"]) == pytest.approx(result["epoch_s"])
    assert sum(map(sum, result["confusion"])) == 256 and len(result["sample_predictions"]) == 12
    assert json.loads(from_csv.loc[0, "confusion"]) == result["confusion"]

    assert "epoch 1 includes tracing and compilation" in out
    assert "    1*" in out and "real data" in out and "GFLOP/s" in out
    assert "train acc" in out and "  test accuracy  " in out and "GENERATED" not in out
    assert document["data"] == "real" and document["accuracy_note"] is None
    assert from_csv.loc[0, "data"] == "real"
    assert from_csv.loc[0, "test_accuracy"] == pytest.approx(result["test_accuracy"])
    assert "[cpu:0] epoch 1/2" in err and "[cpu:0] epoch 2/2" in err and ", accuracy 0." in err


def test_generated_data_run_is_labelled_everywhere_and_reports_no_accuracy(capsys, runs_db, tmp_path):
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    argv = [*TINY, *TINY_DATA, "--synthetic", "--json", str(out_json), "--csv", str(out_csv)]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err

    # The table: labelled, loss and timings shown, no accuracy column and no test accuracy.
    assert "cpu:0 (tensorflow): fashion_mnist, GENERATED data (random pixels and labels, not the real dataset)" in out
    assert "train loss" in out and "steady epoch" in out and "GFLOP/s" in out
    assert "train acc" not in out and "test accuracy" not in out
    assert "accuracy       not reported: generated data has random labels, so accuracy is chance (about 10%)" in out
    # Standard error: the header says what the data is, the epoch lines show no accuracy.
    assert "data: Fashion-MNIST, GENERATED images (random pixels and labels, not the real dataset)" in err
    epoch_lines = [line for line in err.splitlines() if line.startswith("[cpu:0] epoch")]
    assert len(epoch_lines) == 2 and all(", generated data" in line for line in epoch_lines)
    assert not any("accuracy" in line for line in epoch_lines)

    document = json.loads(out_json.read_text())
    assert document["synthetic"] is True and document["data"] == bench.GENERATED_DATA
    assert "random labels" in document["accuracy_note"] and "timings are real" in document["accuracy_note"]
    (result,) = document["results"]
    assert result["synthetic"] is True and result["status"] == "done"
    assert result["train_accuracy"] is None and result["test_accuracy"] is None
    assert len(result["train_loss"]) == 2 and result["test_loss"] > 0 and len(result["epoch_s"]) == 2

    row = pd.read_csv(out_csv).iloc[0]
    assert row["data"] == bench.GENERATED_DATA and "random labels" in row["accuracy_note"]
    assert pd.isna(row["train_accuracy"]) and pd.isna(row["test_accuracy"])
    assert len(json.loads(row["train_loss"])) == 2

    frame = RunStore(runs_db).runs()  # default store: $GPUX_RUNS_DB
    assert frame["synthetic"].tolist() == [True]


def perfect_generated_run(spec, dataset, devices, **_):
    """A finished run on generated data whose accuracy came out as 100 %, as the old pattern-based data gave."""
    return [
        DeviceRun(
            device=devices[0],
            backend="tensorflow",
            synthetic=True,
            num_train=512,
            num_test=256,
            epoch_s=[2.0, 1.0],
            first_epoch_s=2.0,
            steady_epoch_s=1.0,
            total_s=3.0,
            train_loss=[0.5, 0.02],
            train_accuracy=[1.0, 1.0],
            test_loss=0.02,
            test_accuracy=1.0,
        )
    ]


def test_a_perfect_score_on_generated_data_is_not_shown_as_accuracy(capsys, tmp_path, monkeypatch):
    from lib import engine

    monkeypatch.setattr(engine, "train_on_devices", perfect_generated_run)
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    argv = [*TINY, *TINY_DATA, "--synthetic", "--quiet", "--no-store", "--json", str(out_json), "--csv", str(out_csv)]
    code, out, _ = run_cli(capsys, argv)

    assert code == 0
    assert "GENERATED data" in out and "accuracy       not reported" in out
    assert "1.0000" not in out and "100%" not in out and "100.0" not in out
    (result,) = json.loads(out_json.read_text())["results"]
    assert result["test_accuracy"] is None and result["train_accuracy"] is None
    row = pd.read_csv(out_csv).iloc[0]
    assert pd.isna(row["test_accuracy"]) and pd.isna(row["train_accuracy"])


def failed_device_run(spec, dataset, devices, **_):
    return [DeviceRun(device=devices[0], backend="tensorflow", synthetic=True, status="failed", error="Out of memory")]


def crashing_engine(spec, dataset, devices, **_):
    raise RuntimeError("boom\nsecond line")


def test_failed_device_run_exits_1_and_is_stored(capsys, runs_db, monkeypatch):
    from lib import engine

    monkeypatch.setattr(engine, "train_on_devices", failed_device_run)
    code, out, _ = run_cli(capsys, [*TINY, *TINY_DATA, "--synthetic", "--quiet"])
    assert code == 1
    assert "FAILED: Out of memory" in out
    row = RunStore(runs_db).runs().iloc[0]
    assert row["status"] == "failed" and row["error"] == "Out of memory"


def test_training_exception_exits_1_and_is_stored_as_failed(capsys, runs_db, monkeypatch, tmp_path):
    from lib import engine

    monkeypatch.setattr(engine, "train_on_devices", crashing_engine)
    out_json = tmp_path / "out.json"
    code, _, err = run_cli(capsys, [*TINY, *TINY_DATA, "--synthetic", "--quiet", "--json", str(out_json)])
    assert code == 1
    assert err.strip() == "error: training raised RuntimeError: boom second line"
    row = RunStore(runs_db).runs().iloc[0]
    assert row["status"] == "failed" and row["device"] == "cpu:0" and "boom" in row["error"]
    assert json.loads(out_json.read_text())["results"][0]["status"] == "failed"


def test_ctrl_c_stops_politely_and_stores_cancelled(capsys, runs_db, monkeypatch):
    from lib import engine

    def interrupted_engine(spec, dataset, devices, *, should_stop, **_):
        os.kill(os.getpid(), signal.SIGINT)
        assert should_stop()
        return [DeviceRun(device=devices[0], backend="tensorflow", synthetic=True, status="cancelled", error="stop")]

    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(engine, "train_on_devices", interrupted_engine)
    code, _, err = run_cli(capsys, [*TINY, *TINY_DATA, "--synthetic"])
    assert code == 130
    assert "stopping after this training step" in err
    assert RunStore(runs_db).runs()["status"].tolist() == ["cancelled"]
    assert signal.getsignal(signal.SIGINT) is previous


def done_run(device: str, steady: float) -> DeviceRun:
    return DeviceRun(
        device=device,
        backend="jax",
        synthetic=False,
        num_train=1000,
        epoch_s=[steady * 3, steady],
        first_epoch_s=steady * 3,
        steady_epoch_s=steady,
        total_s=steady * 4,
    )


def test_no_store_writes_no_database(capsys, tmp_path, monkeypatch):
    from lib import engine

    monkeypatch.setattr(engine, "train_on_devices", lambda spec, dataset, devices, **_: [done_run(devices[0], 1.0)])
    db = tmp_path / "never.sqlite"
    code, out, _ = run_cli(capsys, [*TINY, *TINY_DATA, "--synthetic", "--quiet", "--no-store", "--db", str(db)])
    assert code == 0
    assert "steady epoch   1.000 s (epoch 2)" in out
    assert not db.exists()


def test_speedup_line_compares_with_the_first_cpu():
    runs = [done_run("gpu:0", 0.5), done_run("cpu:0", 4.0), done_run("gpu:1", 1.0)]
    assert bench.format_speedup(runs) == (
        "speedup vs cpu:0: gpu:0 8.00x steady epoch, 8.00x total; gpu:1 4.00x steady epoch, 4.00x total"
    )
    failed = DeviceRun(device="gpu:0", backend="jax", synthetic=False, status="failed", error="x")
    assert bench.format_speedup([done_run("cpu:0", 1.0), failed]) == ""


def test_run_table_marks_failed_runs_and_missing_numbers():
    failed = DeviceRun(device="gpu:0", backend="jax", synthetic=True, status="failed", error="Out of memory on gpu:0")
    table = bench.format_run_table(failed, ModelSpec())
    assert "GENERATED data" in table and "FAILED: Out of memory on gpu:0" in table and "epoch 1 includes" not in table


def test_jax_backend_without_tensorflow(tmp_path):
    out_json, db = tmp_path / "jax.json", tmp_path / "jax.sqlite"
    argv = [*TINY, *TINY_DATA, "--synthetic", "--json", str(out_json), "--db", str(db)]
    # As on the GPU machine: any import of tensorflow, streamlit or altair fails (tests/helpers/gpu_machine.py).
    env = subprocess_env(KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.gpu_machine", "-m", "lib.bench", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cpu:0 (jax): fashion_mnist, GENERATED data" in result.stdout
    document = json.loads(out_json.read_text())
    assert document["backend"] == "jax" and document["synthetic"] is True
    (run,) = document["results"]
    assert run["backend"] == "jax" and run["status"] == "done" and len(run["epoch_s"]) == 2
    row = RunStore(db).runs().iloc[0]
    assert row["backend"] == "jax" and bool(row["synthetic"]) is True


def test_time_to_accuracy_energy_and_cost_reach_the_table_json_and_csv(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GPUX_PRICE_CPU_PER_HOUR", "3.6")  # 0.001 per second
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    argv = [*TINY, *TINY_DATA, "--target-accuracy", "0.2", "--no-store", "--json", str(out_json), "--csv", str(out_csv)]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err

    (result,) = json.loads(out_json.read_text())["results"]
    assert result["target_accuracy"] == 0.2 and result["target_epoch"] == 1
    assert result["time_to_target_s"] == pytest.approx(result["epoch_s"][0])
    assert result["cost"] == pytest.approx(result["total_s"] * 0.001) and result["currency"] == "USD"
    assert result["energy_method"] in ("rapl", "not measured") and result["energy_note"]
    assert "time to 20%" in out and "energy " in out
    assert f"cost           {result['cost']:.3g} USD (3.6 USD/h, this server's price)" in out
    (row,) = list(csv.DictReader(out_csv.open()))
    assert json.loads(row["held_out_accuracy"]) == pytest.approx(result["held_out_accuracy"])
    assert float(row["cost"]) == pytest.approx(result["cost"])


def test_repeats_run_each_device_again_with_the_next_seed_and_print_the_spread(capsys, tmp_path):
    out_json = tmp_path / "out.json"
    code, out, err = run_cli(capsys, [*TINY, *TINY_DATA, "--repeats", "3", "--no-store", "--json", str(out_json)])
    assert code == 0, err

    results = json.loads(out_json.read_text())["results"]
    assert [result["repeat"] for result in results] == [1, 2, 3]
    assert "cpu:0: median " in out and "over 3 runs" in out and "speedup vs" not in out


def test_roofline_places_each_run_under_its_devices_measured_roofs(capsys, tmp_path, monkeypatch):
    from lib.ceilings import Ceiling
    from lib.roofline import Bandwidth

    ceiling = Ceiling("cpu:0", "float32 strict", 256, 1.0, 1e15, "tensorflow")  # roofs far above any run here
    monkeypatch.setattr("lib.ceilings.measure_ceilings", lambda device: [ceiling])
    monkeypatch.setattr("lib.roofline.measure_bandwidth", lambda device: Bandwidth(device, 1e13, 1 << 20, "tf"))
    out_json = tmp_path / "out.json"
    code, out, err = run_cli(capsys, [*TINY, *TINY_DATA, "--roofline", "--no-store", "--json", str(out_json)])
    assert code == 0, err

    (result,) = json.loads(out_json.read_text())["results"]
    roofline = result["roofline"]
    assert roofline["bound"] == "overhead-bound" and roofline["share_of_attainable"] < 0.2
    assert roofline["bandwidth_bytes_per_s"] == 1e13 and roofline["compute_flops_per_s"] == 1e15
    assert "roofline       overhead-bound: " in out


def test_without_roofs_the_roofline_says_why(capsys, monkeypatch):
    from lib.ceilings import CeilingError

    def refuse(device):
        raise CeilingError("no timer here")

    monkeypatch.setattr("lib.ceilings.measure_ceilings", refuse)
    code, out, err = run_cli(capsys, [*TINY, *TINY_DATA, "--roofline", "--no-store"])

    assert code == 0, err
    assert "roofline       not measured: no timer here" in out
