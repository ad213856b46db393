"""A class on one shared server: N real browser sessions open the app together and all press Train.

The script starts `streamlit run streamlit_app.py` on a free 127.0.0.1 port with a run store of its own
(GPUX_RUNS_DB in a temporary folder) and its log captured, then drives N sessions: one headless Debian
Chromium, one browser context per session, Playwright's async API. All sessions open a Train link at once:
half the same preset (Fashion-MNIST, as a class following the tutorial would), half a small model each
(a different `units`). All press Train together with a small sample limit and one epoch. It records:

    first render   navigation start -> the page's heading visible, per session (median, max)
    interactive    navigation start -> the Train button usable (the page's script finished)
    memory         the server's resident memory at start, before the class (after one warm-up visit to the
                   Train page, unless --cold), after the pages drew and after the jobs; MB per session
    waits          click -> the page shows its job running, and -> finished, against the "about N s" it showed
    makespan       first click -> last job finished
    errors         exceptions shown in pages + "Traceback" lines in the server log (must be 0)
    lost           sessions whose job did not finish: refused, vanished or still waiting at --timeout (must be 0)
    coalescing     the jobs and runs the store holds against the sessions and their distinct requests

Only loopback traffic; every wait is bounded. The browser runs on the same cores as the server, so its CPU time
is reported next to the server's. Run from the repository root:

    .venv/bin/python benchmarks/class_load.py --sessions 30 --json benchmarks/results/cpu-tf/class_load.json
    .venv/bin/python benchmarks/class_load.py --sessions 2                  # a smoke run

Exit status 1 when an error was seen or a request was lost. Needs /usr/bin/chromium (`make system-deps`).
The server, process and page helpers here are shared with benchmarks/responsiveness.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import pathlib
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    ServerStartError,
    StreamlitServer,
    launch_streamlit,
    read_machine_facts,
    rss_kib,
)
from benchmarks.perf_report import log, print_table, write_json  # noqa: E402
from ui.keys import Key  # noqa: E402

# --- what the class asks for ---
PRESET_NAME = "fashion-seed"  # the tutorial's Fashion-MNIST test: the request half the class shares
DISTINCT_UNITS_FIRST = 32  # the distinct models are Dense(32), Dense(33), ...: one small model per session
DISTINCT_BATCH = 64
DEVICE = "cpu:0"
MAX_SESSIONS = 60  # a class; more would measure the browser, not the server
DEFAULT_QUEUE_LIMIT = 30  # lib.limits.ServerLimits.queue; raised for the server only when --sessions is larger

# --- the server ---
CLASS_CHROMIUM_ARGS = [
    *CHROMIUM_ARGS,
    # Every session is a visible student: no timer throttling of "background" windows (the Train page polls).
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 15.0
SERVER_LOG_NAME = "server.log"  # in the server's folder, with its run store
RUNS_DB_NAME = "runs.sqlite"
QUIET_CORES = 0.15  # the server counts as settled below this many busy cores (its warm-up finished)
QUIET_MAX_S = 60.0
SCHED_POLICIES = {0: "normal", 1: "fifo", 2: "round-robin", 3: "batch", 5: "idle", 6: "deadline"}

# --- the pages (Streamlit's test ids; a widget's key is its CSS class `st-key-<key>`) ---
TRAIN_BUTTON = f".st-key-{Key.TRAIN} button"
SAMPLE_INPUT = f".st-key-{Key.SAMPLE_LIMIT} input"
MAIN = '[data-testid="stMain"]'
EXCEPTION = '[data-testid="stException"]'
POLL_MS = 100  # how often the page probes look (in the browser, not through Python)
STATE_POLL_MS = 250  # the job-state probe of N pages at once
VANISH_S = 10.0  # a job that was shown and is gone from its page for this long has vanished

# Milliseconds since navigation start once the main area shows a visible, non-empty heading.
HEADING_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return null;
  const shown = Array.from(main.querySelectorAll('h1')).some((h) => h.offsetParent !== null && h.innerText.trim());
  return shown ? Math.max(performance.now(), 0.001) : null;
}"""

# Milliseconds since navigation start once the script has finished, nothing is a placeholder any more and the
# page's main widget (a CSS selector, or null for "none") is shown and enabled.
INTERACTIVE_JS = """(selector) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const main = document.querySelector('[data-testid="stMain"]');
  if (!app || !main || app.getAttribute('data-test-script-state') !== 'notRunning') return null;
  if (!Array.from(main.querySelectorAll('h1')).some((h) => h.offsetParent !== null)) return null;
  if (main.querySelector('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]')) return null;
  if (selector) {
    const widget = document.querySelector(selector);
    if (!widget || widget.offsetParent === null || widget.disabled || widget.closest('[disabled]')) return null;
    if (widget.getAttribute('aria-disabled') === 'true') return null;
  }
  return Math.max(performance.now(), 0.001);
}"""

