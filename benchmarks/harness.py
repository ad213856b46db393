"""What the benchmarks and the real-browser tests share to run the app: its server, the browser, the machine.

- `launch_streamlit`: starts `python -m streamlit run streamlit_app.py` on a free port (bound to 127.0.0.1 by
  the default flags) with the caller's environment and log file, waits until `/_stcore/health` answers "ok"
  and always ends the server (and any worker process it left behind). A server that dies or never answers
  raises `ServerStartError` with the log's tail.
- `CHROMIUM` and `CHROMIUM_ARGS`: Debian's headless Chromium as Playwright launches it here.
- `read_machine_facts` (and `avx512_lines`): what the figures depend on (CPU model, cores, RAM, AVX-512, load),
  built on `lib.hardware`.
- `rss_kib` and `peak_rss_kib`: a process's resident memory now and at its peak.

Not runnable itself: `benchmarks/*.py` and `tests/browser/conftest.py` import it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import psutil

from lib.hardware import CPUINFO, cpu_model, logical_cores, ram_bytes, usable_cores

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

# --- the browser ---
CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# --- the server ---
# Headless, loopback only, no file watcher and no telemetry: a server nobody edits, for one script.
SERVER_FLAGS = (
    "--server.headless",
    "true",
    "--server.address",
    LOOPBACK,
    "--server.fileWatcherType",
    "none",
    "--browser.gatherUsageStats",
    "false",
)
HEALTH_PATH = "/_stcore/health"
LOG_TAIL_CHARS = 4000  # of the server's log, in the message of a server that did not start


class ServerStartError(RuntimeError):
    """The Streamlit server exited, or did not answer its health check in time; the message holds its log's tail."""


@dataclass
class StreamlitServer:
    """A running `streamlit run streamlit_app.py`."""

    url: str  # "http://127.0.0.1:<port>"
    process: subprocess.Popen
    log_path: pathlib.Path  # its stdout and stderr
    launched_at: float  # time.monotonic() just before the process started
    healthy_at: float = 0.0  # time.monotonic() when the health check first answered "ok"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def started_s(self) -> float:
        """Seconds from the process start to the first "ok" of its health check."""
        return self.healthy_at - self.launched_at


def free_port() -> int:
    """Asks the operating system for a loopback TCP port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def launch_streamlit(
    log_path: pathlib.Path,
    env: Mapping[str, str],
    *,
    flags: Sequence[str] = SERVER_FLAGS,
    repo: pathlib.Path = REPO_ROOT,
    python: str = sys.executable,
    start_timeout_s: float = 120.0,
    poll_s: float = 0.2,
    stop_timeout_s: float = 15.0,
) -> Iterator[StreamlitServer]:
    """Runs `python -m streamlit run streamlit_app.py --server.port <free port> *flags` until the block ends.

    Args:
        log_path: The file the server's stdout and stderr go to (overwritten).
        env: The server's whole environment (the run store's GPUX_RUNS_DB belongs here).
        flags: Streamlit options after the port; `()` starts it as `make run` does, from the config file alone.
        repo: The checkout whose `streamlit_app.py` runs (the working folder).
        python: The interpreter that runs Streamlit.
        start_timeout_s: How long the health check may take to answer "ok".
        poll_s: How often the health check is asked meanwhile (the resolution of `healthy_at`).
        stop_timeout_s: How long the server may take to exit once terminated before it is killed.

    Yields:
        The server, once healthy. On leaving, it is terminated (killed after `stop_timeout_s`), then any
        descendant still alive (workers run in process groups of their own) is killed.

    Raises:
        ServerStartError: The server exited or did not answer within `start_timeout_s`.
    """
    port = free_port()
    command = [python, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port), *flags]
    with log_path.open("w") as log:
        launched_at = time.monotonic()
        process = subprocess.Popen(command, cwd=repo, stdout=log, stderr=subprocess.STDOUT, env=dict(env))
        server = StreamlitServer(f"http://{LOOPBACK}:{port}", process, log_path, launched_at)
        try:
            server.healthy_at = _wait_until_healthy(server, start_timeout_s, poll_s)
            yield server
        finally:
            _stop(process, stop_timeout_s)


def _wait_until_healthy(server: StreamlitServer, timeout_s: float, poll_s: float) -> float:
    """Polls the health endpoint; returns the time.monotonic() of its first "ok"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerStartError(f"streamlit exited with code {server.process.returncode}:\n{_log_tail(server)}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(server.url + HEALTH_PATH, timeout=2) as response,
        ):
            if response.read().decode().strip() == "ok":
                return time.monotonic()
        time.sleep(poll_s)
    raise ServerStartError(
        f"streamlit did not answer {server.url}{HEALTH_PATH} within {timeout_s:.0f} s:\n{_log_tail(server)}"
    )


def _log_tail(server: StreamlitServer) -> str:
    return server.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]


def _stop(process: subprocess.Popen, timeout_s: float) -> None:
    """Ends the server, then each of its descendants still alive (psutil checks a pid was not reused)."""
    left: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        left = psutil.Process(process.pid).children(recursive=True)
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in left:
        with contextlib.suppress(psutil.Error):
            child.kill()


# --- the machine ---


@dataclass(frozen=True)
class MachineFacts:
    """What a benchmark's figures depend on, read when it starts."""

    cpu_model: str | None  # "AMD EPYC 7B13"; None when the system does not say
    logical_cores: int | None  # hardware threads of the machine
    usable_cores: int  # the cores this process may run on (fewer under taskset or a container)
    ram_gb: float | None  # total RAM in GiB, one decimal
    avx512_lines: int  # lines of /proc/cpuinfo that name avx512: what `grep -c avx512 /proc/cpuinfo` prints
    load_average: tuple[float, float, float]  # over 1, 5 and 15 minutes
    python: str  # "3.11.9"
    platform: str  # platform.platform()


def avx512_lines(cpuinfo: pathlib.Path = CPUINFO) -> int:
    """How many lines of /proc/cpuinfo name avx512 (one per logical core that has it; 0 without the file)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return 0
    return sum("avx512" in line for line in text.splitlines())


def read_machine_facts() -> MachineFacts:
    """This machine's facts now (CPU and RAM through `lib.hardware`)."""
    ram = ram_bytes()
    return MachineFacts(
        cpu_model=cpu_model(),
        logical_cores=logical_cores(),
        usable_cores=usable_cores(),
        ram_gb=round(ram / 1024**3, 1) if ram else None,
        avx512_lines=avx512_lines(),
        load_average=os.getloadavg(),
        python=platform.python_version(),
        platform=platform.platform(),
    )


# --- process memory ---


def rss_kib(pid: int) -> int | None:
    """The process's resident memory now (VmRSS) in KiB; None when it has ended or may not be read."""
    try:
        return psutil.Process(pid).memory_info().rss // 1024
    except psutil.Error:
        return None


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM, which psutil does not report) in KiB; None when unknown."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None
