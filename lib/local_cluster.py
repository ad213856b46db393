"""A Ray cluster on this one machine: a head and N training nodes, for trying the cluster mode and for tests.

`make cluster-demo` runs `python -m lib.local_cluster --nodes 2 --app`: a head (no training, as on the app's
server), two training nodes named machine-1 and machine-2 (each offering the `gpux_machine` resource once,
as a real training machine does), and the app pointed at them (GPUX_RAY_ADDRESS). Ctrl-C stops everything.
The tests and benchmarks start and stop one the same way (`start_local_cluster`).

Each node is `ray start --block` in its own process group, so stopping (or killing, to play a machine that
dies) one node ends exactly its processes and never another Ray on this machine. Every port is picked free.
On a real cluster the same commands run on separate machines: README.md, "More machines".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lib.executor import RAY_ADDRESS_ENV
from lib.ray_executor import MACHINE_RESOURCE

START_TIMEOUT_S = 180.0  # a node that is not up by then did not start (2 cores, everything else busy)
STOP_GRACE_S = 10.0  # after SIGTERM, seconds a node gets before SIGKILL
# Fast node-death detection for tests: the head calls a node dead after about 3 s without heartbeats (Ray's
# defaults take about 30 s, right for real networks).
FAST_HEALTH_CHECK = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "4",
}
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
# Ray's memory monitor kills a node's newest workers (a job's supervisor first) once it reads the node's memory as
# 95 % used. Every node here shares one host with the head, the app and its tests, so each reads the whole host's
# memory as its own, and inside a container Ray can count the page cache as used (ray-project/ray#59796): it can
# kill jobs that need a few MB while the host has gigabytes free. The kernel's OOM killer still guards the host;
# a real training machine keeps Ray's monitor.
ONE_HOST = {"RAY_memory_monitor_refresh_ms": "0"}


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_command() -> str:
    """The `ray` command of this Python (the virtual environment's), else the one on PATH."""
    beside = pathlib.Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


@dataclass
class LocalCluster:
    """A running head and its training nodes, each a `ray start --block` process group."""

    address: str  # the dashboard's address, what GPUX_RAY_ADDRESS takes: "http://127.0.0.1:PORT"
    gcs_address: str  # what `ray start --address` takes: "127.0.0.1:PORT"
    temp_dir: pathlib.Path
    env: dict[str, str]
    head: subprocess.Popen
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)  # node name -> its `ray start`
    logs: list[pathlib.Path] = field(default_factory=list)

    def start_node(self, name: str, *, cpus: int = 1, gpus: int = 0, wait: bool = True) -> subprocess.Popen:
        """Starts a training node (one `gpux_machine`) named `name`; waits until the head sees it.

        A node given `gpus` tells Ray it has that many (GPUs 0..gpus-1 of this machine; Ray takes its word, so
        on a machine without one the tests use it to play a GPU box).
        """
        command = [
            ray_command(),
            "start",
            "--block",
            "--address",
            self.gcs_address,
            "--node-name",
            name,
            "--num-cpus",
            str(cpus),
            "--num-gpus",
            str(gpus),
            "--resources",
            f'{{"{MACHINE_RESOURCE}": 1}}',
            "--dashboard-agent-listen-port",
            str(free_port()),
            "--temp-dir",
            str(self.temp_dir),  # this cluster's own, never another Ray's on this machine
            "--disable-usage-stats",
        ]
        # Ray checks a node's GPUs against CUDA_VISIBLE_DEVICES: a node given GPUs sees that many, by index.
        visible = {"CUDA_VISIBLE_DEVICES": ",".join(str(index) for index in range(gpus))} if gpus else {}
        self.nodes[name] = self._spawn(command, f"node-{name}", visible)
        if wait:
            wait_for_machines(self.address, set(self.nodes), timeout_s=START_TIMEOUT_S)
        return self.nodes[name]

    def kill_node(self, name: str) -> None:
        """Kills a node at once (SIGKILL to all its processes): a machine that dies mid-job."""
        process = self.nodes.pop(name)
        _signal_group(process, signal.SIGKILL)
        process.wait()

    def stop_node(self, name: str) -> None:
        """Stops a node (SIGTERM, then SIGKILL after a grace period)."""
        _stop(self.nodes.pop(name))

    def stop(self) -> None:
        """Stops every node and the head together, and removes the cluster's temporary folder."""
        processes = [*self.nodes.values(), self.head]
        self.nodes.clear()
        for process in processes:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        for process in processes:
            _stop(process)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _spawn(
        self, command: Sequence[str], label: str, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.Popen:
        log = self.temp_dir / f"{label}.log"
        self.logs.append(log)
        env = {**self.env, **(extra_env or {})}
        with log.open("ab") as out:
            return subprocess.Popen(
                list(command), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )


def start_local_cluster(
    node_names: Sequence[str] = ("machine-1", "machine-2"),
    *,
    fast_health_check: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> LocalCluster:
    """Starts a head (which trains nothing) and one training node per name, and waits until all are up.

    Args:
        node_names: The training nodes' names, as the app shows them.
        fast_health_check: Call a silent node dead after about 3 s (tests that kill a node); Ray's default
            is about 30 s.
        extra_env: More environment variables for every Ray process (and so for every job's worker).

    Raises:
        RuntimeError: A node did not start (its log's end is in the message).
    """
    temp_dir = pathlib.Path(tempfile.mkdtemp(prefix="gpux-ray-", dir="/tmp"))  # short: Ray's sockets live here
    env = {
        **os.environ,
        **QUIET,
        **ONE_HOST,
        **(FAST_HEALTH_CHECK if fast_health_check else {}),
        **(extra_env or {}),
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop(RAY_ADDRESS_ENV, None)
    env.pop("RAY_ADDRESS", None)
    gcs_port, dashboard_port = free_port(), free_port()
    cluster = LocalCluster(
        address=f"http://127.0.0.1:{dashboard_port}",
        gcs_address=f"127.0.0.1:{gcs_port}",
        temp_dir=temp_dir,
        env=env,
        head=None,  # type: ignore[arg-type]  # set just below
    )
    head_command = [
        ray_command(),
        "start",
        "--head",
        "--block",
        "--port",
        str(gcs_port),
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dashboard_port),
        "--dashboard-agent-listen-port",
        str(free_port()),
        "--ray-client-server-port",
        str(free_port()),
        "--num-cpus",
        "1",
        "--temp-dir",
        str(temp_dir),
        "--disable-usage-stats",
    ]
    cluster.head = cluster._spawn(head_command, "head")
    try:
        wait_for_machines(cluster.address, set(), timeout_s=START_TIMEOUT_S)
        for name in node_names:  # one after another: nodes starting together on one host raced for ports
            cluster.start_node(name)
    except BaseException as error:
        tails = "\n".join(f"--- {log.name}\n{_tail(log)}" for log in cluster.logs)
        cluster.stop()
        if not isinstance(error, Exception):  # Ctrl-C or SIGTERM while starting: stopped, nothing to explain
            raise
        raise RuntimeError(f"The local Ray cluster did not start: {error}\n{tails}") from error
    return cluster


def wait_for_machines(address: str, names: set[str], timeout_s: float) -> None:
    """Waits until the head answers and every named training node is alive.

    Raises:
        TimeoutError: Not all of them after `timeout_s`.
    """
    from ray.util.state import list_nodes

    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the head is not answering yet
            nodes = list_nodes(
                address=address,
                filters=[("state", "=", "ALIVE")],
                detail=True,
                timeout=5,
                raise_on_missing_output=False,
            )
            seen = {node.node_name for node in nodes if (node.resources_total or {}).get(MACHINE_RESOURCE)}
            if names <= seen:
                return
        time.sleep(0.5)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {sorted(names)}; alive: {sorted(seen)}")


def _tail(path: pathlib.Path, chars: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-chars:]
    return ""


def _signal_group(process: subprocess.Popen, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)
    _signal_group(process, signal.SIGKILL)  # anything of its group still there
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_GRACE_S)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    """Stops the cluster as Ctrl-C does (Python's default for SIGTERM ends at once, leaving every node running).

    Later signals are ignored, so that the stop runs to its end: make sends SIGTERM again to its children.
    """
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise KeyboardInterrupt


def _run_app(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Runs the app until it ends; stopped early (Ctrl-C, SIGTERM), it gets SIGTERM and a grace period."""
    app = subprocess.Popen(list(command), env=dict(env), cwd=pathlib.Path(__file__).resolve().parent.parent)
    try:
        return app.wait()
    finally:
        if app.poll() is None:
            app.terminate()
            try:
                app.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a local cluster until Ctrl-C; with --app, the app pointed at it (and the cluster ends with the app).

    SIGTERM and SIGHUP stop it as Ctrl-C does: the app first, then every node, so no raylet is left behind.
    """
    parser = argparse.ArgumentParser(prog="python -m lib.local_cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2, help="training nodes to start (default 2)")
    parser.add_argument("--app", action="store_true", help="also run the app (streamlit) pointed at the cluster")
    parser.add_argument("--port", type=int, default=8501, help="the app's port with --app (default 8501)")
    args = parser.parse_args(argv)
    names = [f"machine-{index}" for index in range(1, max(args.nodes, 1) + 1)]
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, _interrupt)
    print(f"Starting a Ray head and {len(names)} training nodes on this machine ...", flush=True)
    try:
        cluster = start_local_cluster(names)
    except KeyboardInterrupt:
        print("Stopped before the cluster was up.", flush=True)
        return 130
    print(f"Ray cluster up: {RAY_ADDRESS_ENV}={cluster.address} (nodes: {', '.join(names)})", flush=True)
    print(f"Add another node: ray start --address {cluster.gcs_address} --resources '{{\"{MACHINE_RESOURCE}\": 1}}'")
    try:
        if args.app:
            app_env = {**os.environ, RAY_ADDRESS_ENV: cluster.address}
            command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(args.port)]
            return _run_app(command, app_env)
        print("Ctrl-C stops the cluster.", flush=True)
        while cluster.head.poll() is None:
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("Stopping the cluster ...", flush=True)
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
