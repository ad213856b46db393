"""Shared pytest fixtures and test-wide settings."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# Quiet TensorFlow's C++ logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def runs_db(tmp_path, monkeypatch) -> pathlib.Path:
    """Points the run store at a fresh SQLite file for one test."""
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("GPUX_RUNS_DB", str(path))
    return path
