"""Data-parallel training ("gpu:all"): batch split, device choice, scaling table and chart, and real training
on several logical CPU devices (TensorFlow) and forced host devices (JAX) in subprocesses."""

from __future__ import annotations

import json

import numpy as np
import pyarrow
import pytest
from streamlit.testing.v1 import AppTest

from lib.charts import scaling_charts
from lib.device_run import DeviceRun
from lib.devices import DeviceInfo, DeviceNotFoundError, resolve_device
from lib.engine import TrainingData
from lib.parallel import (
    ALL_CPUS,
    ALL_GPUS,
    BatchSplitError,
    DataParallelUnavailableError,
    canonical_name,
    data_parallel_choices,
    data_parallel_spec,
    describe_data_parallel,
    describe_gradient_exchange,
    device_label,
    is_data_parallel,
    per_replica_batch,
    replica_count,
    replica_devices,
    scaling_frame,
    trim_to_replicas,
)
from lib.spec import ModelSpec, count_params, flops_per_sample
from lib.store import RunStore
from ui.keys import Key

from .conftest import REPO_ROOT, SCALING_BENCHMARK, run_on_two_host_devices

SUBPROCESS_TIMEOUT_S = 300


@pytest.fixture(scope="module", params=["tensorflow", "jax"])
def parallel_training(request):
    """One real comparison, one CPU device against data parallel over two, on each backend."""
    done = run_on_two_host_devices(["-m", "tests.helpers.parallel_training"], request.param)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return request.param, result


def test_data_parallel_trains_on_two_replicas(parallel_training):
    backend, result = parallel_training
    single, parallel = (DeviceRun.from_dict(run) for run in result["runs"])
    assert result["resolved"] == ALL_CPUS and result["replicas"] == ["cpu:0", "cpu:1"]
    assert single.status == "done" and parallel.status == "done", parallel.error
    assert (single.device, single.replicas) == ("cpu:0", 1)
    assert (parallel.device, parallel.replicas, parallel.backend) == (ALL_CPUS, 2, backend)
    assert parallel.num_train == single.num_train == 320
    # The test split is cut to a multiple of the replicas so every batch splits evenly: 71 -> 70.
    assert (single.num_test, parallel.num_test) == (71, 70)
    assert len(parallel.epoch_s) == 2 and parallel.steady_epoch_s > 0


def test_data_parallel_loss_matches_one_device(parallel_training):
    _, result = parallel_training
    single, parallel = (DeviceRun.from_dict(run) for run in result["runs"])
    # Same seed, weights and shuffle order; the gradient of the global batch is the mean of the replicas'.
    np.testing.assert_allclose(parallel.train_loss, single.train_loss, rtol=1e-4)
    np.testing.assert_allclose(parallel.train_accuracy, single.train_accuracy, atol=1e-6)
    assert single.train_loss[1] < single.train_loss[0]


def test_device_resident_data_parallel_trains_through_the_engine(parallel_training):
    backend, result = parallel_training
    (run,) = (DeviceRun.from_dict(run) for run in result["resident"])
    assert (run.status, run.device, run.replicas, run.backend) == ("done", ALL_CPUS, 2, backend), run.error
    assert len(run.epoch_s) == 3 and run.train_loss[-1] < run.train_loss[0]
    assert run.test_accuracy is not None and 0.0 <= run.test_accuracy <= 1.0  # random generated labels
    # The loop exists on JAX only (one compiled call per epoch, no batch events); elsewhere model.fit trains.
    fit_batches = "batch" in result["resident_event_kinds"]
    assert fit_batches is (backend != "jax"), result["resident_event_kinds"]


