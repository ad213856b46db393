"""Hostile links against a running server: its memory, and the time of a page view, hostile against normal links.

The benchmark makes `--count` hostile links from `--seed`, so the same seed gives the same links. They hold
huge, negative, NaN and infinite numbers, other scripts' digits, `1_000`, repeated parameters, markdown,
LaTeX and HTML, 5,000-character values, long comma lists and unknown names. It makes as many normal links
too: small valid models like those the app's own share links write. Hostile and normal views alternate in one
headless Chromium page (Debian's, through Playwright), which is reused for every view. Each view is timed
from the navigation until the page heading shows and until the page script has finished. The server's
resident memory (VmRSS) is read after a few warm-up views, once it has stopped growing (the server imports
the backend in the background after its first page), and again after the last view, with its peak (VmHWM);
`benchmarks.harness` reads both.

By default the script starts its own `streamlit run streamlit_app.py` on a free port on 127.0.0.1 (as the
browser tests do), with its run store in a temporary folder, and counts "Traceback" in that server's log.
`--url` uses a server that is already running instead; `--pid` then names its process for the memory
figures.

    .venv/bin/python benchmarks/hostile_links.py --count 500 --json hostile_links.json
    .venv/bin/python benchmarks/hostile_links.py --url http://127.0.0.1:8501 --pid 12345 --count 100
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    launch_streamlit,
    peak_rss_kib,
    read_machine_facts,
    rss_kib,
)
from lib.links import KNOWN_PARAMS, RunSettings, spec_to_query_params  # noqa: E402
from lib.spec import ModelSpec  # noqa: E402

PAGE_PATH = "build"
PAGE_HEADING = "Build a model"
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
WARNING = '[data-testid="stAlertContentWarning"]'
SERVER_START_TIMEOUT_S = 180
PAGE_TIMEOUT_MS = 120_000  # a view that never draws its heading counts as failed instead of hanging
WARM_UP_VIEWS = 3  # normal views before the first memory reading (the first view imports Keras)
SETTLE_STEP_S = 3.0  # memory is "settled" once two readings this far apart differ by less than SETTLE_KIB
SETTLE_KIB = 2048
SETTLE_TIMEOUT_S = 240  # the server imports the backend in the background after its first page
DEFAULT_COUNT = 500
DEFAULT_SEED = 18  # issue 18

MARKDOWN_PAYLOADS = (
    "[x](https://example.com)",
    "**b**",
    "$x$",
    "$$\\int x$$",
    ":red[t]",
    ":material/home:",
    "<b>b</b>",
    "<script>alert(1)</script>",
    "`c`",
    "# h",
    "~~s~~",
    "a|b",
    "![i](https://example.com/i.png)",
)
NUMBER_PAYLOADS = (
    str(10**30),
    "100000000",
    "-1",
    "-99999999999",
    "0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "1e-999",
    "\u0663",  # Arabic-Indic three
    "\uff13",  # full-width three
    "1_000",
    "+5",
    " 5",
    "5.0",
    "0x10",
    "",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=positive_int, default=DEFAULT_COUNT, help="hostile links")
    parser.add_argument(
        "--normal-every", type=positive_int, default=1, help="one normal view before every N hostile ones (default 1)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the links (same seed, same links)")
    parser.add_argument("--url", help="a running server's base URL; without it the script starts its own")
    parser.add_argument("--pid", type=positive_int, help="with --url: the server's process id, for its memory")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.pid is not None and args.url is None:
        parser.error("--pid goes with --url (a started server's process is known)")
    return args


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def hostile_value(rng: random.Random) -> str | list[str]:
    """One hostile value: a bad number, markdown, a very long text, a long list or a repeated parameter."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(NUMBER_PAYLOADS)
    if kind == 1:
        return rng.choice(MARKDOWN_PAYLOADS)
    if kind == 2:
        return rng.choice(("9", "x", "*", "[a](b)", "\u0663")) * rng.choice((1000, 5000))
    if kind == 3:
        return ",".join(str(rng.randrange(-5, 10**6)) for _ in range(rng.choice((9, 100, 1000))))
    if kind == 4:  # the last value is the one Streamlit gives: markdown, which no parameter accepts
        return [rng.choice(NUMBER_PAYLOADS + MARKDOWN_PAYLOADS) for _ in range(rng.randrange(1, 4))] + [
            rng.choice(MARKDOWN_PAYLOADS)
        ]
    return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 40)))


