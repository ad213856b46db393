from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pandas as pd
import pytest

from lib.device_run import DeviceRun
from lib.guesses import GuessRecord
from lib.jobs import JobRecord, JobRequest, JobState
from lib.spec import ModelSpec
from lib.store import (
    DEFAULT_DB_PATH,
    EXPORT_COLUMNS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    JobRecordNotFoundError,
    RunNotFoundError,
    RunStore,
    StoreError,
    default_db_path,
)
from tests.conftest import REPO_ROOT

SPEC = ModelSpec(hidden_units=(64, 32), epochs=3, batch_size=128, seed=7, device_resident=True)
VERSION_4_COLUMNS = ("target_accuracy", "time_to_target_s", "energy_method", "energy_j", "energy_above_idle_j")


def make_run(device: str = "cpu:0", *, status: str = "done", synthetic: bool = False, scale: float = 1.0) -> DeviceRun:
    epoch_s = [2.0 * scale, 1.0 * scale, 1.2 * scale]
    if status != "done":
        return DeviceRun(device=device, backend="tensorflow", synthetic=synthetic, status=status, error="out of memory")
    return DeviceRun(
        device=device,
        backend="tensorflow",
        synthetic=synthetic,
        num_train=6000,
        num_test=1000,
        epoch_s=epoch_s,
        first_epoch_s=epoch_s[0],
        steady_epoch_s=1.1 * scale,
        total_s=sum(epoch_s),
        samples_per_s=6000 / (1.1 * scale),
        achieved_flops_per_s=1.5e9 / scale,
        train_loss=[0.9, 0.6, 0.5],
        train_accuracy=[0.7, 0.8, 0.85],
        test_loss=0.55,
        test_accuracy=0.83,
    )


@pytest.fixture
def store(runs_db) -> RunStore:
    return RunStore()


def test_default_path_follows_env_var(runs_db, store):
    assert default_db_path() == runs_db
    assert store.path == runs_db
    assert runs_db.exists()
    assert default_db_path({}) == DEFAULT_DB_PATH == REPO_ROOT / "runs" / "runs.sqlite"


def test_round_trip_dataframe_fields_equal(store):
    run = make_run()
    hardware = {"cpu_model": "Test CPU", "logical_cores": 2, "gpus": []}
    versions = {"keras": "3.15.1"}
    run_id = store.record(
        SPEC,
        run,
        preset="fashion-seed",
        job_id="job-1",
        started_at="2025-01-02T03:04:05.000+00:00",
        hardware=hardware,
        versions=versions,
        params=12345,
    )
    frame = store.runs()
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["id"] == run_id
    assert row["job_id"] == "job-1"
    assert row["preset"] == "fashion-seed"
    assert row["status"] == "done"
    assert row["dataset"] == "fashion_mnist"
    assert row["device"] == "cpu:0"
    assert row["backend"] == "tensorflow"
    assert bool(row["synthetic"]) is False
    assert row["params"] == 12345
    assert row["num_train"] == 6000 and row["num_test"] == 1000
    assert row["batch_size"] == 128 and row["epochs"] == 3 and row["seed"] == 7
    assert row["epoch_s"] == run.epoch_s
    assert row["train_loss"] == run.train_loss and row["train_accuracy"] == run.train_accuracy
    assert row["total_s"] == pytest.approx(sum(run.epoch_s))
    assert row["steady_epoch_s"] == run.steady_epoch_s
    assert row["samples_per_s"] == run.samples_per_s
    assert row["achieved_flops_per_s"] == run.achieved_flops_per_s
    assert row["test_accuracy"] == run.test_accuracy and row["test_loss"] == run.test_loss
    assert row["hidden_units"] == [64, 32]
    assert bool(row["device_resident"]) is True and row["steps_per_execution"] == 1
    assert row["spec"] == SPEC.to_dict()
    assert row["result"] == run.to_dict()
    assert row["hardware"] == hardware and row["versions"] == versions
    assert row["started_at"] == pd.Timestamp("2025-01-02T03:04:05Z")
    assert row["created_at"].tzinfo is not None


