"""The run history: every timed run on every device, kept in an embedded SQLite database.

`RunStore` is what the CLI (`lib.bench`), the job runner and the Results page share. One row per
device run holds the spec and the `DeviceRun` as JSON, plus flat columns (steady epoch time, samples/s,
test accuracy, ...) for quick filtering. `runs()` gives a pandas DataFrame with the JSON decoded back
(lists such as `epoch_s` stay lists); `export_csv` / `export_json` / `to_csv_bytes` write it out, with a
`data` column ("real" or "generated") and no accuracy for generated data, whose labels are random.

The same file holds the durable job queue: the `jobs` table keeps every job the runner accepted as a
`lib.jobs.JobRecord` (`save_job`, `update_job`), so a restarted server finds the queued and running ones
again (`unfinished_jobs`) in the order they were submitted. The `guesses` table keeps the speedups students
guessed before their runs (`lib.guesses.GuessRecord`; `save_guess`, `guess`, `guesses`), one per job and session.

The database is in WAL mode with a busy timeout, every write is one `BEGIN IMMEDIATE` transaction and
every call opens its own connection, so threads and several processes can write at once. The schema is
versioned in a `meta` table; an older file is migrated on open, a newer one is refused.

Location: the `path` argument, else the `GPUX_RUNS_DB` environment variable, else `runs/runs.sqlite`
under the repository root.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pathlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import IO, Any

import pandas as pd

from lib.comparison import ACCURACY_FIELDS, GENERATED_DATA, data_label
from lib.device_run import STATUSES, DeviceRun
from lib.guesses import GuessRecord
from lib.hardware import machine_name
from lib.jobs import JobRecord, JobRequest, JobState
from lib.spec import SPEC_FIELDS, ModelSpec, SpecError, count_params

DB_ENV_VAR = "GPUX_RUNS_DB"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = REPO_ROOT / "runs" / "runs.sqlite"
SCHEMA_VERSION = 4  # 2: the jobs table (the durable queue); 3: the guesses table; 4: time to accuracy, energy
STORE_STATUSES = (*STATUSES, "running")  # "running": a job runner's row before its result arrives
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another writer's lock

_CREATE_RUNS = """
CREATE TABLE IF NOT EXISTS runs (
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
    test_accuracy REAL,
    target_accuracy REAL,
    time_to_target_s REAL,
    energy_method TEXT NOT NULL DEFAULT '',
    energy_j REAL,
    energy_above_idle_j REAL
)
"""
# Version 4's columns: a run's time to accuracy and energy, also in its result JSON (the migration copies them).
_FIGURE_COLUMNS = {
    "target_accuracy": "REAL",
    "time_to_target_s": "REAL",
    "energy_method": "TEXT NOT NULL DEFAULT ''",
    "energy_j": "REAL",
    "energy_above_idle_j": "REAL",
}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS runs_job_id ON runs (job_id)",
    "CREATE INDEX IF NOT EXISTS runs_created_at ON runs (created_at)",
)
# seq: submission order, assigned here (AUTOINCREMENT never reuses a number) unless the record gives one.
# Times are time.time() seconds; owners_json and request_json hold JobRecord.owners and JobRequest.to_dict().
_CREATE_JOBS = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    submitted_at REAL NOT NULL,
    state TEXT NOT NULL,
    client TEXT NOT NULL,
    owners_json TEXT NOT NULL,
    preset TEXT,
    request_json TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT NOT NULL DEFAULT ''
)
"""
_JOB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state)",
    "CREATE INDEX IF NOT EXISTS jobs_submitted_at ON jobs (submitted_at)",
)
UNFINISHED_JOB_STATES = (JobState.QUEUED.value, JobState.RUNNING.value)
# One guess per job and browser session (lib.guesses.GuessRecord); made_at is time.time() seconds.
_CREATE_GUESSES = """
CREATE TABLE IF NOT EXISTS guesses (
    job_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    question TEXT NOT NULL,
    guess REAL NOT NULL,
    made_at REAL NOT NULL,
    PRIMARY KEY (job_id, owner)
)
"""
_GUESS_INDEXES = ("CREATE INDEX IF NOT EXISTS guesses_made_at ON guesses (made_at)",)

