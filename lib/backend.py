"""Which Keras backend the app runs on, and which library versions are installed.

Both questions are answered without importing Keras or a backend library when possible: the router
calls them on every page load, and importing TensorFlow costs seconds. The backend is chosen the way
Keras chooses it (the `KERAS_BACKEND` environment variable, then `keras.json` in the Keras home folder,
then TensorFlow); once Keras has been imported, Keras itself is asked.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import pathlib
import platform
import sys
from collections.abc import Mapping, MutableMapping

DEFAULT_BACKEND = "tensorflow"  # what Keras uses when nothing else is configured
KNOWN_BACKENDS = ("tensorflow", "jax", "torch")  # the backends this app supports
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # backend -> distribution name
GPU_INSTALL_COMMANDS = {  # how to install each backend with NVIDIA GPU support on Linux
    "tensorflow": 'pip install "tensorflow[and-cuda]"',
    "jax": 'pip install "jax[cuda12]"',
    "torch": "pip install torch",
}


class BackendUnavailableError(ImportError):
    """The configured Keras backend library cannot be imported."""


GPU_MEMORY_ON_DEMAND = {  # environment variables that make a backend take GPU memory as it needs it
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # TensorFlow would otherwise reserve nearly all of each GPU at first use
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # JAX would otherwise reserve 75% of each GPU at first use
}


def take_gpu_memory_on_demand(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Keeps the Streamlit server process from reserving the GPUs' memory for itself.

    The server runs the matrix-product demo and the ceiling measurement in its own process; left to their
    defaults, TensorFlow and JAX would then hold most of each GPU's memory for as long as the server lives,
    and the training workers would run out. Call this before the backend first touches a GPU. Values
    already set (by an administrator) are kept.

    Args:
        environ: The environment to change; `os.environ` when None.

    Returns:
        The variables this call set.
    """
    env = os.environ if environ is None else environ
    added = {name: value for name, value in GPU_MEMORY_ON_DEMAND.items() if name not in env}
    env.update(added)
    return added


def backend_name(environ: Mapping[str, str] | None = None) -> str:
    """Returns the Keras backend that is (or will be) used by this process.

    Args:
        environ: The environment to read; `os.environ` when None. Ignored once Keras is imported,
            because Keras has then fixed its backend for the life of the process.

    Returns:
        The backend name, e.g. "tensorflow", "jax" or "torch".
    """
    keras_module = sys.modules.get("keras")
    if keras_module is not None and hasattr(keras_module, "backend"):
        return keras_module.backend.backend()
    env = os.environ if environ is None else environ
    from_env = env.get("KERAS_BACKEND", "").strip()
    if from_env:
        return from_env
    return _backend_from_config(keras_config_path(env)) or DEFAULT_BACKEND


def keras_home_rule(environ: Mapping[str, str]) -> pathlib.Path:
    """Returns the Keras home folder by the rule Keras applies when it is imported, without importing it.

    `$KERAS_HOME`, else `~/.keras`, else `/tmp/.keras` when the home folder is not writable. Keras keeps
    `keras.json` there and caches downloaded datasets in its `datasets/`.

    Args:
        environ: The environment to read `KERAS_HOME` from.
    """
    if "KERAS_HOME" in environ:
        return pathlib.Path(environ["KERAS_HOME"]).expanduser()
    home = pathlib.Path("~").expanduser()
    base = home if os.access(home, os.W_OK) else pathlib.Path("/tmp")
    return base / ".keras"


def keras_config_path(environ: Mapping[str, str]) -> pathlib.Path:
    """Returns where Keras looks for `keras.json`: in its home folder (`keras_home_rule`).

    Args:
        environ: The environment to read `KERAS_HOME` from.
    """
    return keras_home_rule(environ) / "keras.json"


def _backend_from_config(path: pathlib.Path) -> str | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) and backend else None


def library_versions() -> dict[str, str]:
    """Returns the versions of Python and the installed numerical libraries, without importing them.

    Returns:
        A dict with "python", "keras" and "numpy" (value "not installed" when missing), plus
        "tensorflow", "jax" and "torch" for those that are installed.
    """
    versions = {"python": platform.python_version()}
    for package in ("keras", "numpy"):
        versions[package] = _distribution_version(package) or "not installed"
    for package in BACKEND_PACKAGES.values():
        version = _distribution_version(package)
        if version is not None:
            versions[package] = version
    return versions


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def import_backend_module(backend: str):
    """Imports and returns the library behind a Keras backend (tensorflow, jax or torch).

    Args:
        backend: A Keras backend name.

    Returns:
        The imported module.

    Raises:
        BackendUnavailableError: The backend is unknown or its library is not installed; the message
            says how to install it.
    """
    if backend not in KNOWN_BACKENDS:
        raise BackendUnavailableError(
            f"Unknown Keras backend {backend!r}; set KERAS_BACKEND to one of {', '.join(KNOWN_BACKENDS)}."
        )
    try:
        return importlib.import_module(BACKEND_PACKAGES[backend])
    except ImportError as error:
        raise BackendUnavailableError(
            f"The Keras backend {backend!r} is selected but cannot be imported ({error}). "
            f"Install it (`{GPU_INSTALL_COMMANDS[backend]}` on Linux with an NVIDIA driver, plain "
            f"`pip install {BACKEND_PACKAGES[backend]}` for CPU only), or set KERAS_BACKEND to an installed backend."
        ) from error
