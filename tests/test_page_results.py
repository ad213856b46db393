"""AppTest of the Results page over a seeded run store: charts, default comparison, picking runs, filters, CSV."""

from __future__ import annotations

import datetime
import json

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from lib.device_run import DeviceRun
from lib.presets import PRESETS
from lib.store import RunStore
from tests.conftest import REPO_ROOT
from tests.helpers.runs import device_run
from ui.keys import Key

APP = str(REPO_ROOT / "streamlit_app.py")


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
    return next(frame.value for frame in at.dataframe if "Samples" in frame.value.columns)


def chart_titles(at: AppTest) -> list[str]:
    """Each chart's title and its subtitle, if any, as one line."""
    return [f"{spec['title']['text']} {spec['title'].get('subtitle', '')}".strip() for spec in charts(at)]


def chart_rows(at: AppTest, title: str) -> list[dict]:
    """The rows a chart draws (Streamlit sends chart data beside the spec), found by a part of its title."""
    specs = [(chart, json.loads(chart.proto.spec)) for chart in at.get("vega_lite_chart")]
    ((element, spec),) = [(chart, spec) for chart, spec in specs if title in json.dumps(spec.get("title"))]
    name = (spec.get("data") or spec["layer"][0]["data"])["name"]
    (dataset,) = [dataset for dataset in element.proto.datasets if dataset.name == name]
    return convert_arrow_bytes_to_pandas_df(dataset.data.data).to_dict("records")


def caption_texts(at: AppTest) -> list[str]:
    return [caption.value for caption in at.caption]


def download_labels(at: AppTest) -> dict[str, str]:
    """Each download button's label by its key (AppTest has no typed element for them; the id ends with the key)."""
    return {button.proto.id.rpartition("-")[2]: button.proto.label for button in at.get("download_button")}


def test_empty_store_points_to_training(runs_db):
    at = open_results()
    assert "No runs yet" in at.info[0].value
    assert not charts(at)


def test_store_with_gpu_runs_compares_cpu_vs_gpu_by_default_in_six_charts(seeded_store):
    at = open_results()
    cpu_vs_gpu = seeded_store.runs(job_id="job-a")["id"].tolist()  # not the latest job (job-b, one CPU run)
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == cpu_vs_gpu
    assert (
        "Default view. The latest CPU and GPU runs of Fashion-MNIST, as in the tutorial "
        "(cpu:0 vs gpu:0, the same settings otherwise)." in caption_texts(at)
    )
    titles = chart_titles(at)
    assert len(titles) == 6
    assert any("Total training time" in title for title in titles)
    assert "Time per epoch Epoch 1 includes compilation." in titles
    assert {row["series"] for row in chart_rows(at, "Total training time")} == {"cpu:0", "gpu:0"}
    captions = caption_texts(at)
    assert "gpu:0 took 5.00 s, 4.6x less than cpu:0 (23.0 s)" in " ".join(captions)
    assert "gpu:0 trained 7.0x as many per second as cpu:0" in " ".join(captions)
    assert any(caption.startswith("The loss curves overlap: within 0.1%") for caption in captions)
    assert not any("should almost overlap" in caption for caption in captions)
    gap = next(block.value for block in at.markdown if "fixed cost" in block.value)
    assert gap.startswith("**Why the total is only 4.6x shorter when throughput is 7.0x higher:**")
    assert "Of gpu:0's 5.00 s, 2.00 s (40%) is fixed cost" in gap


@pytest.fixture
def cpu_only_store(runs_db) -> RunStore:
    """A CPU-only server: the seed at batch 32 and 1,024, a CIFAR-10 run, and the tuned preset last."""
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    store.record(seed.with_changes(batch_size=1024), device_run("cpu:0", [4.0, 1.0, 1.0]), job_id="job-b")
    store.record(PRESETS["cifar10-seed"].spec, device_run("cpu:0", [20.0, 15.0]), preset="cifar10-seed", job_id="job-c")
    tuned = PRESETS["fashion-tuned"].spec
    store.record(tuned, device_run("cpu:0", [3.0, 0.5, 0.5]), preset="fashion-tuned", job_id="job-d")
    return store