def hostile_links(count: int, seed: int) -> list[dict[str, str | list[str]]]:
    """`count` hostile query mappings, the same for the same seed.

    Each link sets 1 to 8 parameters, known names (most often) or unknown ones, to hostile values.
    """
    rng = random.Random(seed)
    links = []
    for _ in range(count):
        link: dict[str, str | list[str]] = {}
        for _ in range(rng.randrange(1, 9)):
            if rng.random() < 0.8:
                name = rng.choice(KNOWN_PARAMS)
            else:
                name = rng.choice((*MARKDOWN_PAYLOADS, "colour", "x" * 3000, f"p{rng.randrange(10**6)}"))
            link[name] = hostile_value(rng)
        links.append(link)
    return links


def normal_links(count: int, seed: int) -> list[dict[str, str]]:
    """`count` valid links to small models, as the app's own share links write them."""
    rng = random.Random(seed + 1)
    links = []
    for _ in range(count):
        spec = ModelSpec(
            hidden_units=(rng.choice((32, 64, 128, 256, 500)),) * rng.randrange(1, 6),
            epochs=rng.randrange(1, 6),
            batch_size=rng.choice((32, 64, 128)),
        )
        links.append(spec_to_query_params(spec, RunSettings(devices=("cpu:0",), sample_limit=rng.choice((300, 1000)))))
    return links


def page_url(base_url: str, params: dict[str, Any]) -> str:
    """The Build page's address with the link's parameters (a list repeats its parameter)."""
    return f"{base_url.rstrip('/')}/{PAGE_PATH}?{urlencode(params, doseq=True)}"


# --- the server ------------------------------------------------------------------------------------------


def memory_kib(pid: int | None) -> dict[str, int] | None:
    """The process's resident memory now and its peak, in KiB (0 when unknown); None without pid."""
    if pid is None:
        return None
    return {"rss": rss_kib(pid) or 0, "peak": peak_rss_kib(pid) or 0}


def settled_memory_kib(pid: int | None) -> dict[str, int] | None:
    """The memory reading once the server's resident memory has stopped growing (the background import)."""
    reading = memory_kib(pid)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while reading is not None and time.monotonic() < deadline:
        time.sleep(SETTLE_STEP_S)
        previous, reading = reading, memory_kib(pid)
        if abs(reading["rss"] - previous["rss"]) < SETTLE_KIB:
            break
    return reading


def machine_facts() -> dict[str, Any]:
    """CPU model, AVX-512 (as `grep -c avx512 /proc/cpuinfo` says), cores, load and versions."""
    facts = read_machine_facts()
    return {
        "cpu": facts.cpu_model,
        "avx512_lines_in_cpuinfo": facts.avx512_lines,
        "cpus": facts.logical_cores,
        "load_average": list(facts.load_average),
        "python": facts.python,
        "platform": facts.platform,
    }


# --- the views -------------------------------------------------------------------------------------------


def view(page: Any, url: str) -> dict[str, Any]:
    """Opens one link; returns seconds to the heading and to the end of the script, and the notices' length."""
    from playwright.sync_api import Error as PlaywrightError

    started = time.perf_counter()
    try:
        page.goto(url)
        page.get_by_role("heading", name=PAGE_HEADING, level=1).wait_for(timeout=PAGE_TIMEOUT_MS)
        to_heading = time.perf_counter() - started
        page.wait_for_selector(SCRIPT_DONE, timeout=PAGE_TIMEOUT_MS)
        to_done = time.perf_counter() - started
    except PlaywrightError as error:
        return {"ok": False, "error": str(error).splitlines()[0]}
    texts = page.locator(WARNING).all_inner_texts()
    lines = [line for text in texts for line in text.splitlines()]
    return {
        "ok": True,
        "to_heading_s": to_heading,
        "to_done_s": to_done,
        "warning_chars": max(map(len, texts), default=0),  # the whole box: a header and up to MAX_NOTICES lines
        "notice_chars": max(map(len, lines), default=0),  # its longest line: one notice
    }


def summary(seconds: list[float]) -> dict[str, float | None]:
    """Median, 90th percentile and maximum of some durations (None when there are none)."""
    if not seconds:
        return {"median": None, "p90": None, "max": None}
    ordered = sorted(seconds)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
    }