def test_dtypes_are_sensible(store):
    store.record(SPEC, make_run(), params=10)
    store.record(SPEC.with_changes(dataset="not-a-dataset"), make_run(status="failed"))
    frame = store.runs()
    assert frame["id"].dtype == "int64"
    assert frame["synthetic"].dtype == bool
    assert frame["steady_epoch_s"].dtype == "float64"
    assert str(frame["params"].dtype) == "Int64"
    assert isinstance(frame["created_at"].dtype, pd.DatetimeTZDtype)
    failed = frame.iloc[1]
    assert math.isnan(failed["steady_epoch_s"]) and failed["epoch_s"] == [] and pd.isna(failed["params"])


def test_empty_store_gives_empty_frame_with_columns(store):
    frame = store.runs()
    assert frame.empty
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert frame["steady_epoch_s"].dtype == "float64"
    assert store.count() == 0


def test_params_computed_from_spec_when_not_given(store):
    store.record(SPEC, make_run())
    # 784 inputs -> 64 -> 32 -> 10 classes, weights plus biases
    assert store.runs().iloc[0]["params"] == (784 + 1) * 64 + (64 + 1) * 32 + (32 + 1) * 10


def test_get_decodes_spec_and_run(store):
    run = make_run("gpu:0", synthetic=True)
    run_id = store.record(SPEC, run, preset="p", hardware={"gpus": ["H100"]}, params=5)
    stored = store.get(run_id)
    assert stored.spec == SPEC
    assert stored.run == run
    assert stored.preset == "p" and stored.params == 5 and stored.hardware == {"gpus": ["H100"]}
    with pytest.raises(RunNotFoundError, match="No stored run has id 999"):
        store.get(999)


def test_confusion_matrix_is_stored_and_a_run_stored_without_one_still_loads(store, runs_db):
    run = dataclasses.replace(
        make_run(), confusion=[[3, 1], [0, 4]], sample_predictions=[{"index": 1, "true": 0, "predicted": 1}]
    )
    run_id = store.record(SPEC, run, params=1)
    assert store.get(run_id).run == run
    assert store.runs().iloc[0]["result"]["confusion"] == [[3, 1], [0, 4]]
    old_result = {key: value for key, value in run.to_dict().items() if key not in ("confusion", "sample_predictions")}
    with contextlib.closing(sqlite3.connect(runs_db)) as connection, connection:
        connection.execute("UPDATE runs SET result_json = ? WHERE id = ?", (json.dumps(old_result), run_id))
    old = store.get(run_id).run
    assert old.confusion == [] and old.sample_predictions == [] and old.test_accuracy == run.test_accuracy
    assert "confusion" not in store.runs().iloc[0]["result"]


def test_filters(store):
    store.record(SPEC, make_run("cpu:0"), preset="fashion-seed", params=1)
    store.record(SPEC, make_run("gpu:0", synthetic=True), preset="fashion-tuned", params=1)
    store.record(SPEC.with_changes(dataset="cifar10"), make_run("gpu:0", status="failed"), job_id="j", params=1)
    assert list(store.runs(device="gpu:0")["device"]) == ["gpu:0", "gpu:0"]
    assert list(store.runs(status="failed")["dataset"]) == ["cifar10"]
    assert list(store.runs(dataset=["fashion_mnist"])["preset"]) == ["fashion-seed", "fashion-tuned"]
    assert list(store.runs(synthetic=True)["preset"]) == ["fashion-tuned"]
    assert len(store.runs(synthetic=False)) == 2
    assert list(store.runs(job_id="j")["status"]) == ["failed"]
    assert list(store.runs(preset=["fashion-seed", "fashion-tuned"], device="cpu:0")["preset"]) == ["fashion-seed"]
    assert list(store.runs(limit=2)["id"]) == [2, 3]
    assert len(store.runs(since="2000-01-01T00:00:00+00:00")) == 3
    assert store.runs(since="2999-01-01T00:00:00+00:00").empty