# Spec fields with a column of their own in the runs table (`SpecField.column`: a new one needs a migration);
# the runs frame flattens every other field from the spec JSON, except `extra` (free-form notes).
_ROW_SPEC_FIELDS = tuple(spec_field.name for spec_field in SPEC_FIELDS if spec_field.column)
_UNFLATTENED_SPEC_FIELDS = ("extra",)
_DTYPE_OF_DEFAULT = {bool: "bool", int: "int64", float: "float64", str: "str"}


def _spec_defaults() -> dict[str, Any]:
    """Every ModelSpec field the runs frame flattens into a column, with its default (for older rows)."""
    defaults = {}
    for spec_field in fields(ModelSpec):
        if spec_field.name in _ROW_SPEC_FIELDS + _UNFLATTENED_SPEC_FIELDS:
            continue
        factory = spec_field.default_factory
        defaults[spec_field.name] = factory() if spec_field.default is MISSING else spec_field.default
    return defaults


_SPEC_DEFAULTS = _spec_defaults()

# Columns of the `runs()` DataFrame, in order, with their pandas dtypes.
RUN_COLUMNS: dict[str, str] = {
    "id": "int64",
    "job_id": "str",
    "created_at": "datetime64[ns, UTC]",
    "started_at": "datetime64[ns, UTC]",
    "status": "str",
    "preset": "str",
    "dataset": "str",
    "device": "str",
    "backend": "str",
    "synthetic": "bool",
    "error": "str",
    "params": "Int64",
    "num_train": "int64",
    "num_test": "int64",
    "batch_size": "int64",
    "epochs": "int64",
    "first_epoch_s": "float64",
    "steady_epoch_s": "float64",
    "total_s": "float64",
    "samples_per_s": "float64",
    "achieved_flops_per_s": "float64",
    "test_loss": "float64",
    "test_accuracy": "float64",
    "target_accuracy": "float64",  # time to accuracy: the target test accuracy (NaN: none)
    "time_to_target_s": "float64",  # seconds of epochs up to the one that reached it (NaN: not reached)
    "energy_method": "str",  # how the energy was measured ("rapl", ...), "not measured", or "" (older runs)
    "energy_j": "float64",  # joules of the run's epochs (NaN: not measured)
    "energy_above_idle_j": "float64",  # energy_j less the idle power over the same time
    "epoch_s": "object",  # list of seconds per finished epoch
    "train_loss": "object",  # list, per epoch
    "train_accuracy": "object",  # list, per epoch
    # Every other ModelSpec field, in its order ("hidden_units" is a list of units per hidden layer).
    **{name: _DTYPE_OF_DEFAULT.get(type(default), "object") for name, default in _SPEC_DEFAULTS.items()},
    "spec": "object",  # ModelSpec.to_dict()
    "result": "object",  # DeviceRun.to_dict()
    "hardware": "object",  # lib.hardware.describe_hardware()
    "versions": "object",  # library versions
}
# The exports add `data` ("real" or "generated") after `synthetic`; a generated run's accuracy is left empty.
EXPORT_COLUMNS = tuple(
    name for column in RUN_COLUMNS for name in ((column, "data") if column == "synthetic" else (column,))
)
_RESULT_COLUMNS = ("num_test", "test_loss", "epoch_s", "train_loss", "train_accuracy")
_DATETIME_COLUMNS = ("created_at", "started_at")
_FILTER_COLUMNS = ("status", "dataset", "device", "backend", "preset", "job_id")


class StoreError(RuntimeError):
    """The run database cannot be opened, read or written; the message says why and what to do."""


class RunNotFoundError(StoreError):
    """No stored run has the requested id."""


class JobRecordNotFoundError(StoreError):
    """No stored job has the requested id."""


@dataclass
class StoredRun:
    """One stored run, decoded: the spec and the `DeviceRun` as objects again."""

    id: int  # row id, increasing in insertion order
    created_at: str  # ISO 8601 UTC, when the row was written
    started_at: str | None  # ISO 8601 UTC, when training started (None when unknown)
    status: str  # one of STORE_STATUSES
    preset: str | None  # preset name the spec came from, if any
    job_id: str | None  # job runner's id, if the run came from a job
    spec: ModelSpec
    run: DeviceRun  # status and error match the row's
    params: int | None  # trainable parameters
    hardware: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)


def default_db_path(environ: dict[str, str] | None = None) -> pathlib.Path:
    """Returns where the run database lives when no path is given.

    Args:
        environ: The environment to read; `os.environ` when None.

    Returns:
        `$GPUX_RUNS_DB` when set, else `runs/runs.sqlite` under the repository root.
    """
    env = os.environ if environ is None else environ
    raw = env.get(DB_ENV_VAR, "").strip()
    return pathlib.Path(raw).expanduser() if raw else DEFAULT_DB_PATH


