"""Tests of lib.backend: which Keras backend is used, and library versions, without heavy imports."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys

import pytest

from lib import backend
from lib.backend import (
    BackendUnavailableError,
    backend_name,
    import_backend_module,
    keras_config_path,
    keras_home_rule,
    library_versions,
    take_gpu_memory_on_demand,
)
from tests.conftest import REPO_ROOT


def run_report(name: str, **env: str) -> str:
    """Runs tests/helpers/fresh_reports.py's report `name` in a fresh interpreter; returns its last output line."""
    environ = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "KERAS_HOME")}
    environ.update(env)
    command = [sys.executable, "-m", "tests.helpers.fresh_reports", name]
    result = subprocess.run(command, cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_env_variable_chooses_backend_without_importing_keras(tmp_path):
    name, _, imported = json.loads(run_report("backend", KERAS_BACKEND="jax", KERAS_HOME=str(tmp_path)))
    assert name == "jax"
    assert imported == []


def test_keras_json_chooses_backend_when_env_unset(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch", "floatx": "float32"}))
    name, _, imported = json.loads(run_report("backend", KERAS_HOME=str(tmp_path)))
    assert name == "torch"
    assert imported == []


def test_default_is_tensorflow_without_config(tmp_path):
    name, _, _ = json.loads(run_report("backend", KERAS_HOME=str(tmp_path / "empty")))
    assert name == "tensorflow"


def test_env_variable_beats_keras_json(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    name, _, _ = json.loads(run_report("backend", KERAS_BACKEND="jax", KERAS_HOME=str(tmp_path)))
    assert name == "jax"


def test_backend_name_matches_keras_once_imported():
    import keras

    assert backend_name() == keras.backend.backend()


def test_library_versions_reads_metadata_without_importing_backends(tmp_path):
    _, versions, imported = json.loads(run_report("backend", KERAS_HOME=str(tmp_path)))
    assert imported == []
    assert versions["python"] == ".".join(str(part) for part in sys.version_info[:3])
    assert versions["keras"] == importlib.metadata.version("keras")
    assert versions["numpy"] == importlib.metadata.version("numpy")
    for package in ("tensorflow", "jax", "torch"):
        try:
            expected = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            assert package not in versions
        else:
            assert versions[package] == expected


def test_library_versions_in_process_has_required_keys():
    versions = library_versions()
    assert {"python", "keras", "numpy"} <= versions.keys()
    assert all(isinstance(value, str) and value for value in versions.values())


def test_keras_config_path_uses_keras_home(tmp_path):
    assert keras_config_path({"KERAS_HOME": str(tmp_path)}) == tmp_path / "keras.json"


def test_keras_home_rule_is_the_one_keras_applies(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keras_home_rule({"KERAS_HOME": "~/elsewhere"}) == tmp_path / "elsewhere"
    assert keras_home_rule({}) == tmp_path / ".keras"
    tmp_path.chmod(0o500)  # a read-only home: Keras falls back to /tmp
    try:
        if not os.access(tmp_path, os.W_OK):  # root may still write
            assert keras_home_rule({}) == pathlib.Path("/tmp/.keras")
    finally:
        tmp_path.chmod(0o700)


def test_unreadable_keras_json_falls_back_to_default(tmp_path):
    (tmp_path / "keras.json").write_text("{not json")
    name, _, _ = json.loads(run_report("backend", KERAS_HOME=str(tmp_path)))
    assert name == "tensorflow"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="KERAS_BACKEND to one of tensorflow, jax, torch"):
        import_backend_module("mxnet")


def test_missing_backend_library_says_how_to_install(monkeypatch):
    monkeypatch.setitem(backend.BACKEND_PACKAGES, "torch", "no_such_package_for_this_test")
    with pytest.raises(BackendUnavailableError, match="pip install torch"):
        import_backend_module("torch")


def test_installed_backend_is_imported():
    module = import_backend_module("tensorflow")
    assert module.__name__ == "tensorflow"


def test_gpu_memory_is_taken_on_demand_without_overriding_an_administrator():
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "true"}
    added = take_gpu_memory_on_demand(env)
    assert added == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert env == {"XLA_PYTHON_CLIENT_PREALLOCATE": "true", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert take_gpu_memory_on_demand(env) == {}