def test_scaling_benchmark_runs_on_forced_host_devices(tmp_path):
    out = tmp_path / "scaling.json"
    args = [
        *SCALING_BENCHMARK,
        "--kind",
        "cpu",
        "--preset",
        "fashion-tuned",
        "--synthetic",
        "--limit",
        "1024",
    ]
    args += ["--test-limit", "64", "--epochs", "2", "--quiet", "--json", str(out)]
    done = run_on_two_host_devices(args, "jax")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "speedup" in done.stdout and "input floor" in done.stdout
    document = json.loads(out.read_text())
    rows = document["rows"]
    assert [(row["device"], row["replicas"], row["per_replica_batch"]) for row in rows] == [
        ("cpu:0", 1, 1024),
        ("cpu:all", 2, 512),
    ]
    assert rows[0]["speedup"] == 1.0 and rows[0]["efficiency"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(rows[0]["steady_epoch_s"] / rows[1]["steady_epoch_s"])
    assert rows[1]["efficiency"] == pytest.approx(rows[1]["speedup"] / 2)
    assert all(row["input_floor_s"] > 0 for row in rows)
    assert document["backend"] == "jax" and document["replica_devices"] == ["cpu:0", "cpu:1"]
    assert [run["replicas"] for run in document["runs"]] == [1, 2]


def test_scaling_benchmark_trains_through_the_job_runner(tmp_path):
    out = tmp_path / "scaling.json"
    args = [*SCALING_BENCHMARK, "--kind", "cpu", "--preset", "fashion-tuned", "--synthetic"]
    args += ["--limit", "512", "--test-limit", "32", "--epochs", "2", "--no-input-floor", "--no-device-resident"]
    args += ["--through-runner", "--quiet", "--json", str(out)]
    done = run_on_two_host_devices(args, "jax")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "through the app's job runner" in done.stdout
    table = json.loads(out.read_text())["through_runner"]
    assert [(row["num_gpus"], row["runs"]) for row in table] == [(1, 1), (2, 1)]
    assert table[0]["speedup"] == 1.0
    assert table[1]["efficiency"] == pytest.approx(table[1]["speedup"] / 2)
    assert "fashion-tuned" in table[0]["config"] and "synthetic" in table[0]["config"]


def test_bench_cli_accepts_the_data_parallel_device(tmp_path):
    out = tmp_path / "bench.json"
    args = ["-m", "lib.bench", "--devices", "cpu:0,cpu:all", "--synthetic", "--limit", "256", "--test-limit", "32"]
    args += ["--epochs", "1", "--batch-size", "64", "--hidden-units", "16", "--no-store", "--quiet", "--json", str(out)]
    done = run_on_two_host_devices(args, "jax")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert [(run["device"], run["replicas"], run["status"]) for run in results] == [
        ("cpu:0", 1, "done"),
        ("cpu:all", 2, "done"),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("gpu:all", True), ("All-GPUs", True), ("cuda:all", True), ("cpu:all", True), ("gpu:0", False), ("gpu", False)],
)
def test_is_data_parallel(name, expected):
    assert is_data_parallel(name) is expected


def test_names_and_labels():
    assert canonical_name("ALL-GPUS") == ALL_GPUS and canonical_name("cpu:all") == ALL_CPUS
    assert device_label(ALL_GPUS) == "all GPUs (data parallel)"
    assert device_label("gpu:0") == "gpu:0"
    with pytest.raises(ValueError, match="not a data-parallel device name"):
        canonical_name("gpu:0")


@pytest.mark.parametrize(("global_batch", "replicas", "share"), [(2048, 2, 1024), (2048, 8, 256), (96, 3, 32)])
def test_per_replica_batch_splits_evenly(global_batch, replicas, share):
    assert per_replica_batch(global_batch, replicas) == share


@pytest.mark.parametrize(
    ("global_batch", "replicas", "suggestion"),
    [(100, 3, "e.g. 99 or 102"), (2, 4, "e.g. 4"), (1000, 16, "e.g. 992 or 1008")],
)
def test_per_replica_batch_explains_an_uneven_split(global_batch, replicas, suggestion):
    with pytest.raises(BatchSplitError, match=f"multiple of {replicas}, {suggestion}"):
        per_replica_batch(global_batch, replicas)


def test_describe_data_parallel():
    assert describe_data_parallel(2048, 2).startswith("global batch 2,048 split into 2 x 1,024 per replica")
    assert "cannot be split evenly between 3 replicas" in describe_data_parallel(1024, 3)


def test_gradient_exchange_grows_in_work_per_byte_with_the_batch_per_device():
    spec = ModelSpec(dataset="cifar10", hidden_units=(3000, 1000))
    params, flops = count_params(spec), flops_per_sample(spec)
    small, large = (
        describe_gradient_exchange(params, flops, 2048, 2),
        describe_gradient_exchange(params, flops, 16384, 2),
    )
    assert "48.92 MB of gradients (4 bytes x 12,230,010 parameters)" in small
    assert "75.12 GFLOP on its 1,024 samples" in small and "1,535 FLOP of work per exchanged byte" in small
    assert "600.93 GFLOP on its 8,192 samples" in large and "12,284 FLOP of work per exchanged byte" in large
    assert describe_gradient_exchange(params, flops, 1023, 2) == ""  # the split message says why


