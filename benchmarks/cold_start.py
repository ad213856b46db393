"""How long a freshly started server takes to show its first pages in a real browser.

For each repeat a new `streamlit run streamlit_app.py` starts on a free port (as the browser tests start
it). The clock starts when `/_stcore/health` first answers "ok"; headless Chromium (Debian's, through
Playwright, launched once before any server) then opens the home page and the clock stops when its title
and the navigation are visible. The same browser then opens a second page (/build) in a new tab and
times it from the navigation to its title and navigation (the backend may still be loading in the
background then). Both figures cover each page's first run in that server process: the imports the router
and the page pay for.

Run from the repository root (the browser tests' system packages, Chromium included, must be installed):

    .venv/bin/python benchmarks/cold_start.py --repeats 3
    .venv/bin/python benchmarks/cold_start.py --repo /tmp/other-checkout --json

`--repo` measures another checkout of the app with this repository's virtual environment (its own `.venv`
when it has one).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, launch_streamlit, read_machine_facts  # noqa: E402

# Headless on loopback; the file watcher as the checkout's own config sets it (its "Inotify" lines are counted).
SERVER_FLAGS = ("--server.headless", "true", "--server.address", LOOPBACK)
HEALTH_POLL_S = 0.05  # how often the health endpoint is asked while the server starts
SERVER_START_TIMEOUT_S = 180  # the server process's own start (imports Streamlit) on a busy machine
PAGE_TIMEOUT_MS = 120_000  # a page that never shows fails the repeat instead of hanging
PAGES = (  # (label, path, the page's title)
    ("home", "", "CPU vs GPU deep learning"),
    ("build", "/build", "Build a model"),
)
NAVIGATION_LINK = "What is a GPU?"  # a link of the router's navigation, present on every page


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers to measure")
    parser.add_argument("--repo", type=pathlib.Path, default=REPO_ROOT, help="checkout of the app to run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args()


def machine_facts() -> dict[str, object]:
    """CPU model, cores and whether the CPU has AVX-512: what the figures depend on."""
    facts = read_machine_facts()
    return {
        "cpu_model": facts.cpu_model,
        "logical_cores": facts.logical_cores,
        "avx512": facts.avx512_lines > 0,
        "platform": facts.platform,
        "python": facts.python,
    }


def python_for(repo: pathlib.Path) -> str:
    """The checkout's own virtual environment's Python, else this one."""
    candidate = repo / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def time_until_shown(context, url: str, title: str) -> float:
    """Opens `url` in a new tab; returns once the page's title and the navigation are visible.

    Returns:
        The monotonic time at which Streamlit's own page (its app shell, before any script output) was there.
    """
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_selector('[data-testid="stApp"]', state="attached", timeout=PAGE_TIMEOUT_MS)
    shell_at = time.monotonic()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    navigation = page.get_by_test_id("stSidebarNav").get_by_role("link", name=NAVIGATION_LINK)
    expect(navigation).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    return shell_at


def measure_one_server(browser, repo: pathlib.Path) -> dict[str, float]:
    """One fresh server: seconds from health-ok to the home page shown, then seconds for /build.

    `<page>_shell_s` is the part of `<page>_s` until Streamlit's app shell was in the page: what the
    browser and Streamlit cost before the app's script could draw anything.
    """
    with tempfile.TemporaryDirectory(prefix="cold-start-") as folder:
        log_path = pathlib.Path(folder) / "server.log"
        env = {**os.environ, "GPUX_RUNS_DB": str(pathlib.Path(folder) / "runs.sqlite")}
        with launch_streamlit(
            log_path,
            env,
            flags=SERVER_FLAGS,
            repo=repo,
            python=python_for(repo),
            start_timeout_s=SERVER_START_TIMEOUT_S,
            poll_s=HEALTH_POLL_S,
        ) as server:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            try:
                figures = {}
                started_at = server.healthy_at
                for label, path, title in PAGES:
                    shell_at = time_until_shown(context, server.url + path, title)
                    figures[f"{label}_s"] = time.monotonic() - started_at
                    figures[f"{label}_shell_s"] = shell_at - started_at
                    started_at = time.monotonic()
            finally:
                context.close()
            log = log_path.read_text(errors="replace")
            figures["log_tracebacks"] = log.count("Traceback")
            figures["log_inotify_lines"] = log.count("Inotify")
    return figures


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, min and max of each figure over the repeats."""
    summary = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def main() -> None:
    args = parse_args()
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for _ in range(args.repeats):
                runs.append(measure_one_server(browser, args.repo.resolve()))
        finally:
            browser.close()
    report = {"machine": machine_facts(), "repo": str(args.repo.resolve()), "runs": runs, "summary": summarise(runs)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    facts = report["machine"]
    print(f"{facts['cpu_model']}, {facts['logical_cores']} logical cores, AVX-512: {facts['avx512']}")
    print(f"{'figure':<20} {'median':>8} {'min':>8} {'max':>8}")
    for key, values in report["summary"].items():
        print(f"{key:<20} {values['median']:>8.2f} {values['min']:>8.2f} {values['max']:>8.2f}")


if __name__ == "__main__":
    main()