# The Train page's job as a person sees it, once it differs from `previous`: exception, done, failed (any other
# end), refused (an error message), running (a progress bar), queued (a queue message) or idle; with the browser's
# clock (epoch seconds), the message and the job id from the link (`job=`) or the text.
TRAIN_STATE_JS = """(previous) => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return null;
  const alerts = (kind) => Array.from(main.querySelectorAll(`[data-testid="stAlertContent${kind}"]`))
    .map((e) => e.innerText.trim());
  const idInText = /\\bjob\\s+`?([0-9a-f]{8,32})\\b/i.exec(main.innerText);
  const job = new URLSearchParams(location.search).get('job') || (idInText ? idInText[1] : null);
  const state = (name, text) => ({name, text: text || '', job, t: Date.now() / 1000});
  const pick = () => {
    const exception = document.querySelector('[data-testid="stException"]');
    if (exception) return state('exception', exception.innerText.slice(0, 500));
    const success = alerts('Success');
    const ended = [...success, ...alerts('Warning')].find(
      (t) => /\\b(job|run)\\b/i.test(t) && /(finished|failed|cancelled|time limit|interrupted)/i.test(t));
    if (ended) return state(success.includes(ended) && /finished/i.test(ended) ? 'done' : 'failed', ended);
    const errors = alerts('Error');
    if (errors.length) return state('refused', errors.join(' | '));
    if (main.querySelector('[data-testid="stProgress"]')) return state('running');
    const queued = alerts('Info').find((t) => /queue/i.test(t));
    if (queued) return state('queued', queued);
    return state('idle');
  };
  const now = pick();
  return now.name === previous ? null : now;
}"""
FINAL_STATES = ("done", "failed", "refused", "exception")
CONNECTION_JS = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-connection-state')"""

# "about 45 s", "about 4 min 05 s", "about 1 h 02 min": what lib.formatting.format_seconds writes after "about".
ABOUT_DURATION = re.compile(r"about\s+((?:\d+(?:[.,]\d+)?\s*(?:h|min|s)\b\s*)+)", re.IGNORECASE)
DURATION_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*(h|min|s)\b", re.IGNORECASE)
UNIT_SECONDS = {"h": 3600.0, "min": 60.0, "s": 1.0}
ICON_NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")  # a line such as "check_circle" is an icon, not words


@dataclass(frozen=True)
class SessionLink:
    """What one session asks for."""

    kind: str  # "preset": the request half the class shares; "distinct": a model of its own
    path: str  # path and query of the link it opens, "train?preset=fashion-seed&..."


@dataclass
class SessionRecord:
    """What happened to one session; times are epoch seconds (browser and script share the clock)."""

    index: int
    kind: str
    path: str
    render_s: float | None = None  # navigation start -> heading visible
    interactive_s: float | None = None  # navigation start -> Train button usable
    samples_fixed: bool = False  # the page did not show the link's sample limit, so the script typed it
    estimates: list[dict[str, Any]] = field(default_factory=list)  # {"text", "seconds"} shown before the click
    start_estimate_s: float | None = None  # "about N until it starts", when the job was shown as queued
    clicked_at: float | None = None
    shown_at: float | None = None  # the page first showed the job, queued or running
    started_at: float | None = None  # the page first showed the job running (or finished)
    finished_at: float | None = None
    outcome: str = "not rendered"  # then "not clicked", "done", "failed", "refused", "vanished", "timeout", ...
    message: str = ""
    job_id: str | None = None
    exceptions: int = 0  # exception boxes on the page at its last look
    browser_errors: list[str] = field(default_factory=list)  # uncaught JavaScript errors
    page_text: str = ""  # what the page said when its job did not finish
    connection: str | None = None  # and the state of its connection to the server then

    @property
    def wait_start_s(self) -> float | None:
        """Click -> the page showed the job running."""
        return _difference(self.started_at, self.clicked_at)

    @property
    def wait_done_s(self) -> float | None:
        """Click -> the page showed the job finished."""
        return _difference(self.finished_at, self.clicked_at)

    @property
    def estimate_shown_s(self) -> float | None:
        """The first "about N" duration the page showed before the click (None when it showed none)."""
        return self.estimates[0]["seconds"] if self.estimates else None

    @property
    def estimate_done_s(self) -> float | None:
        """What the page led the user to expect until the result: wait until the start plus the run's estimate."""
        if self.estimate_shown_s is None:
            return None
        return (self.start_estimate_s or 0.0) + self.estimate_shown_s

    def to_dict(self) -> dict[str, Any]:
        """The record with its derived waits, for the JSON file."""
        return {
            **asdict(self),
            "wait_start_s": self.wait_start_s,
            "wait_done_s": self.wait_done_s,
            "estimate_shown_s": self.estimate_shown_s,
            "estimate_done_s": self.estimate_done_s,
        }


