"""What a failed cluster test prints about the local cluster: its recent jobs and the errors its nodes logged.

A cluster test that fails on another machine (CI) leaves nothing behind: the cluster's folder is removed when
the session ends. `cluster_report` is added to such a test's report (tests/conftest.py), so the reason a job
failed (Ray's status message, the job's own last lines, a node's runtime-environment error) is in the output.
"""

from __future__ import annotations

import contextlib
import pathlib

from lib.local_cluster import LocalCluster

RECENT_JOBS = 8
LOG_LINES = 12
ERROR_MARKS = ("ERROR", "Error", "Traceback", "Exception", "failed", "Killing", "low on memory")
ROUTINE = ("[state-dump]",)  # the raylet's periodic counters name failures that did not happen
NODE_LOGS = (
    "runtime_env_agent*.log",
    "runtime_env_setup*.log",
    "job-driver-*.log",
    "raylet.out",
    "dashboard_agent.log",
)


def cluster_report(cluster: LocalCluster) -> str:
    """The cluster's last jobs (status, error type, message, last lines) and its nodes' logged errors."""
    parts = [_jobs_report(cluster.address), _node_errors(cluster.temp_dir)]
    return "\n\n".join(part for part in parts if part)


def _jobs_report(address: str) -> str:
    try:
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(address)
        jobs = sorted(client.list_jobs(), key=lambda job: job.start_time or 0)[-RECENT_JOBS:]
    except Exception as error:  # the head itself may be the problem
        return f"The head did not list its jobs: {error!r}"
    return "\n".join(_job_lines(client, job) for job in jobs)


def _job_lines(client, job) -> str:
    node = (job.driver_node_id or "")[:8]
    head = f"{job.submission_id} {job.status} {job.error_type or ''} node {node}: {(job.message or '')[:400]}"
    if str(job.status) == "SUCCEEDED":
        return head
    logs = ""
    with contextlib.suppress(Exception):
        logs = client.get_job_logs(job.submission_id)
    tail = [f"    | {line}" for line in logs.splitlines()[-LOG_LINES:]]
    return "\n".join([head, *tail])


def _node_errors(temp_dir: pathlib.Path) -> str:
    lines: list[str] = []
    for pattern in NODE_LOGS:
        for log in sorted(temp_dir.glob(f"**/session_latest/logs/{pattern}")):
            with contextlib.suppress(OSError):
                errors = [line for line in log.read_text(errors="replace").splitlines() if _is_error(line)]
                lines += [f"{log.relative_to(temp_dir)}: {line[:300]}" for line in errors[-LOG_LINES:]]
    return "\n".join(lines)


def _is_error(line: str) -> bool:
    return any(mark in line for mark in ERROR_MARKS) and not any(mark in line for mark in ROUTINE)