def test_the_machine_filter_matches_the_machine_named_by_the_stored_hardware(store):
    cluster = {"cpu_model": "Test CPU", "host": "ip-10-0-0-5"}
    store.record(SPEC, make_run("cpu:0"), hardware={"cpu_model": "Test CPU"}, params=1)  # before host names were kept
    store.record(SPEC, make_run("cpu:0"), hardware={**cluster, "node": "machine-1"}, params=1)
    store.record(SPEC, make_run("gpu:0"), hardware={**cluster, "host": "gpu-box"}, params=1)
    store.record(SPEC, make_run("gpu:0"), hardware={**cluster, "node": "machine-1"}, params=1)
    assert list(store.runs(machine="machine-1")["id"]) == [2, 4]
    assert list(store.runs(machine=["this server", "gpu-box"])["id"]) == [1, 3]
    assert list(store.runs(machine="machine-1", device="gpu:0")["id"]) == [4]
    assert list(store.runs(machine="machine-1", limit=1)["id"]) == [4]  # the latest of that machine's runs
    assert list(store.runs(machine=["gpu-box", "machine-1"], limit=2)["id"]) == [3, 4]
    assert store.runs(machine="machine-9").empty
    assert pd.read_csv(io.BytesIO(store.to_csv_bytes(machine="gpu-box")))["id"].tolist() == [3]
    buffer = io.StringIO()
    store.export_json(buffer, machine="machine-1")
    assert [run["id"] for run in json.loads(buffer.getvalue())] == [2, 4]


def test_failed_run_is_recorded(store):
    run_id = store.record(SPEC, make_run(status="failed"), params=1)
    row = store.runs().iloc[0]
    assert row["status"] == "failed" and row["error"] == "out of memory"
    assert store.get(run_id).run.status == "failed"


def test_update_status_and_interrupt_running(store):
    running = DeviceRun(device="gpu:0", backend="jax", synthetic=False, status="running")
    first = store.record(SPEC, running, job_id="a", params=1)
    second = store.record(SPEC, running, job_id="b", params=1)
    store.update_status(first, "done", run=make_run("gpu:0"))
    assert store.interrupt_running("server restarted") == 1
    frame = store.runs()
    assert list(frame["status"]) == ["done", "interrupted"]
    assert frame.iloc[0]["total_s"] == pytest.approx(4.2)
    assert frame.iloc[1]["error"] == "server restarted"
    assert store.get(second).run.status == "interrupted"
    with pytest.raises(RunNotFoundError):
        store.update_status(42, "failed")
    with pytest.raises(StoreError, match="Unknown run status"):
        store.update_status(first, "exploded")


def test_nan_metrics_survive_and_export_as_null(store, tmp_path):
    run = make_run()
    run.train_loss = [float("nan"), 1.0, 0.5]
    store.record(SPEC, run, params=1)
    assert math.isnan(store.runs().iloc[0]["train_loss"][0])
    path = tmp_path / "runs.json"
    store.export_json(path)
    assert json.loads(path.read_text())[0]["train_loss"] == [None, 1.0, 0.5]


def test_csv_and_json_exports_read_back_with_pandas(store, tmp_path):
    store.record(SPEC, make_run("cpu:0"), preset="fashion-seed", params=100)
    store.record(SPEC, make_run("gpu:0", scale=0.1), preset="fashion-seed", params=100)
    csv_path = tmp_path / "runs.csv"
    store.export_csv(csv_path)
    from_csv = pd.read_csv(csv_path)
    assert list(from_csv.columns) == list(EXPORT_COLUMNS)
    assert list(from_csv["data"]) == ["real", "real"]
    assert list(from_csv["device"]) == ["cpu:0", "gpu:0"]
    assert json.loads(from_csv.loc[1, "epoch_s"]) == pytest.approx([0.2, 0.1, 0.12])
    assert from_csv.loc[0, "total_s"] == pytest.approx(4.2)
    assert store.to_csv_bytes() == csv_path.read_bytes()
    assert pd.read_csv(io.BytesIO(store.to_csv_bytes(device="gpu:0")))["device"].tolist() == ["gpu:0"]

    buffer = io.StringIO()
    store.export_json(buffer, device="cpu:0")
    from_json = pd.read_json(io.StringIO(buffer.getvalue()))
    assert list(from_json["device"]) == ["cpu:0"]
    assert from_json.loc[0, "epoch_s"] == [2.0, 1.0, 1.2]
    assert from_json.loc[0, "spec"]["hidden_units"] == [64, 32]


