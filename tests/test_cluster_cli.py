"""`python -m lib.cluster status`: a cluster that answers, one that does not, none at all; and no Ray without one."""

from __future__ import annotations

import subprocess
import sys

from lib.cluster import EXIT_UNREACHABLE, main
from lib.executor import RAY_ADDRESS_ENV
from lib.local_cluster import free_port
from tests.conftest import REPO_ROOT, subprocess_env


def without_cluster_env() -> dict[str, str]:
    """This process's environment for a subprocess, GPUX_RAY_ADDRESS removed."""
    env = subprocess_env()
    env.pop(RAY_ADDRESS_ENV, None)
    return env


def test_without_an_address_jobs_run_on_this_server(capsys):
    assert main(["status"], environ={}) == 0
    assert capsys.readouterr().out.strip() == f"{RAY_ADDRESS_ENV} is not set: jobs run on this server, one at a time."


def test_an_unreachable_head_is_one_sentence_and_exit_code_2():
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "lib.cluster", "status"],
        cwd=REPO_ROOT,
        env={**without_cluster_env(), RAY_ADDRESS_ENV: address},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_UNREACHABLE
    assert result.stdout.startswith(f"The Ray cluster at {address} does not answer (")
    assert "Traceback" not in result.stdout + result.stderr


def test_a_cluster_that_answers_lists_its_training_machines(ray_cluster, capsys):
    assert main(["status", "--address", ray_cluster.address], environ={}) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"The Ray cluster at {ray_cluster.address}: 2 training machines."
    assert lines[1].split() == ["name", "address", "GPUs"]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["machine-1", "machine-2"]  # the head trains nothing: not listed
    assert [row[2] for row in rows] == ["0", "0"]


def test_the_app_without_a_cluster_never_imports_ray(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.helpers.no_ray_import", str(tmp_path / "runs.sqlite")],
        cwd=REPO_ROOT,
        env=without_cluster_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("NO RAY")