# --- pure parts: arguments, links, durations, statistics ---


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line; exits with status 2 and a message when a value is out of range."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=positive_int, default=30, help=f"browser sessions, 1 to {MAX_SESSIONS}")
    parser.add_argument("--samples", type=positive_int, default=500, help="training samples of every job")
    parser.add_argument("--epochs", type=positive_int, default=1, help="epochs of every job")
    parser.add_argument("--device", default=DEVICE, help="device every job trains on")
    parser.add_argument("--timeout", type=positive_float, default=400.0, help="seconds from the clicks to give up")
    parser.add_argument("--render-timeout", type=positive_float, default=120.0, help="seconds for the pages to draw")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    parser.add_argument("--cold", action="store_true", help="no warm-up visit: the class is the server's first")
    parser.add_argument("--keep", action="store_true", help="keep the server's folder (log and run store)")
    args = parser.parse_args(argv)
    if args.sessions > MAX_SESSIONS:
        parser.error(f"--sessions {args.sessions} is more than {MAX_SESSIONS}")
    if args.timeout > 1800 or args.render_timeout > 1800:
        parser.error("--timeout and --render-timeout are at most 1800 s")
    return args


def session_links(sessions: int, samples: int, epochs: int, device: str = DEVICE) -> list[SessionLink]:
    """The links the class opens: even sessions the same preset, odd ones a small model each.

    Args:
        sessions: How many sessions; the preset gets the extra one when odd.
        samples: Training samples of every job.
        epochs: Epochs of every job.
        device: The device every job trains on.
    """
    run = {"epochs": epochs, "samples": samples, "devices": device}
    links = []
    for index in range(sessions):
        if index % 2 == 0:
            query = {"preset": PRESET_NAME, **run}
            links.append(SessionLink("preset", "train?" + urllib.parse.urlencode(query, safe=":,")))
        else:
            units = DISTINCT_UNITS_FIRST + index // 2
            query = {"layers": 1, "units": units, "batch": DISTINCT_BATCH, **run}
            links.append(SessionLink("distinct", "train?" + urllib.parse.urlencode(query, safe=":,")))
    return links


def parse_duration_s(text: str) -> float | None:
    """Seconds of a duration as the app writes it ("12.3 s", "4 min 05 s", "1 h 02 min"); None when none."""
    parts = DURATION_PART.findall(text)
    if not parts:
        return None
    return sum(float(number.replace(",", ".")) * UNIT_SECONDS[unit.lower()] for number, unit in parts)


def estimates_in_text(text: str) -> list[dict[str, Any]]:
    """Every "about <duration>" in a page's text: the line it is in and its seconds, in page order."""
    found = []
    for line in text.splitlines():
        for match in ABOUT_DURATION.finditer(line):
            found.append({"text": line.strip()[:300], "seconds": parse_duration_s(match.group(1))})
    return found


