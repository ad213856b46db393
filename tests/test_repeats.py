"""Repeats (issue 16, point 2): each device trained N times, each with its own seed; median and spread shown."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib.class_board import point_label
from lib.device_run import DeviceRun, ProgressEvent
from lib.estimates import estimate_job, estimate_request
from lib.jobs import SEEDS, JobRequest, JobState, LimitError, RunPoint
from lib.limits import ServerLimits
from lib.presets import PRESETS
from lib.repeats import repeated_runs, spread_caption, spread_frame, spread_text
from lib.repeats_charts import spread_chart
from lib.requests import check_request
from lib.runner_job import RunnerJob
from lib.spec import ModelSpec
from lib.store import RunStore
from tests.conftest import REPO_ROOT
from ui.keys import Key

from .test_runner import WAIT_S, fake_spec, make_runner, store, stored  # noqa: F401 (fixtures)

SPEC = ModelSpec(hidden_units=(16,), epochs=2, batch_size=32, seed=7)
APP = str(REPO_ROOT / "streamlit_app.py")


def request(**changes) -> JobRequest:
    values = {"spec": SPEC, "devices": ("cpu:0", "gpu:0"), "sample_limit": 500, "repeats": 3}
    return JobRequest(**{**values, **changes})


def test_repeats_go_round_the_devices_each_with_its_own_seed():
    points = request().points()

    assert [point.key for point in points] == ["cpu:0 #1", "gpu:0 #1", "cpu:0 #2", "gpu:0 #2", "cpu:0 #3", "gpu:0 #3"]
    assert [point.spec(SPEC).seed for point in points[::2]] == [7, 8, 9]
    assert RunPoint("cpu:0", repeat=2).spec(SPEC.with_changes(seed=SEEDS - 1)).seed == 0  # wraps around
    assert point_label(points[3]) == "gpu:0, run 2"
    assert [point.key for point in request(repeats=1).points()] == ["cpu:0", "gpu:0"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repeats": 0}, "from 1 to 5"),
        ({"repeats": 6}, "from 1 to 5"),
        ({"repeats": True}, "from 1 to 5"),
        ({"batch_sizes": (32, 64)}, "sweep runs each point once"),
    ],
)
def test_runs_per_device_are_bounded_and_not_for_sweeps(changes, message):
    with pytest.raises(LimitError, match=message):
        check_request(request(**changes), ServerLimits(), ("cpu:0", "gpu:0"))


def test_repeats_travel_to_the_worker_and_multiply_the_estimate(store):  # noqa: F811
    assert JobRequest.from_worker_dict(json.loads(json.dumps(request().to_worker_dict()))).repeats == 3
    once = estimate_job(SPEC, 500, ("cpu:0", "gpu:0"), store.runs(), overhead_s=2.0)

    thrice = estimate_request(request(), 500, store.runs(), overhead_s=2.0)

    assert thrice.total_s == pytest.approx(2.0 + 3 * once.training_s)


def stored_repeats(seconds: dict[str, list[float]], job_id: str = "job-r") -> pd.DataFrame:
    rows = []
    for device, totals in seconds.items():
        for number, total in enumerate(totals, start=1):
            result = DeviceRun(device, "jax", False, repeat=number).to_dict()
            rows.append({"job_id": job_id, "device": device, "status": "done", "total_s": total, "result": result})
    return pd.DataFrame(rows)


def test_with_five_runs_or_more_the_fastest_and_slowest_are_dropped():
    points = repeated_runs(stored_repeats({"cpu:0": [10.0, 11.0, 12.0, 30.0, 1.0], "gpu:0": [2.0, 2.5]}))

    spreads = spread_frame(points).set_index("device")

    assert list(points.loc[~points["kept"], "total_s"]) == [30.0, 1.0]
    cpu, gpu = spreads.loc["cpu:0"], spreads.loc["gpu:0"]
    assert (cpu["median_s"], cpu["low_s"], cpu["high_s"], cpu["kept"], cpu["trimmed"]) == (11.0, 10.0, 12.0, 3, True)
    assert cpu["spread_pct"] == pytest.approx(200 / 11)
    assert (gpu["median_s"], gpu["trimmed"]) == (2.25, False)
    assert spread_text(cpu) == "median 11.0 s over 5 runs (10.0 s-12.0 s, 18.2 %; fastest and slowest dropped)"
    caption = spread_caption(spread_frame(points))
    widest = "The widest spread is gpu:0's: a single run of it could be 22 % off another, so compare medians."
    assert caption.endswith(widest)


def test_runs_of_jobs_that_did_not_repeat_are_left_out():
    plain = pd.DataFrame(
        [
            {
                "job_id": "j",
                "device": "cpu:0",
                "status": "done",
                "total_s": 1.0,
                "result": DeviceRun("cpu:0", "jax", False).to_dict(),
            }
        ]
    )

    assert repeated_runs(plain).empty and spread_frame(repeated_runs(plain)).empty


def test_the_chart_draws_every_run_the_range_and_the_median():
    points = repeated_runs(stored_repeats({"cpu:0": [10.0, 11.0, 12.0, 30.0, 1.0]}))

    layers = spread_chart(points, spread_frame(points)).to_dict()["layer"]

    assert [layer["mark"]["type"] for layer in layers] == ["rule", "point", "tick"]
    assert layers[0]["encoding"]["x2"]["field"] == "high_s" and layers[2]["encoding"]["x"]["field"] == "median_s"


def test_a_fake_repeated_job_stores_one_row_per_run_with_its_seed(make_runner, store):  # noqa: F811
    runner = make_runner()
    job = runner.submit("a", fake_spec(), ["cpu:0"], sample_limit=100, synthetic=True, repeats=3)

    final = runner.wait(job.id, WAIT_S)

    assert final.state == JobState.DONE, final.error
    assert [run.key for run in final.results] == ["cpu:0 #1", "cpu:0 #2", "cpu:0 #3"]
    rows = stored(store, job.id)
    seeds = [spec["seed"] for spec in rows["spec"]]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    assert len(spread_frame(repeated_runs(rows))) == 1


def test_results_draw_the_repeats_of_a_repeated_job(runs_db):
    run_store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    for number, epoch_s in enumerate([3.0, 3.3, 2.9], start=1):
        for device, scale in (("cpu:0", 1.0), ("gpu:0", 0.2)):
            run = DeviceRun(device, "jax", False, num_train=6000, repeat=number)
            run.set_epoch_times([epoch_s * scale] * 2)
            run_store.record(seed.with_changes(seed=number), run, preset="fashion-seed", job_id="job-rep")

    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("app_pages/results.py").run()

    assert not at.exception
    titles = [json.loads(chart.proto.spec).get("title", {}) for chart in at.get("vega_lite_chart")]
    assert any(isinstance(title, dict) and title.get("text") == "Repeated runs" for title in titles)
    caption = next(caption.value for caption in at.caption if caption.value.startswith("cpu:0: median"))
    assert "over 3 runs" in caption and "gpu:0: median" in caption


def test_the_train_page_offers_runs_per_device_up_to_the_limit(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_MAX_REPEATS", "4")
    monkeypatch.setenv("GPUX_WARMUP", "0")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("app_pages/train.py").run()

    box = at.number_input(key=Key.REPEATS)
    assert box.value == 1 and box.max == 4


def test_the_class_board_follows_each_repeat_of_a_running_job():
    job = RunnerJob("0123456789ab", ["a"], "a", "Owl 1", request(), None, 500, 100, "jax", "k", 1.0, 0.0)
    job.apply_event(
        json.dumps({"type": "progress", "event": ProgressEvent("epoch", "gpu:0", epoch=1, repeat=2).to_dict()})
    )

    entry = job.board_entry(1, 0.0)

    assert [point.key for point in entry.points()][3] == "gpu:0 #2"
    assert entry.progress[entry.points()[3].key].epoch == 1