def test_cpu_only_store_compares_runs_that_differ_in_batch_size_by_default(cpu_only_store):
    at = open_results()
    pair = cpu_only_store.runs(job_id=["job-a", "job-b"])["id"].tolist()
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == pair
    reason = next(caption for caption in caption_texts(at) if caption.startswith("Default view."))
    assert "no GPU run is stored" in reason and "one setting only, batch size" in reason
    assert [row["series"] for row in chart_rows(at, "Training throughput")] == ["batch 32", "batch 1,024"]
    assert len(charts(at)) == 6
    joined = " ".join(caption_texts(at))
    assert "batch 1,024 took 6.00 s, 3.8x less than batch 32 (23.0 s)" in joined
    assert "Expected: the runs differ in batch size" in joined or "yet they learned alike" in joined
    gap = next(block.value for block in at.markdown if "fixed cost" in block.value)
    assert "Of batch 1,024's 6.00 s, 3.00 s (50%) is fixed cost" in gap


def test_a_latest_job_on_two_devices_is_compared_by_default(cpu_only_store):
    tuned = PRESETS["fashion-tuned"].spec
    both = [
        cpu_only_store.record(tuned, device_run(device, [3.0, 1.0, 1.0]), preset="fashion-tuned", job_id="job-e")
        for device in ("cpu:0", "gpu:0")
    ]
    at = open_results()
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == both
    assert (
        "Default view. The latest job trained Fashion-MNIST, tuned for the GPU on cpu:0 and gpu:0: "
        "its devices side by side." in caption_texts(at)
    )


def test_the_picker_and_the_preset_filter_show_preset_titles(seeded_store):
    at = open_results()
    picker = at.multiselect(key=Key.RESULTS_COMPARE)
    assert any("Fashion-MNIST, as in the tutorial · batch 32" in option for option in picker.options)
    assert not any("fashion-seed" in option for option in picker.options)
    assert "Fashion-MNIST, tuned for the GPU" in at.multiselect(key=Key.RESULTS_PRESET).options
    assert "Fashion-MNIST, as in the tutorial" in set(history(at)["Model"])


def generated_run(device: str, epoch_s: list[float]):
    run = device_run(device, epoch_s)
    run.synthetic = True
    run.test_accuracy = 0.1
    return run


