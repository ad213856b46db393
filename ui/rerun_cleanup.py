"""Stops Streamlit from resetting Keras after every script run, which stalls a shared server.

After each run of a page script (every page view, every rerun, every fragment rerun of every session)
Streamlit calls `keras.backend.clear_session()` when `keras` has been imported. In Keras 3 that resets the
TensorFlow graph and runs a full `gc.collect()`: about 0.4 s of CPU under the GIL on this app's server once
the backend has loaded (py-spy: half of all the server's samples while pages were opened one after another),
so every page waits for it and a class's sessions wait for each other's. This server never trains (every job
runs in its own worker process) and keeps no Keras models between runs, so the reset buys nothing here.
"""

from __future__ import annotations

import sys
from typing import Any

from streamlit.runtime.scriptrunner import script_runner

_STREAMLIT_CLEANUP = "_clean_problem_modules"  # the function Streamlit calls after every script run
STREAMLIT_CLEANUP = getattr(script_runner, _STREAMLIT_CLEANUP, None)  # Streamlit's own, kept for the tests


def _close_matplotlib_figures() -> None:
    """What Streamlit's cleanup does apart from Keras: closes pyplot figures (when pyplot is imported)."""
    pyplot: Any = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_between_reruns() -> bool:
    """Replaces Streamlit's after-run cleanup by one that leaves Keras alone (idempotent).

    Returns:
        True when Streamlit's cleanup was found and replaced (or already was); False when this Streamlit
        has no such function (a newer release may have changed it; then nothing is changed).
    """
    if not hasattr(script_runner, _STREAMLIT_CLEANUP):
        return False
    setattr(script_runner, _STREAMLIT_CLEANUP, _close_matplotlib_figures)
    return True
