"""AppTest of the Results page over a seeded run store: charts, default comparison, picking runs, filters, CSV."""

from __future__ import annotations

import datetime
import json

import pytest
from streamlit.testing.v1 import AppTest

from lib.keys import Key
from lib.presets import PRESETS
from lib.results import DeviceRun
from lib.store import RunStore
from tests.conftest import REPO_ROOT

APP = str(REPO_ROOT / "streamlit_app.py")


def device_run(device: str, epoch_s: list[float], num_train: int = 1000) -> DeviceRun:
    steady = sorted(epoch_s[1:])[len(epoch_s[1:]) // 2]
    return DeviceRun(
        device=device,
        backend="tensorflow",
        synthetic=False,
        num_train=num_train,
        num_test=500,
        epoch_s=epoch_s,
        first_epoch_s=epoch_s[0],
        steady_epoch_s=steady,
        total_s=sum(epoch_s),
        samples_per_s=num_train / steady,
        achieved_flops_per_s=1e9,
        train_loss=[1.0 - 0.1 * i for i in range(len(epoch_s))],
        train_accuracy=[0.6 + 0.05 * i for i in range(len(epoch_s))],
        test_loss=0.5,
        test_accuracy=0.8,
    )


@pytest.fixture
def seeded_store(runs_db) -> RunStore:
    """Three finished jobs: CPU vs GPU seed, CPU-only tuned on Fashion-MNIST, one on CIFAR-10; plus a failed run."""
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    store.record(seed, device_run("gpu:0", [3.0, 1.0, 1.0]), preset="fashion-seed", job_id="job-a")
    store.record(PRESETS["cifar10-seed"].spec, device_run("cpu:0", [20.0, 15.0]), preset="cifar10-seed", job_id="job-c")
    failed = DeviceRun(device="cpu:0", backend="tensorflow", synthetic=False, status="failed", error="out of memory")
    store.record(seed, failed, job_id="job-d")
    tuned = PRESETS["fashion-tuned"].spec
    store.record(tuned, device_run("cpu:0", [4.0, 2.0, 2.0]), preset="fashion-tuned", job_id="job-b")
    return store


def open_results(session: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    at.switch_page("app_pages/results.py").run()
    assert not at.exception
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def history(at: AppTest):
    return next(frame.value for frame in at.dataframe if "Run" in frame.value.columns)


def test_empty_store_points_to_training(runs_db):
    at = open_results()
    assert "No runs yet" in at.info[0].value
    assert not charts(at)


def test_latest_job_is_compared_by_default_in_six_charts(seeded_store):
    at = open_results()
    latest = seeded_store.runs(job_id="job-b")["id"].tolist()
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == latest
    specs = charts(at)
    assert len(specs) == 6
    titles = [spec["title"]["text"] if isinstance(spec["title"], dict) else spec["title"] for spec in specs]
    assert any("Total training time" in title for title in titles)
    assert any("epoch 1 includes compilation" in title for title in titles)
    assert len(at.caption) >= 6
    assert all(at.caption[i].value for i in range(6))


def test_picking_runs_of_two_jobs_compares_them(seeded_store):
    at = open_results()
    ids = seeded_store.runs(job_id="job-a")["id"].tolist()
    at.multiselect(key=Key.RESULTS_COMPARE).set_value(ids).run()
    assert not at.exception
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == ids
    total = next(spec for spec in charts(at) if "Total training time" in json.dumps(spec.get("title")))
    assert total["layer"][1]["encoding"]["text"]["field"] == "speedup_text"


def test_session_job_is_the_default_comparison(seeded_store):
    at = open_results({Key.JOB_ID: "job-a"})
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == seeded_store.runs(job_id="job-a")["id"].tolist()


def test_history_lists_every_run_newest_first_with_a_csv_download(seeded_store):
    at = open_results()
    table = history(at)
    assert len(table) == 5
    assert list(table["Run"]) == sorted(seeded_store.runs()["id"], reverse=True)
    assert "failed" in set(table["Status"])
    assert at.get("download_button")[0].proto.label == "Download CSV"


@pytest.mark.parametrize(
    ("key", "value", "rows"),
    [
        (Key.RESULTS_DATASET, ["cifar10"], 1),
        (Key.RESULTS_DEVICE, ["gpu:0"], 1),
        (Key.RESULTS_PRESET, ["fashion-seed", "fashion-tuned"], 3),
    ],
)
def test_filters_narrow_the_history(seeded_store, key, value, rows):
    at = open_results()
    at.multiselect(key=key).set_value(value).run()
    assert not at.exception
    assert len(history(at)) == rows


def test_date_filter_after_the_last_run_leaves_nothing_to_draw(seeded_store):
    at = open_results()
    at.date_input(key=Key.RESULTS_DATES).set_value(datetime.date.today() + datetime.timedelta(days=2)).run()
    assert not at.exception
    assert len(history(at)) == 0
    assert "No finished run matches" in at.info[0].value
    assert not charts(at)
