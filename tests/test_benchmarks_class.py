"""The pure parts of the class benchmarks (`benchmarks/class_load.py`, `benchmarks/responsiveness.py`).

Argument checks, the class's links, the durations read from a page, /proc parsing and the summary statistics;
no server and no browser (the scripts themselves are run by hand, see BENCHMARKS.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse

import pytest

from benchmarks import class_load, responsiveness
from benchmarks.class_load import SessionRecord
from benchmarks.responsiveness import PageTiming
from lib.limits import ServerLimits
from lib.links import run_settings_from_query_params, spec_from_query_params
from lib.presets import PRESETS
from tests.conftest import REPO_ROOT


def query(link: class_load.SessionLink) -> dict[str, str]:
    path, _, text = link.path.partition("?")
    assert path == "train"
    return dict(urllib.parse.parse_qsl(text))


# --- arguments ---


def test_class_load_defaults_are_a_class_of_thirty_small_jobs():
    args = class_load.parse_args([])
    assert (args.sessions, args.samples, args.epochs, args.device) == (30, 500, 1, "cpu:0")
    assert args.json is None and not args.cold


@pytest.mark.parametrize(
    "argv",
    [
        ["--sessions", "0"],
        ["--sessions", str(class_load.MAX_SESSIONS + 1)],
        ["--samples", "-5"],
        ["--epochs", "0"],
        ["--timeout", "0"],
        ["--timeout", "1801"],
        ["--sessions", "many"],
    ],
)
def test_class_load_refuses_values_out_of_range(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        class_load.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_responsiveness_reads_pages_and_refuses_unknown_ones(capsys):
    args = responsiveness.parse_args(["--pages", "home, build", "--repeats", "2"], ["home", "build", "train"])
    assert args.pages == ["home", "build"] and args.repeats == 2
    assert responsiveness.parse_args([], ["home", "board"]).pages == ["home", "board"]
    bad = (["--pages", "home,nowhere"], ["--repeats", "11"], ["--budget", "0"], ["--trainer-link", "build?x=1"])
    for argv in bad:
        with pytest.raises(SystemExit):
            responsiveness.parse_args(argv, ["home", "build"])
    assert "nowhere" in capsys.readouterr().err


def test_router_pages_follow_the_router_and_include_a_board_once_it_exists():
    assert responsiveness.router_pages((REPO_ROOT / "streamlit_app.py").read_text())[:3] == ["home", "gpu", "datasets"]
    source = 'st.Page("a.py", url_path="home")\nst.Page("board.py", title="Board", url_path=\'board\')'
    assert responsiveness.router_pages(source) == ["home", "board"]
    assert responsiveness.router_pages("no pages here") == list(responsiveness.FALLBACK_PAGES)


# --- the class's links ---


def test_half_the_class_shares_the_preset_and_the_rest_ask_for_distinct_models():
    links = class_load.session_links(7, samples=400, epochs=1)
    preset = [link for link in links if link.kind == "preset"]
    distinct = [link for link in links if link.kind == "distinct"]
    assert (len(preset), len(distinct)) == (4, 3)
    assert len({link.path for link in preset}) == 1
    assert len({link.path for link in distinct}) == 3
    assert [link.kind for link in links[:3]] == ["preset", "distinct", "preset"]  # interleaved: clicks mix
    for link in links:
        params = query(link)
        assert (params["samples"], params["epochs"], params["devices"]) == ("400", "1", "cpu:0")


def test_the_links_mean_what_the_app_reads_from_them():
    limits = ServerLimits()
    preset, distinct = class_load.session_links(2, samples=500, epochs=1)
    spec, notices = spec_from_query_params(query(preset), limits, base=PRESETS["fashion-seed"].spec)
    assert notices == []
    assert spec == PRESETS["fashion-seed"].spec.with_changes(epochs=1)
    spec, notices = spec_from_query_params(query(distinct), limits, base=PRESETS["fashion-seed"].spec)
    assert notices == [] and spec.hidden_units == (class_load.DISTINCT_UNITS_FIRST,)
    settings, notices = run_settings_from_query_params(query(distinct), limits, ["cpu:0"])
    assert notices == [] and settings.devices == ("cpu:0",) and settings.sample_limit == 500


# --- what a page says ---


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0.42 s", 0.42), ("12.3 s", 12.3), ("4 min 05 s", 245.0), ("1 h 02 min", 3720.0), ("soon", None)],
)
def test_durations_as_the_app_writes_them(text, seconds):
    assert class_load.parse_duration_s(text) == seconds


def test_estimates_are_read_from_the_lines_that_say_about():
    text = (
        "Training samples\n500 samples: about 45 s here.\n"
        "Waiting in the queue: position 3, about 1 min 30 s until it starts.\nabout nothing"
    )
    found = class_load.estimates_in_text(text)
    assert [item["seconds"] for item in found] == [45.0, 90.0]
    assert found[0]["text"] == "500 samples: about 45 s here."


def test_a_message_loses_its_icon_name():
    assert class_load.readable_message("check_circle\n\nJob 005c992a0971 finished.") == "Job 005c992a0971 finished."


# --- /proc ---


def test_proc_stat_with_spaces_and_parentheses_in_the_name():
    fields = ["S", "41"] + ["0"] * 9 + ["150", "50"] + ["0"] * 3 + ["10"] + ["0"] * 21 + ["5"]
    stat = class_load.parse_proc_stat("1234 (python (worker) x) " + " ".join(fields))
    assert (stat.pid, stat.name, stat.ppid, stat.cpu_ticks, stat.nice, stat.policy) == (
        1234,
        "python (worker) x",
        41,
        200,
        10,
        "idle",
    )


def test_this_process_and_its_child_are_read_from_proc():
    stat = class_load.read_proc_stat(os.getpid())
    assert stat.pid == os.getpid() and stat.ppid == os.getppid()
    assert class_load.rss_mb(os.getpid()) > 1
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in class_load.descendants(os.getpid())
        assert class_load.read_proc_stat(child.pid).ppid == os.getpid()
    finally:
        child.kill()
        child.wait()
    assert class_load.read_proc_stat(child.pid) is None


# --- statistics ---


def test_summarize_skips_missing_values():
    assert class_load.summarize([3.0, None, 1.0, 2.0]) == {"count": 3, "median": 2.0, "min": 1.0, "max": 3.0}
    assert class_load.summarize([None]) == {"count": 0, "median": None, "min": None, "max": None}


def session(index, *, kind="preset", clicked=100.0, started=None, finished=None, outcome="done", **fields):
    path = "train?preset=fashion-seed" if kind == "preset" else f"train?units={index}"
    record = SessionRecord(index, kind, path, clicked_at=clicked, started_at=started, finished_at=finished, **fields)
    record.outcome = outcome
    return record


def test_class_summary_counts_lost_requests_and_compares_waits_with_estimates():
    records = [
        session(0, started=101.0, finished=110.0, render_s=2.0, job_id="a" * 12, start_estimate_s=2.0),
        session(1, kind="distinct", started=104.0, finished=130.0, render_s=4.0, job_id="b" * 12),
        session(2, finished=None, outcome="vanished", render_s=3.0, job_id="c" * 12),
    ]
    records[0].estimates = [{"text": "about 5 s here", "seconds": 5.0}]
    summary = class_load.summarize_class(records)
    assert summary["requests_lost"] == 1 and summary["outcomes"] == {"done": 2, "vanished": 1}
    assert summary["render_s"]["median"] == 3.0 and summary["render_s"]["max"] == 4.0
    assert summary["wait_done_s"]["max"] == 30.0
    assert summary["makespan_s"] is None  # a request was lost: there is no "last job done"
    assert summary["wait_done_over_estimate"]["median"] == pytest.approx(10.0 / 7.0)  # waited 10 s, shown 2 + 5
    assert summary["wait_start_over_estimate"]["median"] == pytest.approx(0.5)
    assert (summary["distinct_requests"], summary["jobs_seen_by_sessions"]) == (2, 3)


def test_makespan_runs_from_the_first_click_to_the_last_finish():
    records = [session(0, clicked=100.0, finished=120.0), session(1, kind="distinct", clicked=101.0, finished=150.0)]
    assert class_load.summarize_class(records)["makespan_s"] == 50.0


def test_the_target_while_training_is_three_seconds_or_one_and_a_half_idle():
    assert responsiveness.target_s(1.0) == 3.0
    assert responsiveness.target_s(4.0) == 6.0
    assert responsiveness.target_s(None) is None


def test_page_summary_uses_only_visits_while_the_job_ran_throughout():
    timings = [
        PageTiming("build", "idle", 0, content_s=1.0, interactive_s=2.0),
        PageTiming("build", "idle", 1, content_s=1.2, interactive_s=4.0),
        PageTiming("build", "training", 0, content_s=2.0, interactive_s=4.0, training_throughout=True),
        PageTiming("build", "training", 1, content_s=9.0, interactive_s=9.0, training_throughout=False),
        PageTiming("home", "idle", 0, content_s=1.0, interactive_s=1.0),
        PageTiming("home", "training", 0, content_s=None, interactive_s=None, training_throughout=True),
    ]
    build, home = responsiveness.summarize_pages(timings, ["build", "home"])
    assert build["training_visits"] == 1 and build["training_interactive_s"] == 4.0
    assert build["target_interactive_s"] == 4.5 and build["meets_interactive_s"] is True
    assert home["training_content_s"] is None and home["meets_content_s"] is False  # it never drew


def test_server_page_time_speaks_streamlits_protocol(tmp_path):
    """benchmarks/server_page_time.py's client gets a real server's pages to their end (no browser)."""
    import asyncio

    from benchmarks import server_page_time

    with class_load.streamlit_server(tmp_path) as server:
        timings = [asyncio.run(server_page_time.visit(server.url, page)) for page in ("home", "results")]
    for timing in timings:
        assert 0 < timing["content_s"] <= timing["finished_s"]


def test_server_page_time_summary_applies_the_target():
    from benchmarks import server_page_time

    visits = [
        {"page": "build", "condition": "idle", "content_s": 0.1, "finished_s": 2.4},
        {"page": "build", "condition": "training", "content_s": 0.2, "finished_s": 3.7},
        {"page": "home", "condition": "idle", "content_s": 0.1, "finished_s": 0.2},
        {"page": "home", "condition": "training", "content_s": 0.1, "finished_s": 3.1},
    ]
    rows = {row["page"]: row for row in server_page_time.summarize_pages(visits, ["build", "home"])}
    assert rows["build"]["target_finished_s"] == pytest.approx(3.6)
    assert rows["build"]["meets"] is False
    assert rows["home"]["target_finished_s"] == 3.0
    assert rows["home"]["meets"] is False