def summarize(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Count, median, minimum and maximum of the values that are not None (None statistics when there are none)."""
    present = [value for value in values if value is not None]
    if not present:
        return {"count": 0, "median": None, "min": None, "max": None}
    return {"count": len(present), "median": statistics.median(present), "min": min(present), "max": max(present)}


def ratios(measured: Sequence[float | None], estimated: Sequence[float | None]) -> list[float]:
    """measured / estimated for each pair where both are known and the estimate is above 0."""
    return [m / e for m, e in zip(measured, estimated, strict=True) if m is not None and e]


def summarize_class(records: Sequence[SessionRecord]) -> dict[str, Any]:
    """The class-level figures of the module docstring from the sessions' records (not memory or the log)."""
    clicks = [record.clicked_at for record in records if record.clicked_at is not None]
    finishes = [record.finished_at for record in records if record.finished_at is not None]
    done = [record for record in records if record.outcome == "done"]
    lost = [record for record in records if record.outcome != "done"]
    makespan = max(finishes) - min(clicks) if clicks and finishes and len(done) == len(records) else None
    return {
        "sessions": len(records),
        "render_s": summarize([record.render_s for record in records]),
        "interactive_s": summarize([record.interactive_s for record in records]),
        "wait_start_s": summarize([record.wait_start_s for record in records]),
        "wait_done_s": summarize([record.wait_done_s for record in records]),
        "sessions_shown_an_estimate": sum(record.estimate_shown_s is not None for record in records),
        "wait_done_over_estimate": summarize(
            ratios([r.wait_done_s for r in records], [r.estimate_done_s for r in records])
        ),
        "wait_start_over_estimate": summarize(
            ratios([r.wait_start_s for r in records], [r.start_estimate_s for r in records])
        ),
        "makespan_s": makespan,
        "last_finish_s": max(finishes) - min(clicks) if clicks and finishes else None,
        "outcomes": dict(Counter(record.outcome for record in records)),
        "requests_lost": len(lost),
        "page_exceptions": sum(record.exceptions > 0 or record.outcome == "exception" for record in records),
        "browser_errors": sum(len(record.browser_errors) for record in records),
        "distinct_requests": len({record.path for record in records}),
        "jobs_seen_by_sessions": len({record.job_id for record in records if record.job_id}),
    }


def _difference(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


# --- processes: /proc readers ---


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat these benchmarks use."""

    pid: int
    name: str  # the executable's name (comm)
    ppid: int
    cpu_ticks: int  # user + system time, in clock ticks
    nice: int
    policy: str  # scheduling policy: "normal", "batch", "idle", ...


def parse_proc_stat(text: str) -> ProcStat:
    """Parses one /proc/<pid>/stat line (the name may hold spaces and parentheses)."""
    name_start, name_end = text.index("("), text.rindex(")")
    rest = text[name_end + 2 :].split()  # rest[0] is field 3 (state), so field k is rest[k - 3]
    policy = int(rest[38]) if len(rest) > 38 else 0
    return ProcStat(
        pid=int(text[:name_start]),
        name=text[name_start + 1 : name_end],
        ppid=int(rest[1]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        nice=int(rest[16]),
        policy=SCHED_POLICIES.get(policy, str(policy)),
    )


def read_proc_stat(pid: int) -> ProcStat | None:
    """The process's stat, or None when it has ended."""
    try:
        return parse_proc_stat(pathlib.Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """The process ids of every living descendant of `pid` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := read_proc_stat(int(entry.name))) is not None:
            children.setdefault(stat.ppid, []).append(stat.pid)
    found, pending = [], list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process in MB (VmRSS), or None when it has ended."""
    kib = rss_kib(pid)
    return None if kib is None else kib / 1024


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (shared pages counted in each)."""
    return sum(rss_mb(member) or 0.0 for member in [pid, *descendants(pid)])


def command_line(pid: int) -> str:
    """The process's command line, or "" when it has ended."""
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its living descendants."""
    stats = [read_proc_stat(member) for member in [pid, *descendants(pid)]]
    return sum(stat.cpu_ticks for stat in stats if stat) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(pid: int, *, busy_cores: float = QUIET_CORES, max_s: float = QUIET_MAX_S) -> float:
    """Waits until a process tree uses less than `busy_cores` cores for two seconds running; returns seconds waited.

    A server warming up its backend in the background would otherwise be measured half warm.
    """
    started = time.monotonic()
    quiet_seconds = 0
    used = tree_cpu_s(pid)
    while quiet_seconds < 2 and time.monotonic() - started < max_s:
        time.sleep(1.0)
        now = tree_cpu_s(pid)
        quiet_seconds = quiet_seconds + 1 if now - used < busy_cores else 0
        used = now
    return time.monotonic() - started


# --- the machine ---


def machine_facts() -> dict[str, Any]:
    """CPU model, AVX-512 (what `grep -c avx512 /proc/cpuinfo` prints), cores, memory, versions and load."""
    facts = read_machine_facts()
    return {
        "cpu_model": facts.cpu_model,
        "avx512_lines_in_cpuinfo": facts.avx512_lines,
        "logical_cores": facts.logical_cores,
        "usable_cores": facts.usable_cores,
        "ram_gb": facts.ram_gb,
        "load_average_1min": facts.load_average[0],
        "python": facts.python,
        "streamlit": _version("streamlit"),
        "playwright": _version("playwright"),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- the server ---


@contextlib.contextmanager
def streamlit_server(folder: pathlib.Path, extra_env: Mapping[str, str] | None = None) -> Iterator[StreamlitServer]:
    """Runs the app on a free loopback port with its run store and log in `folder`; always ends it.

    Worker processes it started and left behind are ended too (`benchmarks.harness.launch_streamlit`).
    """
    env = {**os.environ, "GPUX_RUNS_DB": str(folder / RUNS_DB_NAME), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    try:
        with launch_streamlit(
            folder / SERVER_LOG_NAME, env, start_timeout_s=SERVER_START_TIMEOUT_S, stop_timeout_s=SERVER_STOP_TIMEOUT_S
        ) as server:
            yield server
    except ServerStartError as error:
        raise SystemExit(str(error)) from None


def log_findings(
    log_path: pathlib.Path, phase_ends: Mapping[str, int] | None = None, excerpt_lines: int = 25
) -> dict[str, Any]:
    """The server log's length, its "Traceback" lines (per phase) and the first few tracebacks (for the JSON file).

    Args:
        log_path: The server's log.
        phase_ends: Phase name -> the log's line count when that phase ended, in order; the tracebacks are
            counted per phase too, so a reader can tell the class's from the shutdown's.
        excerpt_lines: Lines kept from the start of each of the first three tracebacks.
    """
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    starts = [index for index, line in enumerate(lines) if "Traceback" in line]
    per_phase, begin = {}, 0
    for phase, end in (phase_ends or {}).items():
        per_phase[phase] = sum(begin <= start < end for start in starts)
        begin = end
    return {
        "lines": len(lines),
        "tracebacks": len(starts),
        "tracebacks_per_phase": per_phase,
        "excerpts": ["\n".join(lines[start : start + excerpt_lines]) for start in starts[:3]],
    }


def store_counts(db_path: pathlib.Path) -> dict[str, Any]:
    """Rows in the run store: runs, the jobs they belong to, and the jobs table's rows when it has one."""
    if not db_path.exists():
        return {"runs": 0, "run_jobs": 0, "run_statuses": {}, "jobs": None}
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        runs = connection.execute("SELECT job_id, status FROM runs").fetchall() if "runs" in tables else []
        jobs = connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] if "jobs" in tables else None
    finally:
        connection.close()
    return {
        "runs": len(runs),
        "run_jobs": len({job_id for job_id, _ in runs}),
        "run_statuses": dict(Counter(status for _, status in runs)),
        "jobs": jobs,
    }


# --- the browser ---


def check_chromium() -> None:
    """Exits with the install command when Debian's Chromium is missing."""
    if not CHROMIUM.exists():
        raise SystemExit(
            f"{CHROMIUM} is missing: install it with `sudo apt-get install chromium` (`make system-deps`)."
        )


async def launch_browser(playwright: Any) -> Any:
    """One headless Debian Chromium for every session."""
    check_chromium()
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CLASS_CHROMIUM_ARGS, headless=True)


async def page_seconds(page: Any, script: str, arg: Any, timeout_s: float) -> float:
    """Waits until a page probe returns a time (ms since navigation start) and returns it in seconds."""
    handle = await page.wait_for_function(script, arg=arg, polling=POLL_MS, timeout=timeout_s * 1000)
    return await handle.json_value() / 1000


async def next_train_state(page: Any, previous: str, timeout_s: float) -> dict[str, Any]:
    """Waits until the Train page's job state differs from `previous`; returns it (see TRAIN_STATE_JS)."""
    handle = await page.wait_for_function(
        TRAIN_STATE_JS, arg=previous, polling=STATE_POLL_MS, timeout=max(timeout_s, 0.1) * 1000
    )
    return await handle.json_value()


async def open_session(page: Any, url: str, record: SessionRecord, samples: int, timeout_s: float) -> None:
    """Opens the session's link and times its first render; then checks the sample limit and reads the estimates."""
    from playwright.async_api import Error as PlaywrightError

    try:
        await page.goto(f"{url}/{record.path}", wait_until="commit", timeout=timeout_s * 1000)
        record.render_s = await page_seconds(page, HEADING_JS, None, timeout_s)
        record.interactive_s = await page_seconds(page, INTERACTIVE_JS, TRAIN_BUTTON, timeout_s)
        box = page.locator(SAMPLE_INPUT)
        if await box.count() and (await box.input_value()).replace(",", "") != str(samples):
            record.samples_fixed = True
            await box.fill(str(samples))
            await box.press("Enter")
            await page.wait_for_function(
                "(n) => location.search.includes('samples=' + n)", arg=samples, timeout=timeout_s * 1000
            )
            await page_seconds(page, INTERACTIVE_JS, TRAIN_BUTTON, timeout_s)
        record.estimates = estimates_in_text(await page.locator(MAIN).inner_text())
        record.outcome = "not clicked"
    except PlaywrightError as error:
        record.message = f"the page did not become usable within {timeout_s:.0f} s: {str(error)[:200]}"
    record.exceptions = await page.locator(EXCEPTION).count()


async def press_train(page: Any, record: SessionRecord, timeout_s: float) -> None:
    """Clicks the session's Train button, noting when."""
    from playwright.async_api import Error as PlaywrightError

    record.clicked_at = time.time()
    try:
        await page.locator(TRAIN_BUTTON).click(timeout=timeout_s * 1000)
    except PlaywrightError as error:
        record.outcome, record.message = "click failed", str(error)[:300]
        return
    record.outcome = "clicked"


async def follow_job(page: Any, record: SessionRecord, deadline: float) -> None:
    """Watches the session's page from its click until its job ends, vanishes or the deadline passes."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    previous = "idle"
    while True:
        timeout = deadline - time.time()
        gone = previous == "idle" and record.shown_at is not None  # it was shown, queued or running, and is not now
        try:
            state = await next_train_state(page, previous, min(timeout, VANISH_S) if gone else timeout)
        except PlaywrightTimeout:
            record.outcome = "vanished" if gone else "timeout"
            break
        except PlaywrightError as error:  # the tab crashed or was closed
            record.outcome, record.message = "browser error", str(error)[:300]
            return
        record.job_id = state["job"] or record.job_id
        if state["name"] == "queued":
            record.shown_at = record.shown_at or state["t"]
            record.start_estimate_s = _start_estimate(state["text"], record.start_estimate_s)
        elif state["name"] == "running":
            record.shown_at = record.shown_at or state["t"]
            record.started_at = record.started_at or state["t"]
        elif state["name"] in FINAL_STATES:
            record.started_at = record.started_at or state["t"]
            record.finished_at = state["t"]
            record.outcome, record.message = state["name"], readable_message(state["text"])
            break
        previous = state["name"]
    record.exceptions = await page.locator(EXCEPTION).count()
    if record.outcome != "done":
        record.page_text = (await page.locator(MAIN).inner_text())[:1500]
        record.connection = await page.evaluate(CONNECTION_JS)


def readable_message(text: str) -> str:
    """A page message without its icon's name (Material icons are words in the text: "check_circle")."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not ICON_NAME.fullmatch(line.strip())]
    return " ".join(lines)[:300]


def _start_estimate(text: str, known: float | None) -> float | None:
    """The first "about N" of a queue message (a later, shorter one would only be the countdown)."""
    if known is not None:
        return known
    found = estimates_in_text(text)
    return found[0]["seconds"] if found else None


async def run_class(url: str, records: list[SessionRecord], args: argparse.Namespace, server: StreamlitServer) -> dict:
    """Opens every session together, presses Train in all, follows every job; returns memory and CPU figures."""
    from playwright.async_api import async_playwright

    server_pid, log_path = server.pid, server.log_path
    figures: dict[str, Any] = {}
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        figures["chromium"] = browser.version
        figures["rss_start_mb"] = rss_mb(server_pid)
        try:
            if not args.cold:
                figures["warm_up"] = await warm_up(browser, url, args.render_timeout)
                figures["settle_after_warm_up_s"] = wait_until_quiet(server_pid)
            figures["rss_before_mb"] = rss_mb(server_pid)
            pages = []
            for record in records:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                page.on("pageerror", lambda error, record=record: record.browser_errors.append(str(error)[:300]))
                pages.append(page)
            cpu = _cpu_counters(server_pid)
            log(f"opening {len(records)} sessions at once")
            await asyncio.gather(
                *(
                    open_session(p, url, r, args.samples, args.render_timeout)
                    for p, r in zip(pages, records, strict=True)
                )
            )
            figures["rss_after_render_mb"] = rss_mb(server_pid)
            figures["log_lines_after_render"] = _line_count(log_path)
            figures["tree_rss_after_render_mb"] = tree_rss_mb(server_pid)
            figures["cpu_s_render"] = _cpu_since(server_pid, cpu)
            ready = [(p, r) for p, r in zip(pages, records, strict=True) if r.outcome == "not clicked"]
            log(f"{len(ready)} sessions usable; pressing Train in all")
            cpu = _cpu_counters(server_pid)
            await asyncio.gather(*(press_train(p, r, args.render_timeout) for p, r in ready))
            deadline = time.time() + args.timeout
            await asyncio.gather(*(follow_job(p, r, deadline) for p, r in ready if r.outcome == "clicked"))
            figures["cpu_s_jobs"] = _cpu_since(server_pid, cpu)
            figures["rss_after_jobs_mb"] = rss_mb(server_pid)
            figures["tree_rss_after_jobs_mb"] = tree_rss_mb(server_pid)
            figures["log_lines_after_jobs"] = _line_count(log_path)
            for page in pages:  # as students closing their tabs: each session's connection ends normally
                await page.context.close()
        finally:
            await browser.close()
        figures["log_lines_after_close"] = _line_count(log_path)
    return figures


async def warm_up(browser: Any, url: str, timeout_s: float) -> dict[str, float]:
    """One visit to the Train page before the class arrives, as a teacher's check would; returns its times.

    The server's first page imports what every later page shares, which would otherwise count as the class's.
    """
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{url}/train", wait_until="commit", timeout=timeout_s * 1000)
        render_s = await page_seconds(page, HEADING_JS, None, timeout_s)
        return {
            "render_s": render_s,
            "interactive_s": await page_seconds(page, INTERACTIVE_JS, TRAIN_BUTTON, timeout_s),
        }
    finally:
        await context.close()


def _line_count(path: pathlib.Path) -> int:
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


def _cpu_counters(server_pid: int) -> tuple[float, float, float]:
    """CPU seconds so far of the server's tree and of this script's own tree (the browser), and the wall clock."""
    return tree_cpu_s(server_pid), tree_cpu_s(os.getpid()), time.monotonic()


def _cpu_since(server_pid: int, before: tuple[float, float, float]) -> dict[str, float]:
    server, browser, wall = _cpu_counters(server_pid)
    return {
        "wall": wall - before[2],
        "server_tree": server - before[0],
        "script_and_browser": browser - before[1],
    }


def print_summary(result: dict[str, Any]) -> None:
    """The figures a person reads, then one row per session."""
    summary, memory, store, log_info = result["summary"], result["memory"], result["store"], result["server_log"]
    args = result["arguments"]
    machine = result["machine"]
    print(
        f"\nMachine: {machine['cpu_model']}, {machine['usable_cores']} cores, {machine['ram_gb']} GB, "
        f"AVX-512 lines {machine['avx512_lines_in_cpuinfo']}; Chromium {result.get('chromium')}"
    )
    kinds = Counter(record["kind"] for record in result["sessions"])
    print(
        f"Sessions: {summary['sessions']} ({kinds['preset']} same preset, {kinds['distinct']} distinct models), "
        f"{args['samples']} samples, {args['epochs']} epoch(s), on {args['device']}; server up in "
        f"{result['server_start_s']:.1f} s, settled after {result['server_settle_s']:.1f} s more"
    )
    warm = result["warm_up"]
    if warm:
        print(f"Warm-up visit (not counted): heading {warm['render_s']:.2f} s, usable {warm['interactive_s']:.2f} s")
    print(f"First render: {_stats(summary['render_s'])}; usable: {_stats(summary['interactive_s'])}")
    print(
        f"Server memory: {memory['rss_start_mb']:.0f} MB at start, {memory['rss_before_mb']:.0f} MB before the class, "
        f"{memory['rss_after_render_mb']:.0f} MB after the "
        f"pages drew, {memory['rss_after_jobs_mb']:.0f} MB after the jobs: "
        f"{memory['mb_per_session_render']:.1f} MB per session (with workers: "
        f"{memory['tree_rss_after_jobs_mb']:.0f} MB)"
    )
    print(f"Wait click -> running: {_stats(summary['wait_start_s'])}; -> finished: {_stats(summary['wait_done_s'])}")
    print(
        f"Estimates: {summary['sessions_shown_an_estimate']} of {summary['sessions']} sessions were shown one; "
        f"finished / estimated: {_stats(summary['wait_done_over_estimate'], 'x')}; started / estimated: "
        f"{_stats(summary['wait_start_over_estimate'], 'x')}"
    )
    makespan, last = summary["makespan_s"], summary["last_finish_s"]
    if makespan is not None:
        print(f"Makespan (first click -> last job finished): {makespan:.1f} s")
    else:
        print(f"Makespan: - (not every job finished; the last that did, {_seconds(last)} after the first click)")
    print(
        f"Errors: {result['errors']} ({summary['page_exceptions']} pages with an exception, {log_info['tracebacks']} "
        f"tracebacks in the server log {log_info['tracebacks_per_phase']}; {summary['browser_errors']} JavaScript "
        "errors); requests lost: "
        f"{summary['requests_lost']} (outcomes {summary['outcomes']})"
    )
    print(
        f"Coalescing: {summary['sessions']} sessions, {summary['distinct_requests']} distinct requests, "
        f"{summary['jobs_seen_by_sessions']} job ids seen by the sessions; the store holds {store['runs']} runs of "
        f"{store['run_jobs']} jobs (jobs table: {store['jobs']})"
    )
    cpu = result["cpu"]
    for phase in ("cpu_s_render", "cpu_s_jobs"):
        if phase in cpu:
            c = cpu[phase]
            print(
                f"CPU during {phase[6:]}: {c['wall']:.1f} s wall, server and workers {c['server_tree']:.1f} s, "
                f"this script and the browser {c['script_and_browser']:.1f} s"
            )
    print()
    columns = [
        ("index", "#", ""),
        ("kind", "request", ""),
        ("render_s", "render s", ".2f"),
        ("interactive_s", "usable s", ".2f"),
        ("estimate_shown_s", "shown est s", ".1f"),
        ("start_estimate_s", "start est s", ".1f"),
        ("wait_start_s", "to running s", ".1f"),
        ("wait_done_s", "to done s", ".1f"),
        ("outcome", "outcome", ""),
        ("job_id", "job", ""),
    ]
    print_table(result["sessions"], columns)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _stats(stats: Mapping[str, Any], unit: str = " s") -> str:
    if not stats["count"]:
        return "-"
    return f"median {stats['median']:.2f}{unit}, max {stats['max']:.2f}{unit} (n = {stats['count']})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_chromium()
    links = session_links(args.sessions, args.samples, args.epochs, args.device)
    records = [SessionRecord(index, link.kind, link.path) for index, link in enumerate(links)]
    machine = machine_facts()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="class-load-"))
    extra_env = {"GPUX_MAX_QUEUE": str(args.sessions)} if args.sessions > DEFAULT_QUEUE_LIMIT else {}
    started = time.monotonic()
    try:
        with streamlit_server(folder, extra_env) as server:
            log(f"server {server.url} (pid {server.pid}) answered after {server.started_s:.1f} s; letting it settle")
            settle_s = wait_until_quiet(server.pid)
            figures = asyncio.run(run_class(server.url, records, args, server))
            phases = {name: figures[f"log_lines_after_{name}"] for name in ("render", "jobs", "close")}
            log_info = log_findings(server.log_path, phases)
            store = store_counts(folder / RUNS_DB_NAME)
            server_start_s = server.started_s
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    summary = summarize_class(records)
    sessions = len(records)
    rss_before = figures.get("rss_before_mb") or 0.0
    memory = {
        "rss_start_mb": figures.get("rss_start_mb"),
        "rss_before_mb": rss_before,
        "rss_after_render_mb": figures.get("rss_after_render_mb") or 0.0,
        "rss_after_jobs_mb": figures.get("rss_after_jobs_mb") or 0.0,
        "tree_rss_after_render_mb": figures.get("tree_rss_after_render_mb"),
        "tree_rss_after_jobs_mb": figures.get("tree_rss_after_jobs_mb") or 0.0,
    }
    memory["mb_per_session_render"] = (memory["rss_after_render_mb"] - rss_before) / sessions
    memory["mb_per_session_jobs"] = (memory["rss_after_jobs_mb"] - rss_before) / sessions
    errors = summary["page_exceptions"] + log_info["tracebacks"]
    result = {
        "benchmark": "class_load",
        "command": " ".join([pathlib.Path(sys.executable).name, *sys.argv]),
        "arguments": {
            key: str(value) if isinstance(value, pathlib.Path) else value for key, value in vars(args).items()
        },
        "server_env": extra_env,
        "machine": machine,
        "chromium": figures.get("chromium"),
        "server_start_s": server_start_s,
        "server_settle_s": settle_s,
        "warm_up": figures.get("warm_up"),
        "wall_s": time.monotonic() - started,
        "summary": summary,
        "memory": memory,
        "cpu": {key: value for key, value in figures.items() if key.startswith("cpu_s_")},
        "errors": errors,
        "server_log": log_info,
        "store": store,
        "server_folder": str(folder) if args.keep else None,
        "sessions": [record.to_dict() for record in records],
    }
    print_summary(result)
    write_json(args.json, result)
    log(f"done in {result['wall_s']:.0f} s")
    return 0 if errors == 0 and summary["requests_lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