def test_trim_to_replicas_keeps_a_multiple_of_the_replicas():
    data = TrainingData(
        x_train=np.zeros((64, 4), np.float32),
        y_train=np.arange(64),
        x_test=np.zeros((11, 4), np.float32),
        y_test=np.arange(11),
        image_shape=(4,),
        num_classes=10,
        synthetic=True,
    )
    trimmed = trim_to_replicas(data, 4)
    assert (len(trimmed.x_train), len(trimmed.y_train), len(trimmed.x_test), len(trimmed.y_test)) == (64, 64, 8, 8)
    assert trim_to_replicas(data, 1) is data


def _devices(gpus: int, backend: str = "jax") -> list[DeviceInfo]:
    cpu = DeviceInfo("cpu:0", "CPU", "CPU", None, None, backend)
    return [cpu] + [DeviceInfo(f"gpu:{i}", "GPU", "NVIDIA H200", 2**37, "9.0", backend) for i in range(gpus)]


def test_data_parallel_is_offered_only_with_several_gpus():
    assert data_parallel_choices(_devices(0)) == []
    assert data_parallel_choices(_devices(1)) == []
    assert data_parallel_choices(_devices(2)) == [ALL_GPUS]
    assert data_parallel_choices(_devices(2, backend="tensorflow")) == [ALL_GPUS]
    assert data_parallel_choices(_devices(4, backend="torch")) == []


def test_tensorflow_data_parallel_runs_one_step_per_call_without_xla():
    spec = ModelSpec(steps_per_execution=16, jit_compile=True)
    adjusted = data_parallel_spec(spec, ALL_GPUS, backend="tensorflow")
    assert (adjusted.steps_per_execution, adjusted.jit_compile) == (1, False)
    assert data_parallel_spec(spec, ALL_GPUS, backend="jax") == spec
    assert data_parallel_spec(spec, "gpu:0", backend="tensorflow") == spec


def test_data_parallel_is_refused_with_one_device_here():
    # This machine has one CPU device and no GPU under the test process's TensorFlow backend.
    with pytest.raises(DataParallelUnavailableError, match="needs at least 2 GPU devices.*Choose one device"):
        replica_devices(ALL_GPUS, backend="tensorflow")
    with pytest.raises(DeviceNotFoundError, match="needs at least 2 CPU devices"):
        resolve_device("cpu:all")
    assert replica_count("gpu:0") == 1


def test_data_parallel_is_refused_on_torch():
    with pytest.raises(DataParallelUnavailableError, match="not available on the torch backend"):
        replica_devices(ALL_GPUS, backend="torch")


def _record(store: RunStore, spec: ModelSpec, device: str, steady: float, replicas: int = 1, status: str = "done"):
    run = DeviceRun(
        device=device,
        backend="jax",
        synthetic=True,
        status=status,
        num_train=49152,
        epoch_s=[5.0, steady],
        first_epoch_s=5.0,
        steady_epoch_s=steady,
        total_s=5.0 + steady,
        samples_per_s=49152 / steady,
        replicas=replicas,
    )
    store.record(spec, run, preset="cifar10-tuned")


@pytest.fixture
def scaling_store(tmp_path) -> RunStore:
    """Stored runs: one configuration on 1 GPU (twice), 2 GPUs and the CPU, one on 1 GPU only."""
    store = RunStore(tmp_path / "runs.sqlite")
    tuned = ModelSpec(dataset="cifar10", hidden_units=(3000, 1000), batch_size=2048)
    _record(store, tuned, "gpu:0", 1.0)
    _record(store, tuned, "gpu:0", 1.2)
    _record(store, tuned, ALL_GPUS, 0.6, replicas=2)
    _record(store, tuned, ALL_GPUS, 0.1, replicas=2, status="failed")
    _record(store, tuned, "cpu:0", 9.0)
    _record(store, tuned.with_changes(batch_size=1024), "gpu:0", 2.0)
    return store