def run_views(base_url: str, pid: int | None, count: int, seed: int, normal_every: int = 1) -> dict[str, Any]:
    """Interleaves normal and hostile views in one reused page; returns timings, memory and failures."""
    from playwright.sync_api import sync_playwright

    normal_count = -(-count // normal_every)
    hostile, normal = hostile_links(count, seed), normal_links(normal_count + WARM_UP_VIEWS, seed)
    normal_after_warm_up = iter(normal[WARM_UP_VIEWS:])
    results: dict[str, list[dict[str, Any]]] = {"hostile": [], "normal": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            for link in normal[:WARM_UP_VIEWS]:
                view(page, page_url(base_url, link))
            before = settled_memory_kib(pid)
            started = time.perf_counter()
            for index, hostile_link in enumerate(hostile):
                if index % normal_every == 0:
                    results["normal"].append(view(page, page_url(base_url, next(normal_after_warm_up))))
                results["hostile"].append(view(page, page_url(base_url, hostile_link)))
            elapsed = time.perf_counter() - started
            after = memory_kib(pid)
        finally:
            browser.close()
    return {
        "count": count,
        "seed": seed,
        "elapsed_s": elapsed,
        "memory_kib": {"before": before, "after": after},
        **{kind: _kind_summary(views) for kind, views in results.items()},
    }


def _kind_summary(views: list[dict[str, Any]]) -> dict[str, Any]:
    done = [result for result in views if result["ok"]]
    return {
        "views": len(views),
        "failed": len(views) - len(done),
        "errors": sorted({result["error"] for result in views if not result["ok"]})[:5],
        "to_heading_s": summary([result["to_heading_s"] for result in done]),
        "to_done_s": summary([result["to_done_s"] for result in done]),
        "longest_warning_chars": max((result["warning_chars"] for result in done), default=0),
        "longest_notice_chars": max((result["notice_chars"] for result in done), default=0),
    }


def print_report(result: dict[str, Any]) -> None:
    """Prints the figures a person reads."""
    machine = result["machine"]
    print(f"{machine['cpu']} ({machine['cpus']} CPUs, AVX-512 lines {machine['avx512_lines_in_cpuinfo']})")
    normal_views = result["normal"]["views"]
    print(f"{result['count']} hostile and {normal_views} normal views of /{PAGE_PATH}, seed {result['seed']}")
    for kind in ("normal", "hostile"):
        part = result[kind]
        heading, done = part["to_heading_s"], part["to_done_s"]
        print(
            f"  {kind:8s} heading median {_seconds(heading['median'])}, p90 {_seconds(heading['p90'])}; "
            f"script done median {_seconds(done['median'])}, max {_seconds(done['max'])}; "
            f"failed {part['failed']}; longest warning {part['longest_warning_chars']} characters, "
            f"longest notice in it {part['longest_notice_chars']}"
        )
    memory = result["memory_kib"]
    if memory["before"] and memory["after"]:
        delta = memory["after"]["rss"] - memory["before"]["rss"]
        print(
            f"  server RSS {memory['before']['rss'] / 1024:.0f} MiB -> {memory['after']['rss'] / 1024:.0f} MiB "
            f"({delta / 1024:+.1f} MiB), peak {memory['after']['peak'] / 1024:.0f} MiB"
        )
    if result.get("tracebacks_in_log") is not None:
        print(f"  tracebacks in the server log: {result['tracebacks_in_log']}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status (1 when a view failed or the log has a traceback)."""
    args = parse_args(argv)
    machine = machine_facts()
    if args.url:
        result = run_views(args.url, args.pid, args.count, args.seed, args.normal_every)
        result |= {"url": args.url, "tracebacks_in_log": None}
    else:
        with tempfile.TemporaryDirectory(prefix="hostile-links-") as work_dir:
            log_path = pathlib.Path(work_dir) / "server.log"
            env = {**os.environ, "GPUX_RUNS_DB": str(pathlib.Path(work_dir) / "runs.sqlite")}
            with launch_streamlit(log_path, env, start_timeout_s=SERVER_START_TIMEOUT_S) as server:
                result = run_views(server.url, server.pid, args.count, args.seed, args.normal_every)
            result |= {"url": "started by the script", "tracebacks_in_log": log_path.read_text().count("Traceback")}
    result["machine"] = machine
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    failed = result["hostile"]["failed"] + result["normal"]["failed"] + (result["tracebacks_in_log"] or 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