def utc_now_iso() -> str:
    """Returns the current time as an ISO 8601 UTC string with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def json_ready(value: Any) -> Any:
    """Returns `value` with non-finite floats (NaN, inf) replaced by None, so it is strict JSON.

    Args:
        value: Plain data: dicts, lists, tuples, numbers, strings, None.

    Returns:
        The same structure; tuples become lists.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def stored_dict(value: Any) -> dict[str, Any]:
    """Returns a stored spec or result (a `runs()` frame's `spec` or `result` cell) as a dict.

    Args:
        value: The cell: already decoded (a dict), JSON text as in the database, or missing (None, "", NaN).
    """
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        return json.loads(value)
    return {}


class RunStore:
    """The run history in one SQLite file; safe to share between threads and processes.

    Args:
        path: The database file; `default_db_path()` when None. Its folder is created.
        busy_timeout_s: How long a write waits for another writer before failing.

    Raises:
        StoreError: The file cannot be created or opened, is not a database, or was written by a
            newer version of this app.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = pathlib.Path(path).expanduser() if path is not None else default_db_path()
        if str(self.path) == ":memory:":
            raise StoreError("RunStore needs a file (each call opens its own connection); give a file path.")
        self.busy_timeout_s = busy_timeout_s
        self._create_folder()
        self._initialise()

    # --- writing ---

    def record(
        self,
        spec: ModelSpec,
        run: DeviceRun,
        *,
        preset: str | None = None,
        job_id: str | None = None,
        started_at: str | datetime | None = None,
        hardware: dict[str, Any] | None = None,
        versions: dict[str, Any] | None = None,
        params: int | None = None,
    ) -> int:
        """Stores one device run (done, failed, or "running" for a job in progress).

        Args:
            spec: What was trained.
            run: The result; its `status` becomes the row's status.
            preset: The preset name the spec came from, if any.
            job_id: The job runner's id, if any.
            started_at: When training started (datetime or ISO string); None when unknown.
            hardware: `lib.hardware.describe_hardware()` of the machine.
            versions: Library versions (`lib.backend.library_versions()`).
            params: Trainable parameters; computed from the spec when None.

        Returns:
            The new run's id.

        Raises:
            StoreError: Unknown status, or the database cannot be written.
        """
        _check_status(run.status)
        row = {
            "job_id": job_id,
            "created_at": utc_now_iso(),
            "started_at": _iso_or_none(started_at),
            "preset": preset,
            "device": run.device,
            "backend": run.backend,
            "synthetic": int(bool(run.synthetic)),
            "spec_json": json.dumps(spec.to_dict()),
            "versions_json": json.dumps(versions or {}),
            "hardware_json": json.dumps(hardware or {}),
            "params": params if params is not None else _count_params(spec),
            **{name: getattr(spec, name) for name in _ROW_SPEC_FIELDS},
            **_result_columns(run),
        }
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._write() as connection:
            cursor = connection.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", tuple(row.values()))
            return int(cursor.lastrowid)

    def update_status(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        run: DeviceRun | None = None,
        hardware: dict[str, Any] | None = None,
        versions: dict[str, str] | None = None,
    ) -> None:
        """Changes a stored run's status, and its result when a finished `DeviceRun` is given.

        Args:
            run_id: The run to change.
            status: The new status, one of STORE_STATUSES.
            error: The readable reason; taken from `run` when None and `run` is given.
            run: The finished result, replacing the stored one (timings, metrics, device, backend).
            hardware: The machine it ran on (`lib.hardware.describe_hardware()`), replacing the stored one.
            versions: The libraries it ran with (`lib.backend.library_versions()`), replacing the stored ones.

        Raises:
            RunNotFoundError: No run has this id.
            StoreError: Unknown status, or the database cannot be written.
        """
        _check_status(status)
        values: dict[str, Any] = {}
        if run is not None:
            values.update(_result_columns(run), device=run.device, backend=run.backend, synthetic=int(run.synthetic))
        if hardware:
            values["hardware_json"] = json.dumps(hardware)
        if versions:
            values["versions_json"] = json.dumps(versions)
        values["status"] = status
        if error is not None:
            values["error"] = error
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write() as connection:
            cursor = connection.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id))
            if cursor.rowcount == 0:
                raise RunNotFoundError(f"No stored run has id {run_id}.")

    def interrupt_running(
        self, error: str = "The server stopped while this run was in progress.", keep_jobs: Sequence[str] = ()
    ) -> int:
        """Marks every run still "running" as "interrupted" (call once when a job runner starts).

        Args:
            error: The reason stored with each interrupted run.
            keep_jobs: Jobs whose runs stay "running": they go on on a cluster, and the runner reattaches.

        Returns:
            How many runs were marked.
        """
        with self._write() as connection:
            cursor = connection.execute(
                "UPDATE runs SET status = 'interrupted', error = ? WHERE status = 'running' AND "
                f"(job_id IS NULL OR job_id NOT IN ({', '.join('?' * len(keep_jobs))}))",
                (error, *keep_jobs),
            )
            return cursor.rowcount

    # --- the durable job queue ---

    def save_job(self, record: JobRecord) -> int:
        """Stores a job, or replaces the stored job with the same id (its `seq` is kept unless given).

        Args:
            record: The job; a `seq` of 0 (or None) lets the store give the next number in submission order.

        Returns:
            The job's `seq`.

        Raises:
            StoreError: Another job already has the given `seq`, or the database cannot be written.
        """
        row = _job_row(record)
        with self._write() as connection:
            stored = connection.execute("SELECT seq FROM jobs WHERE job_id = ?", (record.job_id,)).fetchone()
            if stored is not None:
                row["seq"] = row["seq"] or stored["seq"]
                assignments = ", ".join(f"{name} = ?" for name in row)
                connection.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*row.values(), record.job_id))
                return int(row["seq"])
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            cursor = connection.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(row.values()))
            return int(row["seq"] or cursor.lastrowid)

    def update_job(
        self,
        job_id: str,
        *,
        state: JobState | str | None = None,
        owners: Sequence[str] | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        error: str | None = None,
    ) -> None:
        """Changes the given fields of a stored job; None leaves a field as it is.

        Args:
            job_id: The job to change.
            state: Its new state.
            owners: The browser sessions it now serves.
            started_at: When its worker started (`time.time()` seconds).
            finished_at: When it reached a final state.
            error: The readable reason it did not finish.

        Raises:
            JobRecordNotFoundError: No stored job has this id.
            StoreError: Unknown state, or the database cannot be written.
        """
        values: dict[str, Any] = {"started_at": started_at, "finished_at": finished_at, "error": error}
        if state is not None:
            values["state"] = _job_state(state).value
        if owners is not None:
            values["owners_json"] = json.dumps(list(owners))
        values = {name: value for name, value in values.items() if value is not None}
        with self._write() as connection:
            if values:
                assignments = ", ".join(f"{name} = ?" for name in values)
                sql = f"UPDATE jobs SET {assignments} WHERE job_id = ?"
                found = connection.execute(sql, (*values.values(), job_id)).rowcount
            else:
                found = connection.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone() is not None
            if not found:
                raise JobRecordNotFoundError(f"No stored job has id {job_id}.")

    def unfinished_jobs(self) -> list[JobRecord]:
        """Returns the queued and running jobs in submission order (`seq`), for a restarted runner."""
        marks = ", ".join("?" for _ in UNFINISHED_JOB_STATES)
        return self._job_records(f"WHERE state IN ({marks})", list(UNFINISHED_JOB_STATES))

    def jobs(self, since: datetime | float | None = None) -> list[JobRecord]:
        """Returns stored jobs in submission order.

        Args:
            since: Only jobs submitted at or after this time (a datetime, naive meaning UTC, or
                `time.time()` seconds); all jobs when None.
        """
        if since is None:
            return self._job_records("", [])
        return self._job_records("WHERE submitted_at >= ?", [_epoch_seconds(since)])

    def latest_sweep_id(self) -> str | None:
        """The id of the newest finished sweep (a job with batch sizes, `JobRequest.is_sweep`), or None.

        One query, its rows read by SQLite's JSON functions: no job is decoded, whatever the server's history.
        """
        with self._read() as connection:
            row = connection.execute(
                "SELECT job_id FROM jobs WHERE state = ? AND json_array_length(request_json, '$.batch_sizes') > 0 "
                "ORDER BY submitted_at DESC, seq DESC LIMIT 1",
                [JobState.DONE.value],
            ).fetchone()
        return row["job_id"] if row else None

    def job(self, job_id: str) -> JobRecord | None:
        """Returns the stored job with this id, or None."""
        records = self._job_records("WHERE job_id = ?", [job_id])
        return records[0] if records else None

    # --- guesses (predict, then reveal) ---

    def save_guess(self, record: GuessRecord) -> None:
        """Stores a session's guess for a job, replacing the one it made for that job before.

        Args:
            record: The guess; its range is `lib.guesses.parse_guess`'s to check.

        Raises:
            StoreError: The guess is not a positive number, or the database cannot be written.
        """
        if not (isinstance(record.guess, int | float) and math.isfinite(record.guess) and record.guess > 0):
            raise StoreError(f"A guess is a positive number of times faster, not {record.guess!r}.")
        row = (record.job_id, record.owner, record.question, float(record.guess), float(record.made_at))
        with self._write() as connection:
            connection.execute(
                "INSERT INTO guesses (job_id, owner, question, guess, made_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, owner) DO UPDATE SET question = excluded.question, guess = excluded.guess, "
                "made_at = excluded.made_at",
                row,
            )

    def guess(self, job_id: str, owner: str) -> GuessRecord | None:
        """Returns the guess one session made for one job, or None."""
        records = self._guess_records("WHERE job_id = ? AND owner = ?", [job_id, owner])
        return records[0] if records else None

    def guesses(self, since: datetime | float | None = None) -> list[GuessRecord]:
        """Returns stored guesses, oldest first.

        Args:
            since: Only guesses made at or after this time (a datetime, naive meaning UTC, or `time.time()`
                seconds); all guesses when None.
        """
        if since is None:
            return self._guess_records("", [])
        return self._guess_records("WHERE made_at >= ?", [_epoch_seconds(since)])

    # --- reading ---

    def runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        dataset: str | Sequence[str] | None = None,
        device: str | Sequence[str] | None = None,
        backend: str | Sequence[str] | None = None,
        preset: str | Sequence[str] | None = None,
        job_id: str | Sequence[str] | None = None,
        synthetic: bool | None = None,
        since: str | datetime | None = None,
        limit: int | None = None,
        machine: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Returns stored runs as a DataFrame, oldest first, one row per device run.

        Each filter keeps rows whose column equals the value (or any value of a list); None keeps all.

        Args:
            status: Run status(es).
            dataset: Dataset name(s).
            device: Device name(s), "cpu:0", "gpu:0".
            backend: Keras backend name(s).
            preset: Preset name(s).
            job_id: Job id(s).
            synthetic: True for generated-data runs only, False for real-data runs only.
            since: Only runs created at or after this time (datetime or ISO string).
            limit: Only the most recent `limit` runs.
            machine: Machine name(s) as `lib.hardware.machine_name` gives them ("machine-1", a host name,
                "this server" for runs stored without one).

        Returns:
            Columns and dtypes as in `RUN_COLUMNS`; an empty frame with those columns when nothing matches.
        """
        filters = {
            "status": status,
            "dataset": dataset,
            "device": device,
            "backend": backend,
            "preset": preset,
            "job_id": job_id,
        }
        records = self._records(filters, synthetic=synthetic, since=since, limit=limit, machine=machine)
        return _records_frame(records)

    def get(self, run_id: int) -> StoredRun:
        """Returns one stored run, decoded.

        Raises:
            RunNotFoundError: No run has this id.
        """
        with self._read() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No stored run has id {run_id}.")
        result = DeviceRun.from_dict(json.loads(row["result_json"]))
        result.status = row["status"]
        result.error = row["error"]
        return StoredRun(
            id=row["id"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            status=row["status"],
            preset=row["preset"],
            job_id=row["job_id"],
            spec=ModelSpec.from_dict(json.loads(row["spec_json"])),
            run=result,
            params=row["params"],
            hardware=json.loads(row["hardware_json"]),
            versions=json.loads(row["versions_json"]),
        )

    def count(self) -> int:
        """Returns how many runs are stored."""
        with self._read() as connection:
            return int(connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def schema_version(self) -> int:
        """Returns the schema version recorded in the database file."""
        with self._read() as connection:
            return _read_schema_version(connection) or 0

    # --- export ---

    def export_csv(self, target: str | os.PathLike[str] | IO[str], **filters: Any) -> None:
        """Writes runs as CSV (`EXPORT_COLUMNS`): lists and dicts as JSON text, times as ISO 8601 UTC.

        A `data` column says "real" or "generated". Generated data has random labels, so a generated run's
        accuracy (`test_accuracy`, `train_accuracy`, and the same inside `result`) is left empty.

        Args:
            target: A file path or a text buffer.
            **filters: The filters of `runs()`.
        """
        _csv_frame(self.runs(**filters)).to_csv(target, index=False)

    def to_csv_bytes(self, **filters: Any) -> bytes:
        """Returns the CSV of `export_csv` as UTF-8 bytes (for a download button)."""
        buffer = io.StringIO()
        self.export_csv(buffer, **filters)
        return buffer.getvalue().encode("utf-8")

    def export_json(self, target: str | os.PathLike[str] | IO[str], **filters: Any) -> None:
        """Writes runs as a JSON array of objects (`EXPORT_COLUMNS`; NaN becomes null).

        As in `export_csv`, `data` says "real" or "generated" and a generated run's accuracy is null.

        Args:
            target: A file path or a text buffer.
            **filters: The filters of `runs()`.
        """
        frame_filters = {key: filters.pop(key) for key in ("synthetic", "since", "limit", "machine") if key in filters}
        records = [_export_record(record) for record in self._records(filters, **frame_filters)]
        text = json.dumps(json_ready(records), indent=2)
        if hasattr(target, "write"):
            target.write(text)
            return
        try:
            pathlib.Path(target).write_text(text, encoding="utf-8")
        except OSError as error:
            raise StoreError(f"Cannot write {target}: {error.strerror}; choose a writable path.") from error

    # --- internals ---

    def _create_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"Cannot create the folder for the run database {self.path}: {error.strerror}. "
                f"Set {DB_ENV_VAR} (or --db) to a writable path."
            ) from error

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as error:
            raise self._store_error(error) from error
        return connection

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        connection = self._connect()
        try:
            yield connection
        except sqlite3.Error as error:
            raise self._store_error(error) from error
        finally:
            connection.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE takes the write lock up front, so it never deadlocks on upgrade."""
        with self._read() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _initialise(self) -> None:
        with self._read() as connection:
            _enable_wal(connection)
        with self._write() as connection:
            version = _read_schema_version(connection)
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"The run database {self.path} has schema version {version}, newer than this app's "
                    f"{SCHEMA_VERSION}. Update the app, or set {DB_ENV_VAR} (or --db) to another file."
                )
            if version is None:
                _create_schema(connection)
                return
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](connection)
            connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _records(
        self,
        filters: dict[str, str | Sequence[str] | None],
        *,
        synthetic: bool | None = None,
        since: str | datetime | None = None,
        limit: int | None = None,
        machine: str | Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        unknown = set(filters) - set(_FILTER_COLUMNS)
        if unknown:
            raise TypeError(f"Unknown run filter(s): {', '.join(sorted(unknown))}.")
        clauses, values = _where(filters, synthetic=synthetic, since=since)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id DESC"
        if limit is not None and machine is None:
            sql += " LIMIT ?"
            values.append(int(limit))
        with self._read() as connection:
            rows = connection.execute(sql, values).fetchall()
        records = [_decode_row(row) for row in reversed(rows)]
        if machine is None:
            return records
        # The machine's name comes from the stored hardware JSON (a node or host name), so it is matched here.
        wanted = {machine} if isinstance(machine, str) else set(machine)
        records = [record for record in records if machine_name(record["hardware"]) in wanted]
        return records if limit is None else records[max(len(records) - int(limit), 0) :]

    def _job_records(self, where: str, values: list[Any]) -> list[JobRecord]:
        with self._read() as connection:
            rows = connection.execute(f"SELECT * FROM jobs {where} ORDER BY seq", values).fetchall()
        return [_decode_job(row) for row in rows]

    def _guess_records(self, where: str, values: list[Any]) -> list[GuessRecord]:
        with self._read() as connection:
            rows = connection.execute(f"SELECT * FROM guesses {where} ORDER BY made_at", values).fetchall()
        return [
            GuessRecord(
                job_id=row["job_id"],
                owner=row["owner"],
                question=row["question"],
                guess=float(row["guess"]),
                made_at=float(row["made_at"]),
            )
            for row in rows
        ]

    def _store_error(self, error: sqlite3.Error) -> StoreError:
        message = str(error)
        if isinstance(error, sqlite3.DatabaseError) and "not a database" in message:
            return StoreError(
                f"{self.path} is not a readable run database ({message}): it may be corrupt. "
                f"Move it away, or set {DB_ENV_VAR} (or --db) to another file."
            )
        if "unable to open" in message or "readonly" in message:
            return StoreError(
                f"Cannot open the run database {self.path} for writing ({message}). "
                f"Set {DB_ENV_VAR} (or --db) to a writable path."
            )
        return StoreError(f"Run database {self.path}: {message}.")


def _enable_wal(connection: sqlite3.Connection, attempts: int = 50) -> None:
    """Switches to WAL; retried because the switch can fail fast with 'locked' while others open the file."""
    for attempt in range(attempts):
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _read_schema_version(connection: sqlite3.Connection) -> int | None:
    has_meta = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return None
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def _create_schema(connection: sqlite3.Connection) -> None:
    connection.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for statement in (_CREATE_RUNS, *_INDEXES, _CREATE_JOBS, *_JOB_INDEXES, _CREATE_GUESSES, *_GUESS_INDEXES):
        connection.execute(statement)
    connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def _add_jobs_table(connection: sqlite3.Connection) -> None:
    """Version 1 -> 2: the jobs table of the durable queue; the runs are kept as they are."""
    for statement in (_CREATE_JOBS, *_JOB_INDEXES):
        connection.execute(statement)


def _add_guesses_table(connection: sqlite3.Connection) -> None:
    """Version 2 -> 3: the guesses table (predict, then reveal); runs and jobs are kept as they are."""
    for statement in (_CREATE_GUESSES, *_GUESS_INDEXES):
        connection.execute(statement)


def _add_figure_columns(connection: sqlite3.Connection) -> None:
    """Version 3 -> 4: columns for time to accuracy and energy, filled from each run's result JSON.

    Runs stored before version 4 have none of these in their results: their columns stay empty ('' for
    `energy_method`), which the pages read as "not recorded" rather than "not measured".
    """
    for name, declaration in _FIGURE_COLUMNS.items():
        connection.execute(f"ALTER TABLE runs ADD COLUMN {name} {declaration}")
    assignments = ", ".join(
        f"{name} = COALESCE(json_extract(result_json, '$.{name}'), {_empty_value(declaration)})"
        for name, declaration in _FIGURE_COLUMNS.items()
    )
    connection.execute(f"UPDATE runs SET {assignments}")


def _empty_value(declaration: str) -> str:
    """What a migrated column holds when the run's result has no value: '' for text, NULL otherwise."""
    return "''" if declaration.startswith("TEXT") else "NULL"


# Migrations: MIGRATIONS[v] upgrades a version-v database to version v + 1 inside the open transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _add_jobs_table,
    2: _add_guesses_table,
    3: _add_figure_columns,
}


