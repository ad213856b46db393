"""How fast every page draws for another visitor while a job trains, against the same page on an idle server.

The script starts `streamlit run streamlit_app.py` (own run store and log, loopback only, as
benchmarks/class_load.py does) and opens each page of the app's router (home, gpu, datasets, build, train,
results, and board once the app has it) in a fresh tab of one visitor's headless Chromium: a new session each
time, with the browser's cache warm as a returning student's. From navigation start it times:

    content      the page's heading visible (its first meaningful content)
    interactive  the page's script finished, no placeholder left and its main widget usable

Passes alternate, --repeats times: the idle server, then the server while a job trains. The job comes from a
second browser session (the "trainer") that opens --trainer-link on the Train page, presses Train and watches
its progress as a person would; it is long, and cancelled once the pass is over (a job that ends early is
started again, and the pages timed meanwhile are marked). A first unrecorded pass warms every page. Target while
training, per page: the median at most max(3 s, 1.5 x the idle median). While the job trains, the script also
reads the niceness and scheduling policy of the server's child processes (the worker, any warm spare) from
/proc/<pid>/stat. No new repeat starts once another would take the passes past --budget seconds (480 by
default), so a run fits a 10-minute slot. Run from the repository root:

    .venv/bin/python benchmarks/responsiveness.py --json benchmarks/results/cpu-tf/responsiveness.json
    .venv/bin/python benchmarks/responsiveness.py --repeats 1 --pages home,build   # a smoke run

Exit status 1 when a page showed an exception or the server logged a traceback. Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.class_load import (  # noqa: E402
    EXCEPTION,
    HEADING_JS,
    INTERACTIVE_JS,
    TRAIN_BUTTON,
    TRAIN_STATE_JS,
    check_chromium,
    command_line,
    descendants,
    launch_browser,
    log_findings,
    machine_facts,
    next_train_state,
    page_seconds,
    positive_float,
    positive_int,
    read_proc_stat,
    streamlit_server,
    summarize,
    wait_until_quiet,
)
from benchmarks.perf_report import log, print_table, write_json  # noqa: E402
from ui.keys import Key  # noqa: E402

ROUTER = REPO_ROOT / "streamlit_app.py"
URL_PATH = re.compile(r"""url_path\s*=\s*["']([\w-]+)["']""")
FALLBACK_PAGES = ("home", "gpu", "datasets", "build", "train", "results")
# The widget that makes each page usable; a page not named here counts once its script finished.
PAGE_WIDGETS = {
    "gpu": f".st-key-{Key.MATMUL_RUN} button",
    "datasets": f".st-key-{Key.DATASET}",
    "build": f".st-key-{Key.PRESET}",
    "train": TRAIN_BUTTON,
}
CANCEL_BUTTON = f".st-key-{Key.CANCEL} button"
# Two Dense(256) layers on all 60,000 Fashion-MNIST images for 50 epochs: minutes on a small CPU, so one job
# covers a pass; the script cancels it afterwards.
TRAINER_LINK = "train?layers=2&units=256&batch=64&epochs=50&samples=60000&devices=cpu:0"
TARGET_FLOOR_S = 3.0  # issue 11: every page within max(3 s, 1.5 x its idle time) while a job trains
TARGET_FACTOR = 1.5
FIRST_EPOCH_WAIT_S = 120.0  # how long the trainer waits for its job's first progress line before timing anyway
STOP_WAIT_S = 60.0
PROGRESS_SHOWN_JS = """() => Array.from(document.querySelectorAll('[data-testid="stProgress"]'))
  .some((bar) => /epoch\\s*\\d/i.test(bar.innerText))"""


@dataclass
class PageTiming:
    """One visit to one page."""

    page: str  # its url path, "build"
    condition: str  # "idle" or "training"
    repeat: int
    content_s: float | None = None  # navigation start -> heading visible; None when it did not appear in time
    interactive_s: float | None = None  # navigation start -> usable
    exceptions: int = 0
    training_throughout: bool | None = None  # the trainer's job was running before and after this visit


# --- pure parts: pages, arguments, targets, summaries ---


def router_pages(source: str) -> list[str]:
    """The url paths of the router's pages in their order (today's six when the source names none)."""
    found = list(dict.fromkeys(URL_PATH.findall(source)))
    return found or list(FALLBACK_PAGES)


def parse_args(
    argv: Sequence[str] | None = None, available_pages: Sequence[str] = FALLBACK_PAGES
) -> argparse.Namespace:
    """Reads the command line; exits with status 2 and a message when a value is out of range."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=3, help="idle + training passes, 1 to 10")
    parser.add_argument("--pages", help=f"comma-separated url paths (default: all of {', '.join(available_pages)})")
    parser.add_argument("--page-timeout", type=positive_float, default=60.0, help="seconds one page may take")
    parser.add_argument(
        "--budget", type=positive_float, default=480.0, help="seconds of passes after which no new repeat starts"
    )
    parser.add_argument("--trainer-link", default=TRAINER_LINK, help="the Train link of the job that trains")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.repeats > 10:
        parser.error(f"--repeats {args.repeats} is more than 10")
    if args.page_timeout > 600:
        parser.error("--page-timeout is at most 600 s")
    if not args.trainer_link.startswith("train?"):
        parser.error("--trainer-link must be a Train page link, train?...")
    args.pages = [page.strip() for page in (args.pages or ",".join(available_pages)).split(",") if page.strip()]
    unknown = [page for page in args.pages if page not in available_pages]
    if unknown or not args.pages:
        parser.error(f"unknown page(s) {', '.join(unknown) or '(none)'}; the app has {', '.join(available_pages)}")
    return args


def target_s(idle_median_s: float | None) -> float | None:
    """The longest a page may take while a job trains: max(3 s, 1.5 x its idle median); None without one."""
    if idle_median_s is None:
        return None
    return max(TARGET_FLOOR_S, TARGET_FACTOR * idle_median_s)


def summarize_pages(timings: Sequence[PageTiming], pages: Sequence[str]) -> list[dict[str, Any]]:
    """Per page: medians idle and while training (visits with the job running throughout), targets, verdicts."""
    rows = []
    for page in pages:
        idle = [t for t in timings if t.page == page and t.condition == "idle"]
        busy = [t for t in timings if t.page == page and t.condition == "training" and t.training_throughout]
        row: dict[str, Any] = {"page": page, "idle_visits": len(idle), "training_visits": len(busy)}
        for measure in ("content_s", "interactive_s"):
            idle_stats = summarize([getattr(t, measure) for t in idle])
            busy_stats = summarize([getattr(t, measure) for t in busy])
            target = target_s(idle_stats["median"])
            busy_median = busy_stats["median"]
            timed_out = any(getattr(t, measure) is None for t in busy)
            row[f"idle_{measure}"] = idle_stats["median"]
            row[f"training_{measure}"] = busy_median
            row[f"training_{measure}_max"] = busy_stats["max"]
            row[f"target_{measure}"] = target
            row[f"meets_{measure}"] = (
                None
                if target is None or not busy
                else busy_median is not None and busy_median <= target and not timed_out
            )
        rows.append(row)
    return rows


# --- the server's processes ---


def child_priorities(server_pid: int, interval_s: float = 1.0) -> list[dict[str, Any]]:
    """The server's descendants (workers, spares) with niceness, scheduling policy and cores used over `interval_s`."""
    ticks = os.sysconf("SC_CLK_TCK")
    before = {pid: read_proc_stat(pid) for pid in descendants(server_pid)}
    time.sleep(interval_s)
    rows = []
    for pid, first in before.items():
        last = read_proc_stat(pid)
        if first is None or last is None:
            continue
        rows.append(
            {
                "pid": pid,
                "ppid": last.ppid,
                "command": command_line(pid)[-160:],
                "nice": last.nice,
                "policy": last.policy,
                "cpu_cores": (last.cpu_ticks - first.cpu_ticks) / ticks / interval_s,
            }
        )
    return rows


# --- the browser ---


async def time_page(context: Any, url: str, page_path: str, timeout_s: float) -> PageTiming:
    """Opens one page in a new tab (a new session) and times its content and its widgets; closes the tab."""
    from playwright.async_api import Error as PlaywrightError

    timing = PageTiming(page_path, "", 0)
    tab = await context.new_page()
    try:
        await tab.goto(f"{url}/{page_path}", wait_until="commit", timeout=timeout_s * 1000)
        timing.content_s = await page_seconds(tab, HEADING_JS, None, timeout_s)
        timing.interactive_s = await page_seconds(tab, INTERACTIVE_JS, PAGE_WIDGETS.get(page_path), timeout_s)
    except PlaywrightError as error:  # a timeout, or the tab crashed
        log(f"  {page_path}: not usable within {timeout_s:.0f} s ({str(error).splitlines()[0][:120]})")
    finally:
        with contextlib.suppress(PlaywrightError):
            timing.exceptions = await tab.locator(EXCEPTION).count()
        await tab.close()
    log(f"  {page_path}: content {_seconds(timing.content_s)}, usable {_seconds(timing.interactive_s)}")
    return timing


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


class Trainer:
    """The second browser session: keeps one job training through the Train page, as a person would."""

    def __init__(self, page: Any, url: str, link: str, timeout_s: float):
        self.page, self.url, self.link, self.timeout_s = page, url, link, timeout_s
        self.jobs_started = 0
        self.events: list[dict[str, Any]] = []  # what happened to its jobs, with the browser's clock

    async def state(self) -> dict[str, Any]:
        """The job state its page shows now (see TRAIN_STATE_JS)."""
        return await self.page.evaluate(TRAIN_STATE_JS, "")

    async def is_training(self) -> bool:
        return (await self.state())["name"] == "running"

    async def ensure_training(self) -> None:
        """Starts a job unless one is running; waits for its first progress line (bounded)."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        if self.jobs_started and await self.is_training():
            return
        if not self.jobs_started:
            await self.page.goto(f"{self.url}/{self.link}", wait_until="commit", timeout=self.timeout_s * 1000)
        try:
            await page_seconds(self.page, INTERACTIVE_JS, TRAIN_BUTTON, self.timeout_s)
        except PlaywrightTimeout:
            shown = await self.state()
            raise SystemExit(
                f"The trainer's Train page was not usable within {self.timeout_s:.0f} s; it shows: "
                f"{shown['name']} {shown['text'][:500]}"
            ) from None
        before = await self.state()  # the last job's result stays on the page until the click's rerun
        await self.page.locator(TRAIN_BUTTON).click()
        self.jobs_started += 1
        state = before
        while state["name"] != "running":
            state = await next_train_state(self.page, state["name"], self.timeout_s)
            self.events.append(state)
            stale = state["name"] in ("done", "failed") and state["job"] == before["job"]
            if state["name"] in ("done", "failed", "refused", "exception") and not stale:
                raise SystemExit(f"The trainer's job did not start: {state['name']} {state['text'][:300]}")
        try:
            await self.page.wait_for_function(PROGRESS_SHOWN_JS, polling=250, timeout=FIRST_EPOCH_WAIT_S * 1000)
        except PlaywrightTimeout:
            log("  the trainer's job showed no epoch yet; timing anyway")

    async def stop(self) -> None:
        """Cancels the running job and waits until its page shows it ended."""
        if not await self.is_training():
            return
        await self.page.locator(CANCEL_BUTTON).click()
        state = {"name": "running"}
        while state["name"] in ("running", "queued", "idle"):
            state = await next_train_state(self.page, state["name"], STOP_WAIT_S)
            self.events.append(state)


async def run_passes(url: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    """The warm-up pass, then idle and training passes in turn; returns timings, priorities and trainer events."""
    from playwright.async_api import async_playwright

    timings: list[PageTiming] = []
    priorities: list[dict[str, Any]] = []
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        try:
            visitor = await browser.new_context(viewport={"width": 1280, "height": 900})
            trainer_context = await browser.new_context(viewport={"width": 1280, "height": 900})
            trainer = Trainer(await trainer_context.new_page(), url, args.trainer_link, args.page_timeout * 3)
            log("warm-up pass (not recorded)")
            for page in args.pages:
                await time_page(visitor, url, page, args.page_timeout)
            started, repeat_s = time.monotonic(), 0.0
            for repeat in range(args.repeats):
                if repeat and time.monotonic() - started + repeat_s > args.budget:
                    log(f"stopping after {repeat} repeat(s): another would pass --budget {args.budget:.0f} s")
                    break
                repeat_started = time.monotonic()
                log(f"pass {repeat + 1}/{args.repeats}: idle")
                wait_until_quiet(server_pid)
                for page in args.pages:
                    timing = await time_page(visitor, url, page, args.page_timeout)
                    timing.condition, timing.repeat = "idle", repeat
                    timings.append(timing)
                log(f"pass {repeat + 1}/{args.repeats}: while a job trains")
                await trainer.ensure_training()
                priorities.append({"repeat": repeat, "processes": child_priorities(server_pid)})
                for page in args.pages:
                    await trainer.ensure_training()
                    timing = await time_page(visitor, url, page, args.page_timeout)
                    timing.condition, timing.repeat = "training", repeat
                    timing.training_throughout = await trainer.is_training()
                    timings.append(timing)
                await trainer.stop()
                repeat_s = time.monotonic() - repeat_started
            return {"timings": timings, "priorities": priorities, "trainer_jobs": trainer.jobs_started}
        finally:
            await browser.close()


def print_summary(result: dict[str, Any]) -> None:
    """The per-page table and the worker priorities."""
    machine = result["machine"]
    print(
        f"\nMachine: {machine['cpu_model']}, {machine['usable_cores']} cores, {machine['ram_gb']} GB, "
        f"AVX-512 lines {machine['avx512_lines_in_cpuinfo']}; {result['repeats_done']} repeat(s); "
        f"trainer {result['arguments']['trainer_link']} ({result['trainer_jobs']} job(s))\n"
    )
    columns = [
        ("page", "page", ""),
        ("idle_content_s", "idle content s", ".2f"),
        ("training_content_s", "training content s", ".2f"),
        ("idle_interactive_s", "idle usable s", ".2f"),
        ("training_interactive_s", "training usable s", ".2f"),
        ("training_interactive_s_max", "max s", ".2f"),
        ("target_interactive_s", "target s", ".2f"),
        ("meets_interactive_s", "met", ""),
        ("training_visits", "visits", ""),
    ]
    print_table(result["pages"], columns)
    print("\nThe server's child processes while the job trained (nice, policy, cores used over 1 s):")
    for sample in result["priorities"]:
        for process in sample["processes"]:
            print(
                f"  pass {sample['repeat'] + 1}: pid {process['pid']} nice {process['nice']} {process['policy']} "
                f"{process['cpu_cores']:.2f} cores  {process['command'][-70:]}"
            )
    print(
        f"\nErrors: {result['errors']} ({result['page_exceptions']} visits with an exception, "
        f"{result['server_log']['tracebacks']} tracebacks in the server log)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, router_pages(ROUTER.read_text()))
    check_chromium()
    machine = machine_facts()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="responsiveness-"))
    started = time.monotonic()
    try:
        with streamlit_server(folder) as server:
            log(f"server {server.url} (pid {server.pid}) answered after {server.started_s:.1f} s")
            server_nice = read_proc_stat(server.pid)
            measured = asyncio.run(run_passes(server.url, args, server.pid))
            log_info = log_findings(server.log_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    timings = measured["timings"]
    exceptions = sum(timing.exceptions > 0 for timing in timings)
    result = {
        "benchmark": "responsiveness",
        "command": " ".join([pathlib.Path(sys.executable).name, *sys.argv]),
        "arguments": {
            key: str(value) if isinstance(value, pathlib.Path) else value for key, value in vars(args).items()
        },
        "machine": machine,
        "server_nice": server_nice.nice if server_nice else None,
        "wall_s": time.monotonic() - started,
        "repeats_done": len({timing.repeat for timing in timings if timing.condition == "training"}),
        "pages": summarize_pages(timings, args.pages),
        "priorities": measured["priorities"],
        "trainer_jobs": measured["trainer_jobs"],
        "page_exceptions": exceptions,
        "errors": exceptions + log_info["tracebacks"],
        "server_log": log_info,
        "timings": [asdict(timing) for timing in timings],
    }
    print_summary(result)
    write_json(args.json, result)
    log(f"done in {result['wall_s']:.0f} s")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
