"""Streamlit's after-run cleanup no longer resets Keras (a full gc.collect() per page view on the server)."""

from __future__ import annotations

import sys
import types

from streamlit.runtime.scriptrunner import script_runner

from ui.rerun_cleanup import STREAMLIT_CLEANUP, keep_keras_between_reruns


class FakeKerasBackend:
    def __init__(self) -> None:
        self.cleared = 0

    def clear_session(self) -> None:
        self.cleared += 1


def fake_keras(monkeypatch) -> FakeKerasBackend:
    backend = FakeKerasBackend()
    monkeypatch.setitem(sys.modules, "keras", types.SimpleNamespace(backend=backend))
    return backend


def test_streamlit_still_has_the_cleanup_and_it_resets_keras(monkeypatch):
    """Guards the patch: if Streamlit renames its cleanup or stops resetting Keras, this fails."""
    assert STREAMLIT_CLEANUP is not None
    backend = fake_keras(monkeypatch)
    STREAMLIT_CLEANUP()
    assert backend.cleared == 1


def test_after_the_patch_a_script_run_leaves_keras_alone(monkeypatch):
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    backend = fake_keras(monkeypatch)
    assert keep_keras_between_reruns()
    assert keep_keras_between_reruns()  # twice is harmless
    script_runner._clean_problem_modules()
    assert backend.cleared == 0


def test_pyplot_figures_are_still_closed(monkeypatch):
    closed = []
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", types.SimpleNamespace(close=closed.append))
    keep_keras_between_reruns()
    script_runner._clean_problem_modules()
    assert closed == ["all"]