def _check_status(status: str) -> None:
    if status not in STORE_STATUSES:
        raise StoreError(f"Unknown run status {status!r}; use one of {', '.join(STORE_STATUSES)}.")


def _job_state(state: JobState | str) -> JobState:
    try:
        return JobState(state)
    except ValueError:
        known = ", ".join(item.value for item in JobState)
        raise StoreError(f"Unknown job state {state!r}; use one of {known}.") from None


def _epoch_seconds(moment: datetime | float) -> float:
    if not isinstance(moment, datetime):
        return float(moment)
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _job_row(record: JobRecord) -> dict[str, Any]:
    """A `JobRecord` as the jobs table's columns; seq None lets SQLite assign it."""
    return {
        "seq": record.seq or None,
        "job_id": record.job_id,
        "submitted_at": float(record.submitted_at),
        "state": _job_state(record.state).value,
        "client": record.client,
        "owners_json": json.dumps(list(record.owners)),
        "preset": record.preset,
        "request_json": json.dumps(json_ready(record.request.to_dict())),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "error": record.error,
    }


def _decode_job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        seq=int(row["seq"]),
        submitted_at=float(row["submitted_at"]),
        state=JobState(row["state"]),
        client=row["client"],
        owners=tuple(json.loads(row["owners_json"])),
        preset=row["preset"],
        request=JobRequest.from_dict(json.loads(row["request_json"])),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
    )


