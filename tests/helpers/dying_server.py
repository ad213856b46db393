"""A server process about to die: a job runner with one job running and two queued, then a long wait.

Run as `python -m tests.helpers.dying_server DB_PATH WAIT_S`. Once the running job's worker is ready it
prints the running job's id, its worker's process id and the queued jobs' ids on one line, then sleeps
WAIT_S seconds so the test can kill it.
"""

from __future__ import annotations

import sys
import time

from lib.limits import ServerLimits
from lib.runner import JobRunner
from lib.store import RunStore
from tests.helpers.fake_worker import FAKE_WORKER_COMMAND
from tests.test_runner import TEST_ENV, submit_fake


def main(db_path: str, wait_s: float) -> None:
    """Submits the jobs, reports their ids once the first one runs, and waits."""
    runner = JobRunner(
        RunStore(db_path), ServerLimits(), worker_command=FAKE_WORKER_COMMAND, env=TEST_ENV, warm_workers=False
    )
    job = submit_fake(runner, "a", sleep_before_s=wait_s)
    queued = [submit_fake(runner, owner, client="10.0.0." + owner) for owner in ("b", "c")]
    while runner.get(job.id).pid is None or "ready" not in runner.get(job.id).worker:
        time.sleep(0.05)
    print(job.id, runner.get(job.id).pid, *(q.id for q in queued), flush=True)
    time.sleep(wait_s)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
