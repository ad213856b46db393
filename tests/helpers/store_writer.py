"""One of several processes writing runs into one run store at the same time.

Run as `python -m tests.helpers.store_writer DB_PATH NAME WRITERS`: it opens the store, marks itself ready in
a "ready" folder beside the database, waits until WRITERS writers are ready (so that their writes overlap),
then records 25 runs with job ids NAME-0 to NAME-24.
"""

from __future__ import annotations

import pathlib
import sys
import time

from lib.device_run import DeviceRun
from lib.spec import ModelSpec
from lib.store import RunStore

RUNS = 25  # runs each writer records
READY_WAIT_S = 60  # the longest a writer waits for the others


def main(db_path: str, name: str, writers: int) -> None:
    """Waits for the other writers, then records this writer's runs."""
    store = RunStore(db_path)
    ready = pathlib.Path(db_path).parent / "ready"
    ready.mkdir(exist_ok=True)
    (ready / name).touch()
    deadline = time.monotonic() + READY_WAIT_S
    while len(list(ready.iterdir())) < writers and time.monotonic() < deadline:
        time.sleep(0.01)
    for index in range(RUNS):
        run = DeviceRun(device="cpu:0", backend="tensorflow", synthetic=True, epoch_s=[1.0], total_s=1.0)
        store.record(ModelSpec(), run, job_id=f"{name}-{index}", params=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