def _iso_or_none(moment: str | datetime | None) -> str | None:
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _count_params(spec: ModelSpec) -> int | None:
    """Trainable parameters of the spec, or None when the spec's dataset is unknown."""
    try:
        return int(count_params(spec))
    except SpecError:
        return None


def _result_columns(run: DeviceRun) -> dict[str, Any]:
    return {
        "status": run.status,
        "error": run.error,
        "result_json": json.dumps(run.to_dict()),
        "num_train": run.num_train,
        "first_epoch_s": run.first_epoch_s,
        "steady_epoch_s": run.steady_epoch_s,
        "total_s": run.total_s,
        "samples_per_s": run.samples_per_s,
        "achieved_flops_per_s": run.achieved_flops_per_s,
        "test_accuracy": run.test_accuracy,
        **{name: getattr(run, name) for name in _FIGURE_COLUMNS},
    }


def _where(
    filters: dict[str, str | Sequence[str] | None], *, synthetic: bool | None, since: str | datetime | None
) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    values: list[Any] = []
    for column, wanted in filters.items():
        if wanted is None:
            continue
        options = [wanted] if isinstance(wanted, str) else list(wanted)
        clauses.append(f"{column} IN ({', '.join('?' for _ in options)})")
        values.extend(options)
    if synthetic is not None:
        clauses.append("synthetic = ?")
        values.append(int(synthetic))
    if since is not None:
        clauses.append("created_at >= ?")
        values.append(_iso_or_none(since))
    return clauses, values