def test_scaling_frame_compares_gpu_counts_of_one_configuration(scaling_store):
    frame = scaling_frame(scaling_store.runs())
    assert list(frame.columns) == ["config", "num_gpus", "epoch_s", "speedup", "efficiency", "runs"]
    assert frame["config"].tolist() == ["cifar10-tuned: [3000, 1000], batch 2048, jax, synthetic data"] * 2
    assert frame["num_gpus"].tolist() == [1, 2]
    assert frame["epoch_s"].tolist() == pytest.approx([1.1, 0.6])  # median of the two one-GPU runs
    assert frame["speedup"].tolist() == pytest.approx([1.0, 1.1 / 0.6])
    assert frame["efficiency"].tolist() == pytest.approx([1.0, 1.1 / 0.6 / 2])
    assert frame["runs"].tolist() == [2, 1]


def test_scaling_frame_is_empty_without_a_multi_gpu_run(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    _record(store, ModelSpec(), "gpu:0", 1.0)
    assert scaling_frame(store.runs()).empty
    assert scaling_frame(RunStore(tmp_path / "empty.sqlite").runs()).empty


def test_scaling_chart_draws_epoch_time_and_efficiency(scaling_store):
    epoch_chart, efficiency_chart = scaling_charts(scaling_frame(scaling_store.runs()))
    epoch_panel, efficiency_panel = epoch_chart.to_dict(), efficiency_chart.to_dict()
    assert epoch_panel["encoding"]["x"]["field"] == "num_gpus"
    assert epoch_panel["encoding"]["y"]["title"] == "Time per epoch (s)"
    line, ideal = efficiency_panel["layer"]
    assert line["encoding"]["y"]["field"] == "efficiency" and line["encoding"]["y"]["axis"]["format"] == "%"
    assert ideal["mark"]["type"] == "rule" and "tooltip" in ideal["encoding"]
    tooltip_fields = {item["field"] for item in epoch_panel["encoding"]["tooltip"]}
    assert {"num_gpus", "epoch_s", "speedup", "efficiency"} <= tooltip_fields
    assert len(efficiency_panel["datasets"]) == 2  # the scaling rows and the 100% reference line


@pytest.fixture
def two_fake_gpus(runs_db, monkeypatch):
    """Makes the app see two GPUs (listing only; nothing trains) and forgets them afterwards."""
    from ui import runtime

    monkeypatch.setattr(runtime, "list_devices", lambda: _devices(2, backend="tensorflow"))
    runtime._backend_warmup.clear()
    runtime.wait_for_backend()
    yield
    runtime._backend_warmup.clear()


def test_train_page_offers_all_gpus_and_shows_the_batch_split(two_fake_gpus):
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[Key.MODEL_SPEC] = ModelSpec(batch_size=2048)
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    devices = at.multiselect(key=Key.DEVICES)
    assert "all GPUs (data parallel)" in devices.options
    assert not any("data parallel" in caption.value for caption in at.caption)
    devices.set_value(["gpu:0", ALL_GPUS]).run()
    assert not at.exception
    assert at.multiselect(key=Key.DEVICES).value == ["gpu:0", ALL_GPUS]
    captions = [caption.value for caption in at.caption if "data parallel" in caption.value]
    assert captions and captions[0].startswith(
        "all GPUs (data parallel): global batch 2,048 split into 2 x 1,024 per replica"
    )
    assert any("FLOP of work per exchanged byte" in caption.value for caption in at.caption)


def test_results_page_draws_the_scaling_chart(runs_db):
    store = RunStore()
    tuned = ModelSpec(dataset="cifar10", hidden_units=(3000, 1000), batch_size=2048)
    _record(store, tuned, "gpu:0", 1.0)
    _record(store, tuned, ALL_GPUS, 0.55, replicas=2)
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/results.py").run()
    assert not at.exception
    scaling = [chart.proto for chart in at.get("vega_lite_chart") if "num_gpus" in chart.proto.spec]
    assert len(scaling) == 2  # time per epoch, then efficiency
    # Streamlit sends the chart's data as Arrow tables next to the spec; the spec names its table.
    table = json.loads(scaling[0].spec)["data"]["name"]
    data = next(dataset.data.data for dataset in scaling[0].datasets if dataset.name == table)
    rows = pyarrow.ipc.open_stream(data).read_pandas()
    assert rows["num_gpus"].tolist() == [1, 2]
    assert rows["efficiency"].tolist() == pytest.approx([1.0, 1.0 / 0.55 / 2])
    assert any("Efficiency = speedup / GPUs" in caption.value for caption in at.caption)