def test_generated_data_shows_no_accuracy_in_the_table_and_the_charts(runs_db):
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-a")
    store.record(seed, generated_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", job_id="job-b")
    at = open_results()
    table = history(at)
    assert list(table["Data"]) == ["generated", "real"]
    assert list(table["Test accuracy"]) == ["— (generated data)", "80.0%"]
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == store.runs()["id"].tolist()  # they differ in the data
    titles = chart_titles(at)
    assert "Test accuracy No bar for generated data: its labels are random." in titles
    rows = {row["series"]: row for row in chart_rows(at, "Test accuracy")}
    assert rows["generated data"]["test_accuracy_text"] == "no accuracy: generated data, random labels"
    assert pd.isna(rows["generated data"]["test_accuracy"])
    assert {row["data"] for row in chart_rows(at, "Training accuracy")} == {"real"}


def test_only_generated_runs_draw_no_accuracy_chart(runs_db):
    store = RunStore()
    store.record(PRESETS["fashion-seed"].spec, generated_run("cpu:0", [9.0, 7.0, 7.0]), job_id="job-a")
    store.record(PRESETS["fashion-seed"].spec, generated_run("gpu:0", [3.0, 1.0, 1.0]), job_id="job-a")
    at = open_results()
    assert len(charts(at)) == 4
    assert not any("accuracy" in title.lower() for title in chart_titles(at))
    assert any("the labels are random, so accuracy means nothing" in info.value for info in at.info)


def test_picking_runs_of_two_jobs_compares_them(seeded_store):
    at = open_results()
    ids = seeded_store.runs(job_id=["job-a", "job-b"])["id"].tolist()
    at.multiselect(key=Key.RESULTS_COMPARE).set_value(ids).run()
    assert not at.exception
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == ids
    total = next(spec for spec in charts(at) if "Total training time" in json.dumps(spec.get("title")))
    assert total["layer"][1]["encoding"]["text"]["field"] == "speedup_text"
    assert {row["series"] for row in chart_rows(at, "Total training time")} == {
        "Fashion-MNIST, as in the tutorial · cpu:0",
        "Fashion-MNIST, as in the tutorial · gpu:0",
        "Fashion-MNIST, tuned for the GPU · cpu:0",
    }
    assert any(caption.startswith("Your pick. Clear it to see the default again") for caption in caption_texts(at))


def test_session_job_is_the_default_comparison(seeded_store):
    at = open_results({Key.JOB_ID: "job-a"})
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == seeded_store.runs(job_id="job-a")["id"].tolist()


def test_history_lists_every_run_newest_first_with_a_csv_download(seeded_store):
    at = open_results()
    table = history(at)
    assert len(table) == 5
    assert list(table["Run"]) == sorted(seeded_store.runs()["id"], reverse=True)
    assert "failed" in set(table["Status"])
    assert download_labels(at)[Key.RESULTS_DOWNLOAD] == "Download CSV"


def test_the_compared_runs_can_be_taken_home_as_a_script_and_a_notebook(seeded_store):
    at = open_results()
    labels = download_labels(at)
    assert labels[Key.RESULTS_SCRIPT] == "Download Python script"
    assert labels[Key.RESULTS_NOTEBOOK] == "Download notebook"
    assert not at.get("selectbox") or all(box.key != Key.RESULTS_TAKE_HOME_RUNS for box in at.selectbox)


def test_compared_runs_of_different_settings_pick_the_runs_one_script_reproduces(runs_db):
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    real = store.record(seed, device_run("cpu:0", [9.0, 7.0, 7.0]), job_id="job-a")
    generated = store.record(seed, generated_run("cpu:0", [9.0, 7.0, 7.0]), job_id="job-b")
    at = open_results()
    picker = at.selectbox(key=Key.RESULTS_TAKE_HOME_RUNS)
    assert sorted(picker.options) == sorted([f"#{real} cpu:0", f"#{generated} cpu:0"])
    picker.select_index(1).run()
    assert not at.exception
    assert Key.RESULTS_SCRIPT in download_labels(at) and Key.RESULTS_NOTEBOOK in download_labels(at)


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


def learned_run(device: str, accuracy: float, confusion: list[list[int]]) -> DeviceRun:
    run = device_run(device, [3.0, 1.0, 1.0])
    run.test_accuracy = accuracy
    run.confusion = confusion
    run.sample_predictions = [{"index": 0, "true": 9, "predicted": 9}, {"index": 1, "true": 2, "predicted": 4}]
    return run


def confusion_with(true: int, predicted: int, count: int) -> list[list[int]]:
    """50 test images per class, all right except `count` of class `true` taken for `predicted`."""
    confusion = [[50 if row == column else 0 for column in range(10)] for row in range(10)]
    confusion[true][true], confusion[true][predicted] = 50 - count, count
    return confusion


def test_what_the_model_learned_shows_the_most_accurate_runs_confusion_matrix_and_test_images(runs_db):
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, learned_run("cpu:0", 0.8, confusion_with(2, 4, 12)), preset="fashion-seed", job_id="job-a")
    store.record(seed, learned_run("gpu:0", 0.9, confusion_with(6, 0, 11)), preset="fashion-seed", job_id="job-a")
    at = open_results()
    assert "What the model learned" in [header.value for header in at.subheader]
    picker = at.selectbox(key=Key.RESULTS_LEARNED_RUN)
    assert picker.value == store.runs(device="gpu:0")["id"].iloc[0]  # the most accurate run
    assert '"Shirt" is most often taken for "T-shirt/top": 11 of its 50 test images.' in " ".join(caption_texts(at))
    assert {row["predicted_class"] for row in chart_rows(at, "Confusion matrix")} >= {"Shirt", "T-shirt/top"}
    (images,) = at.get("image")
    assert images.captions == ["✓ Ankle boot / Ankle boot", "✗ Coat / Pullover"]

    picker.set_value(store.runs(device="cpu:0")["id"].iloc[0]).run()
    assert not at.exception
    assert '"Pullover" is most often taken for "Coat": 12 of its 50 test images.' in " ".join(caption_texts(at))