def test_exports_label_generated_data_and_leave_its_accuracy_empty(store, tmp_path):
    store.record(SPEC, make_run("cpu:0"), params=1)
    store.record(SPEC, make_run("cpu:0", synthetic=True), params=1)
    assert EXPORT_COLUMNS[EXPORT_COLUMNS.index("synthetic") + 1] == "data"
    from_csv = pd.read_csv(io.BytesIO(store.to_csv_bytes()))
    assert list(from_csv["data"]) == ["real", "generated"]
    assert from_csv.loc[0, "test_accuracy"] == pytest.approx(0.83)
    assert pd.isna(from_csv.loc[1, "test_accuracy"])
    assert json.loads(from_csv.loc[0, "train_accuracy"]) == [0.7, 0.8, 0.85]
    assert pd.isna(from_csv.loc[1, "train_accuracy"])  # "null": an empty cell to a CSV reader
    result = json.loads(from_csv.loc[1, "result"])
    assert result["test_accuracy"] is None and result["train_accuracy"] is None
    assert result["test_loss"] == pytest.approx(0.55)  # only accuracy is left out
    assert from_csv.loc[1, "total_s"] == pytest.approx(4.2)

    buffer = io.StringIO()
    store.export_json(buffer)
    real, generated = json.loads(buffer.getvalue())
    assert list(generated) == list(EXPORT_COLUMNS)
    assert (real["data"], generated["data"]) == ("real", "generated")
    assert real["test_accuracy"] == pytest.approx(0.83)
    assert generated["test_accuracy"] is None and generated["train_accuracy"] is None
    assert generated["result"]["test_accuracy"] is None
    assert store.runs().iloc[1]["test_accuracy"] == pytest.approx(0.83)  # the stored run keeps it


def test_schema_version_and_wal(store, runs_db):
    assert store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(runs_db) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(store, runs_db):
    with sqlite3.connect(runs_db) as connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    newer = rf"schema version {SCHEMA_VERSION + 1}, newer than this app's {SCHEMA_VERSION}.*GPUX_RUNS_DB"
    with pytest.raises(StoreError, match=newer):
        RunStore(runs_db)


def test_corrupt_file_gives_clear_error(tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable run database.*Move it away"):
        RunStore(path)


def test_unwritable_path_gives_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot create the folder.*writable path"):
        RunStore(blocker / "sub" / "runs.sqlite")


def test_memory_path_is_refused():
    with pytest.raises(StoreError, match="needs a file"):
        RunStore(":memory:")


def test_concurrent_threads_all_rows_present(store):
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for index in range(10):
                store.record(SPEC, make_run(f"cpu:{thread}"), job_id=f"t{thread}-{index}", params=1)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    frame = store.runs()
    assert len(frame) == 80
    assert frame["id"].is_unique
    assert sorted(frame["job_id"]) == sorted(f"t{t}-{i}" for t in range(8) for i in range(10))


def test_concurrent_processes_all_rows_present(tmp_path):
    path = tmp_path / "shared.sqlite"
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.store_writer", str(path), f"p{number}", "4"],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(4)
    ]
    outcomes = [(writer.wait(timeout=120), writer.stderr.read()) for writer in writers]
    for writer in writers:
        writer.stderr.close()
    assert all(code == 0 for code, _ in outcomes), [err for _, err in outcomes]
    assert not any("locked" in err for _, err in outcomes)
    frame = RunStore(path).runs()
    assert len(frame) == 100
    assert sorted(frame["job_id"]) == sorted(f"p{p}-{i}" for p in range(4) for i in range(25))


# --- the durable job queue ---


def make_job(job_id: str, *, seq: int = 0, state: JobState = JobState.QUEUED, submitted_at: float = 100.0) -> JobRecord:
    request = JobRequest(spec=SPEC, devices=("cpu:0", "gpu:all"), sample_limit=2048, backend="jax")
    return JobRecord(
        job_id=job_id,
        seq=seq,
        submitted_at=submitted_at,
        state=state,
        client="10.1.2.3",
        owners=("session-a", "session-b"),
        preset="fashion-seed",
        request=request,
    )