def _decode_row(row: sqlite3.Row) -> dict[str, Any]:
    """A row as plain JSON-ready data with the `RUN_COLUMNS` keys."""
    spec = json.loads(row["spec_json"])
    result = json.loads(row["result_json"])
    record = {
        "id": row["id"],
        "job_id": row["job_id"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "status": row["status"],
        "preset": row["preset"],
        "device": row["device"],
        "backend": row["backend"],
        "synthetic": bool(row["synthetic"]),
        "error": row["error"],
        "params": row["params"],
        "num_train": row["num_train"],
        **{name: row[name] for name in _ROW_SPEC_FIELDS},
        "first_epoch_s": row["first_epoch_s"],
        "steady_epoch_s": row["steady_epoch_s"],
        "total_s": row["total_s"],
        "samples_per_s": row["samples_per_s"],
        "achieved_flops_per_s": row["achieved_flops_per_s"],
        "test_accuracy": row["test_accuracy"],
        **{name: row[name] for name in _FIGURE_COLUMNS},
    }
    record.update({name: result.get(name) for name in _RESULT_COLUMNS})
    record.update({name: spec.get(name, default) for name, default in _SPEC_DEFAULTS.items()})
    record.update(
        spec=spec,
        result=result,
        hardware=json.loads(row["hardware_json"]),
        versions=json.loads(row["versions_json"]),
    )
    return {name: record[name] for name in RUN_COLUMNS}


def _records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))
    for column in _DATETIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    if frame.empty:
        return frame.astype(RUN_COLUMNS)
    frame["num_test"] = frame["num_test"].fillna(0)
    other = {name: dtype for name, dtype in RUN_COLUMNS.items() if name not in _DATETIME_COLUMNS}
    return frame.astype(other)