def test_generated_data_gets_a_note_instead_of_a_confusion_matrix(runs_db):
    store = RunStore()
    store.record(PRESETS["fashion-seed"].spec, generated_run("cpu:0", [9.0, 7.0, 7.0]), job_id="job-a")
    at = open_results()
    assert "What the model learned" not in [header.value for header in at.subheader]
    assert any(info.value.startswith("No confusion matrix for generated data") for info in at.info)
    assert not any("Confusion matrix" in title for title in chart_titles(at))


def cluster_machine(name: str, gpus: tuple[str, ...] = ()) -> dict:
    """The hardware stored with a run on a cluster's node: the worker's description plus the node's name."""
    return {
        "cpu_model": "Test CPU",
        "logical_cores": 8,
        "ram_bytes": 16 * 2**30,
        "gpus": list(gpus),
        "host": f"ip-{name}",
        "node": name,
        "node_id": f"id-{name}",
    }


@pytest.fixture
def two_machines_store(runs_db) -> RunStore:
    """A run stored before runs kept a machine name, then the seed on machine-1's CPU and machine-2's GPU."""
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    old = {"cpu_model": "Old CPU", "logical_cores": 2, "gpus": []}
    store.record(PRESETS["cifar10-seed"].spec, device_run("cpu:0", [20.0, 15.0]), preset="cifar10-seed", hardware=old)
    store.record(
        seed, device_run("cpu:0", [9.0, 7.0, 7.0]), preset="fashion-seed", hardware=cluster_machine("machine-1")
    )
    machine_2 = cluster_machine("machine-2", ("NVIDIA L4",))
    store.record(seed, device_run("gpu:0", [3.0, 1.0, 1.0]), preset="fashion-seed", hardware=machine_2)
    return store


def machines(at: AppTest) -> pd.DataFrame:
    return next(frame.value for frame in at.dataframe if "Host" in frame.value.columns)


def test_each_run_says_its_machine_and_compared_runs_are_named_by_it(two_machines_store):
    at = open_results()
    assert list(history(at)["Machine"]) == ["machine-2", "machine-1", "this server"]
    table = machines(at)
    assert list(table["Machine"]) == ["machine-1", "machine-2", "this server"]
    assert list(table["Host"]) == ["ip-machine-1", "ip-machine-2", "—"]
    assert table["CPU, RAM and GPUs"][1] == "Test CPU, 8 logical cores, 16.0 GiB RAM, GPUs: NVIDIA L4"
    assert list(table["Runs"]) == [1, 1, 1]
    pair = two_machines_store.runs(device=["cpu:0", "gpu:0"], dataset="fashion_mnist")["id"].tolist()
    assert at.multiselect(key=Key.RESULTS_COMPARE).value == pair  # the CPU and GPU runs, on two machines
    assert any("they also differ in machine" in caption for caption in caption_texts(at))
    assert {row["series"] for row in chart_rows(at, "Total training time")} == {
        "machine-1 · cpu:0",
        "machine-2 · gpu:0",
    }
    options = at.multiselect(key=Key.RESULTS_COMPARE).options
    assert any(option.startswith(f"#{pair[1]} gpu:0 on machine-2 · ") for option in options)


def test_the_machine_filter_keeps_the_runs_of_the_chosen_machines(two_machines_store):
    at = open_results()
    assert at.multiselect(key=Key.RESULTS_MACHINE).options == ["machine-1", "machine-2", "this server"]
    at.multiselect(key=Key.RESULTS_MACHINE).set_value(["machine-2", "this server"]).run()
    assert not at.exception
    assert list(history(at)["Machine"]) == ["machine-2", "this server"]
    assert list(machines(at)["Machine"]) == ["machine-2", "this server"]
    compared = at.multiselect(key=Key.RESULTS_COMPARE)
    assert not any(" on machine-1 " in option for option in compared.options)


def test_runs_of_one_machine_offer_no_machine_filter_and_old_runs_are_this_servers(seeded_store):
    at = open_results()
    assert set(history(at)["Machine"]) == {"this server"}  # stored without a host name
    assert all(box.key != Key.RESULTS_MACHINE for box in at.multiselect)
    assert not any("Host" in frame.value.columns for frame in at.dataframe)
    assert not any(" on this server " in option for option in at.multiselect(key=Key.RESULTS_COMPARE).options)