def test_job_round_trip_and_store_assigned_seq(store):
    first, second = make_job("aaaaaaaaaaaa"), make_job("bbbbbbbbbbbb", submitted_at=101.0)
    assert store.save_job(first) == 1
    assert store.save_job(second) == 2
    assert store.jobs() == [dataclasses.replace(first, seq=1), dataclasses.replace(second, seq=2)]
    stored = store.jobs()[0]
    assert stored.request.backend == "jax" and stored.request.spec.device_resident
    assert stored.owners == ("session-a", "session-b") and isinstance(stored.state, JobState)
    assert store.job("bbbbbbbbbbbb") == dataclasses.replace(second, seq=2)
    assert store.job("cccccccccccc") is None


def test_saving_a_job_again_replaces_it_and_keeps_its_seq(store):
    store.save_job(make_job("aaaaaaaaaaaa"))
    store.save_job(make_job("bbbbbbbbbbbb"))
    changed = dataclasses.replace(make_job("aaaaaaaaaaaa"), state=JobState.RUNNING, started_at=105.0)
    assert store.save_job(changed) == 1
    assert [(job.job_id, job.seq, job.state) for job in store.jobs()] == [
        ("aaaaaaaaaaaa", 1, JobState.RUNNING),
        ("bbbbbbbbbbbb", 2, JobState.QUEUED),
    ]


def test_given_seq_is_kept_and_later_ones_follow_it(store):
    assert store.save_job(make_job("aaaaaaaaaaaa", seq=40)) == 40
    assert store.save_job(make_job("bbbbbbbbbbbb")) == 41
    with pytest.raises(StoreError):
        store.save_job(make_job("cccccccccccc", seq=40))


def test_update_job_changes_only_the_given_fields(store):
    store.save_job(make_job("aaaaaaaaaaaa"))
    store.update_job("aaaaaaaaaaaa", state=JobState.RUNNING, started_at=110.0)
    store.update_job("aaaaaaaaaaaa", owners=["session-b"])
    store.update_job("aaaaaaaaaaaa", state="failed", finished_at=120.5, error="out of memory")
    (job,) = store.jobs()
    assert (job.state, job.started_at, job.finished_at, job.error) == (JobState.FAILED, 110.0, 120.5, "out of memory")
    assert job.owners == ("session-b",) and job.client == "10.1.2.3" and job.seq == 1


def test_update_job_refuses_unknown_jobs_and_states(store):
    with pytest.raises(JobRecordNotFoundError, match="No stored job has id nope"):
        store.update_job("nope", state=JobState.DONE)
    with pytest.raises(JobRecordNotFoundError):
        store.update_job("nope")
    store.save_job(make_job("aaaaaaaaaaaa"))
    with pytest.raises(StoreError, match="Unknown job state 'paused'"):
        store.update_job("aaaaaaaaaaaa", state="paused")


def test_unfinished_jobs_are_queued_and_running_in_submission_order(store):
    states = [JobState.DONE, JobState.QUEUED, JobState.RUNNING, JobState.CANCELLED, JobState.QUEUED]
    for index, state in enumerate(states):
        store.save_job(make_job(f"job{index:09d}", state=state))
    store.update_job("job000000001", state=JobState.INTERRUPTED)
    assert [(job.job_id, job.state) for job in store.unfinished_jobs()] == [
        ("job000000002", JobState.RUNNING),
        ("job000000004", JobState.QUEUED),
    ]


def test_jobs_since_a_time(store):
    for index, submitted in enumerate((1_000.0, 2_000.0, 3_000.0)):
        store.save_job(make_job(f"job{index:09d}", submitted_at=submitted))
    assert [job.submitted_at for job in store.jobs(since=2_000.0)] == [2_000.0, 3_000.0]
    moment = datetime.fromtimestamp(2_500.0, tz=UTC)
    assert [job.submitted_at for job in store.jobs(since=moment)] == [3_000.0]
    assert [job.submitted_at for job in store.jobs(since=moment.replace(tzinfo=None))] == [3_000.0]