def _export_record(record: dict[str, Any]) -> dict[str, Any]:
    """One run as the exports write it: `data` after `synthetic`, and no accuracy for generated data."""
    generated = data_label(record["synthetic"]) == GENERATED_DATA
    out = {name: record[name] for name in RUN_COLUMNS}
    if generated:
        out.update(dict.fromkeys(ACCURACY_FIELDS), result={**out["result"], **dict.fromkeys(ACCURACY_FIELDS)})
    out["data"] = data_label(generated)
    return {name: out[name] for name in EXPORT_COLUMNS}


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs frame as the CSV writes it: `_export_record`'s columns and blanks, JSON cells, ISO times."""
    out = frame.copy()
    generated = out["synthetic"].astype(bool)
    out.insert(out.columns.get_loc("synthetic") + 1, "data", generated.map(data_label))
    for name in ACCURACY_FIELDS:
        out[name] = out[name].astype(object).where(~generated, None)
    out["result"] = [
        {**result, **dict.fromkeys(ACCURACY_FIELDS)} if is_generated else result
        for is_generated, result in zip(generated, out["result"], strict=True)
    ]
    for column, dtype in RUN_COLUMNS.items():
        if dtype == "object":
            out[column] = [json.dumps(json_ready(value)) for value in out[column]]
    for column in _DATETIME_COLUMNS:
        out[column] = [value.isoformat() if not pd.isna(value) else "" for value in out[column]]
    return out
