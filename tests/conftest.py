"""Shared pytest fixtures and test-wide settings."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest is read by every test: Streamlit is imported only by the tests that open a page
    from streamlit.testing.v1 import AppTest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# Quiet TensorFlow's C++ logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every job runner starts a warm spare worker (Keras imported, hundreds of MB); page tests make one runner per
# test database, so spares are off unless a test asks for them (the worker-pool and runner tests do).
os.environ.setdefault("GPUX_WARM_WORKER", "0")
# Tests set the devices they need and never read the host's: the suite sees no GPU, on a GPU machine too.
# CUDA_VISIBLE_DEVICES="" hides the GPUs from the NVML probe, TensorFlow and CUDA (and from every worker the tests
# start, which inherit it); JAX_PLATFORMS keeps JAX on its CPU. Tests of GPU paths fake their GPUs.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["JAX_PLATFORMS"] = "cpu"

# `python ...` arguments that run the scaling benchmark as the GPU machine does: TensorFlow, Streamlit and Altair
# unimportable (tests/helpers/gpu_machine.py).
SCALING_BENCHMARK = ["-m", "tests.helpers.gpu_machine", "benchmarks/scaling.py"]


def subprocess_env(**settings: str) -> dict[str, str]:
    """This process's environment plus `settings`, with the repository first on PYTHONPATH.

    Entries already on PYTHONPATH stay after it: on the GPU machine the packages come through PYTHONPATH.
    """
    pythonpath = os.pathsep.join(path for path in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if path)
    return {**os.environ, **settings, "PYTHONPATH": pythonpath}


def run_on_two_host_devices(args: list[str], backend: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """Runs `python ARGS` from the repository root with a Keras backend, JAX showing two CPU devices.

    TensorFlow's two logical CPU devices are set up by the code under test itself; JAX reads the
    device count from XLA_FLAGS when it starts, so it must be set before the process begins.
    """
    env = subprocess_env(
        KERAS_BACKEND=backend,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )


def process_alive(pid: int) -> bool:
    """Tells whether a process is still running; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone: ENOENT, or ESRCH while it is being reaped
        return False


def wait_until(condition: Callable[[], object], timeout_s: float, what: str = "condition") -> object:
    """Polls `condition` every 50 ms until it returns something true (returned), failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"Timed out waiting for {what}.")


@pytest.fixture
def runs_db(tmp_path, monkeypatch) -> pathlib.Path:
    """Points the run store at a fresh SQLite file for one test."""
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("GPUX_RUNS_DB", str(path))
    return path


def open_app_page(page: str, spec: Any = None, query: dict[str, str] | None = None) -> AppTest:
    """Opens one page of the app in AppTest, after a link's query (`query`) and a session's model (`spec`).

    Args:
        page: The page's file name in app_pages/, without ".py": "train", "sweep".
        spec: A `lib.spec.ModelSpec` the session builds, or None for the link's (or the default) model.
        query: The link's query parameters.

    Returns:
        The app after its first run on that page, which raised nothing.
    """
    from streamlit.testing.v1 import AppTest

    from ui.keys import Key

    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    if spec is not None:
        at.session_state[Key.MODEL_SPEC] = spec
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    return at


@pytest.fixture
def fake_jobs(runs_db, monkeypatch):
    """Page tests' jobs run by the tests' worker (hooks honoured), cold; no background Keras; the runner ends.

    The worker is tests/helpers/fake_worker.py; the server's runner is shut down after the test.
    """
    import lib.executor
    from tests.helpers.fake_worker import FAKE_WORKER_COMMAND
    from ui import runtime

    monkeypatch.setattr(lib.executor, "DEFAULT_WORKER_COMMAND", FAKE_WORKER_COMMAND)
    monkeypatch.setenv("GPUX_WARM_WORKER", "0")
    monkeypatch.setenv("GPUX_WARMUP", "0")
    yield runs_db
    runtime.runner().shutdown()


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> pathlib.Path:
    """Gives Keras a fresh, empty home (its dataset cache) for one test, so tests never touch ~/.keras.

    Keras reads $KERAS_HOME once, when imported, so the fixture imports Keras first and then points both
    the variable and Keras' own setting at the temporary folder.
    """
    import keras.src.backend.config as keras_config

    home = tmp_path / "keras_home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home


@pytest.fixture
def network_attempts(monkeypatch) -> list[str]:
    """Refuses every outgoing network connection (as an OSError) and records the attempts.

    Assert the returned list is empty to prove a test never touched the network.
    """
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture(scope="session")
def ray_cluster():
    """A Ray head and two training nodes (machine-1, machine-2) on this machine, for the whole session.

    Started only when a test asks for it, stopped after the last test; a node is called dead about 3 s after it
    goes silent (a test kills one).
    """
    from lib.local_cluster import start_local_cluster

    cluster = start_local_cluster(("machine-1", "machine-2"), fast_health_check=True)
    RUNNING_CLUSTERS.append(cluster)
    yield cluster
    RUNNING_CLUSTERS.remove(cluster)
    cluster.stop()


RUNNING_CLUSTERS: list = []  # the session's local Ray cluster while it runs, for the reports of failed tests


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A cluster test (its id names Ray or a cluster) that fails reports the cluster's last jobs and node errors.

    First among the report's sections, before the captured output, so it survives a shortened CI log.
    """
    outcome = yield
    report = outcome.get_result()
    about_the_cluster = any(word in item.nodeid for word in ("ray", "cluster"))
    if report.when == "call" and report.failed and RUNNING_CLUSTERS and about_the_cluster:
        from tests.helpers.ray_report import cluster_report

        report.sections.insert(0, ("Ray cluster: last jobs and node errors", cluster_report(RUNNING_CLUSTERS[0])))


def stop_cluster_jobs(address: str, timeout_s: float = 60) -> None:
    """Stops every job still pending or running on the cluster and waits until they have ended."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    active = ("PENDING", "RUNNING")
    for job in client.list_jobs():
        if str(job.status) in active and job.submission_id:
            client.stop_job(job.submission_id)
    wait_until(
        lambda: not any(str(job.status) in active for job in client.list_jobs()), timeout_s, "the cluster's jobs to end"
    )