def test_concurrent_threads_get_distinct_increasing_seqs(store):
    def save(thread: int) -> list[int]:
        return [store.save_job(make_job(f"t{thread}-{index:02d}")) for index in range(10)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        seqs = list(pool.map(save, range(6)))
    assert sorted(seq for per_thread in seqs for seq in per_thread) == list(range(1, 61))
    assert all(per_thread == sorted(per_thread) for per_thread in seqs)
    assert [job.seq for job in store.jobs()] == list(range(1, 61))


# The schema of version 1, as it was before the jobs table: kept here so the migration is tested on a real old file.
VERSION_1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    status TEXT NOT NULL,
    preset TEXT,
    dataset TEXT NOT NULL,
    device TEXT NOT NULL,
    backend TEXT NOT NULL,
    synthetic INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    result_json TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    versions_json TEXT NOT NULL DEFAULT '{}',
    hardware_json TEXT NOT NULL DEFAULT '{}',
    params INTEGER,
    num_train INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    epochs INTEGER NOT NULL,
    first_epoch_s REAL,
    steady_epoch_s REAL,
    total_s REAL,
    samples_per_s REAL,
    achieved_flops_per_s REAL,
    test_accuracy REAL
);
CREATE INDEX runs_job_id ON runs (job_id);
CREATE INDEX runs_created_at ON runs (created_at);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
"""


def write_version_1_file(path) -> DeviceRun:
    """A version-1 database holding one run whose spec predates `device_resident`."""
    run = make_run()
    old_spec = {key: value for key, value in SPEC.to_dict().items() if key != "device_resident"}
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.executescript(VERSION_1_SCHEMA)
        connection.execute(
            "INSERT INTO runs (job_id, created_at, status, dataset, device, backend, synthetic, spec_json, "
            "result_json, params, num_train, batch_size, epochs, steady_epoch_s) "
            "VALUES ('old-job', '2025-01-02T03:04:05.000+00:00', 'done', 'fashion_mnist', 'cpu:0', 'tensorflow', "
            "0, ?, ?, 10, 6000, 128, 3, 1.1)",
            (json.dumps(old_spec), json.dumps(run.to_dict())),
        )
    return run


def test_version_1_file_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.sqlite"
    run = write_version_1_file(path)
    store = RunStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 4
    frame = store.runs()
    assert list(frame["job_id"]) == ["old-job"] and frame.loc[0, "epoch_s"] == run.epoch_s
    assert bool(frame.loc[0, "device_resident"]) is False  # the old spec has no such field: its default
    assert store.get(int(frame.loc[0, "id"])).run == run
    assert store.jobs() == [] and store.save_job(make_job("aaaaaaaaaaaa")) == 1
    assert [job.job_id for job in RunStore(path).unfinished_jobs()] == ["aaaaaaaaaaaa"]  # reopening migrates nothing


def test_a_guess_is_kept_per_job_and_session_and_read_back(store):
    first = GuessRecord("aaaaaaaaaaaa", "owner-1", "gpu_vs_cpu", 5.0, made_at=100.0)
    other = GuessRecord("aaaaaaaaaaaa", "owner-2", "gpu_vs_cpu", 0.5, made_at=101.0)
    store.save_guess(first)
    store.save_guess(other)
    assert store.guess("aaaaaaaaaaaa", "owner-1") == first
    assert store.guess("aaaaaaaaaaaa", "owner-3") is None
    assert store.guess("bbbbbbbbbbbb", "owner-1") is None

    changed = dataclasses.replace(first, guess=12.5, made_at=102.0)
    store.save_guess(changed)  # the same session's second guess for the job replaces its first
    assert store.guesses() == [other, changed]
    assert store.guesses(since=101.5) == [changed]
    assert store.guesses(since=datetime.fromtimestamp(100.5, UTC)) == [other, changed]
    assert RunStore(store.path).guess("aaaaaaaaaaaa", "owner-1") == changed  # it survives a restart


@pytest.mark.parametrize("guess", [0.0, -2.0, math.nan, math.inf])
def test_a_guess_that_is_no_positive_number_is_refused(store, guess):
    with pytest.raises(StoreError, match="positive number of times faster"):
        store.save_guess(GuessRecord("aaaaaaaaaaaa", "owner-1", "gpu_vs_cpu", guess, made_at=1.0))
    assert store.guesses() == []


def test_version_2_file_gets_the_guesses_table_and_keeps_runs_and_jobs(tmp_path):
    path = tmp_path / "v2.sqlite"
    old = RunStore(path)
    run_id = old.record(SPEC, make_run(), job_id="aaaaaaaaaaaa")
    old.save_job(make_job("aaaaaaaaaaaa"))
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:  # back to version 2's schema
        connection.execute("DROP TABLE guesses")
        for column in VERSION_4_COLUMNS:
            connection.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        connection.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    store = RunStore(path)

    assert store.schema_version() == SCHEMA_VERSION == 4
    assert store.get(run_id).run == make_run()
    assert [job.job_id for job in store.jobs()] == ["aaaaaaaaaaaa"]
    assert store.guesses() == []
    store.save_guess(GuessRecord("aaaaaaaaaaaa", "owner-1", "batch_1024_vs_32", 3.0, made_at=1.0))
    assert [guess.guess for guess in RunStore(path).guesses()] == [3.0]


def test_version_3_file_gets_the_time_to_accuracy_and_energy_columns_from_its_results(tmp_path):
    path = tmp_path / "v3.sqlite"
    old = RunStore(path)
    measured = make_run()
    measured.set_target(0.85, [0.8, 0.86, 0.9])
    measured.set_energy({"energy_method": "rapl", "energy_j": 120.0, "energy_above_idle_j": 70.0, "idle_w": 12.5})
    measured_id = old.record(SPEC, measured, job_id="aaaaaaaaaaaa")
    plain_id = old.record(SPEC, make_run("gpu:0"), job_id="aaaaaaaaaaaa")
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:  # back to version 3's schema
        for column in VERSION_4_COLUMNS:
            connection.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        connection.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")

    store = RunStore(path)

    assert store.schema_version() == SCHEMA_VERSION == 4
    rows = store.runs().set_index("id")
    assert rows.loc[measured_id, "time_to_target_s"] == pytest.approx(3.0)  # epochs 1 and 2: 2.0 + 1.0 s
    assert rows.loc[measured_id, "target_accuracy"] == 0.85 and rows.loc[measured_id, "energy_method"] == "rapl"
    assert rows.loc[measured_id, "energy_j"] == 120.0 and rows.loc[measured_id, "energy_above_idle_j"] == 70.0
    assert pd.isna(rows.loc[plain_id, "energy_j"]) and rows.loc[plain_id, "energy_method"] == ""
    assert store.get(measured_id).run == measured
    csv = store.to_csv_bytes().decode()
    assert "time_to_target_s" in csv.splitlines()[0] and "energy_j" in csv.splitlines()[0]


def test_the_latest_sweep_is_the_newest_finished_job_with_batch_sizes(store):
    def job(job_id: str, submitted_at: float, state: JobState, batch_sizes: tuple[int, ...] = ()) -> JobRecord:
        record = make_job(job_id, submitted_at=submitted_at, state=state)
        return dataclasses.replace(record, request=dataclasses.replace(record.request, batch_sizes=batch_sizes))

    assert store.latest_sweep_id() is None
    store.save_job(job("oldsweep0000", 1_000.0, JobState.DONE, (32, 64)))
    store.save_job(job("training0000", 2_000.0, JobState.DONE))  # newer, but not a sweep
    store.save_job(job("failsweep000", 3_000.0, JobState.FAILED, (32, 64)))  # newer, but did not finish
    store.save_job(job("runsweep0000", 4_000.0, JobState.RUNNING, (32, 64)))
    assert store.latest_sweep_id() == "oldsweep0000"

    store.update_job("runsweep0000", state=JobState.DONE)
    assert store.latest_sweep_id() == "runsweep0000"
