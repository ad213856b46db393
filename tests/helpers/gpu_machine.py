"""Runs a script or module as the GPU machine would: TensorFlow, Streamlit and Altair cannot be imported.

Run from the repository root as `python -m tests.helpers.gpu_machine SCRIPT.py [ARGS...]` or
`python -m tests.helpers.gpu_machine -m MODULE [ARGS...]`; the target sees ARGS as its command line.
"""

from __future__ import annotations

import runpy
import sys

ABSENT = ("tensorflow", "streamlit", "altair")  # not installed on the GPU machine


def main(argv: list[str]) -> None:
    """Makes the absent libraries unimportable, then runs the target as `__main__`."""
    for name in ABSENT:
        sys.modules[name] = None  # `import name` now raises ImportError
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
