"""Starts a test worker as a server would (its own id in GPUX_WORKER_PARENT_PID), hands it a job, and exits.

Run as `python -m tests.helpers.orphan_worker` with the job's worker JSON on standard input; prints the
worker's process id. The worker runs in a session of its own, so only its parent check can end it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from lib.jobs import WORKER_PARENT_ENV
from tests.helpers.fake_worker import FAKE_WORKER_COMMAND


def main() -> None:
    """Starts the worker, writes the job read from standard input to it, and prints its process id."""
    env = {**os.environ, WORKER_PARENT_ENV: str(os.getpid())}
    worker = subprocess.Popen(
        FAKE_WORKER_COMMAND,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        start_new_session=True,
    )
    worker.stdin.write(sys.stdin.read())
    worker.stdin.close()
    print(worker.pid, flush=True)


if __name__ == "__main__":
    main()
