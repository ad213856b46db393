"""Unit tests of the training-results chart builders and the tidy frames they draw."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lib import charts, comparison
from lib.datasets import DATASETS
from lib.device_run import DeviceRun


def _device_run(device: str, epoch_s: list[float], accuracy: float = 0.85) -> DeviceRun:
    return DeviceRun(
        device=device,
        backend="tensorflow",
        synthetic=False,
        num_train=1000,
        num_test=200,
        epoch_s=epoch_s,
        first_epoch_s=epoch_s[0],
        steady_epoch_s=sorted(epoch_s[1:] or epoch_s)[len(epoch_s[1:] or epoch_s) // 2],
        total_s=sum(epoch_s),
        samples_per_s=1000 / (sorted(epoch_s[1:] or epoch_s)[0]),
        train_loss=[1.0 / (i + 1) for i in range(len(epoch_s))],
        train_accuracy=[0.5 + 0.1 * i for i in range(len(epoch_s))],
        test_accuracy=accuracy,
    )


@pytest.fixture
def cpu_gpu_runs() -> pd.DataFrame:
    """A store-shaped frame: one job on two devices, the GPU about 7.3x faster in total."""
    frame = charts.device_runs_to_frame([_device_run("cpu:0", [8.0, 7.0, 7.0]), _device_run("gpu:0", [2.0, 0.5, 0.5])])
    frame["id"] = [1, 2]
    return frame


def test_summary_frame_labels_speedup_over_slowest(cpu_gpu_runs):
    summary = charts.run_summary_frame(cpu_gpu_runs)
    by_device = summary.set_index("device")
    assert by_device.loc["gpu:0", "speedup"] == pytest.approx(22.0 / 3.0)
    assert by_device.loc["gpu:0", "speedup_text"] == "7.3x faster"
    assert by_device.loc["cpu:0", "speedup_text"] == "baseline (slowest)"
    assert list(summary["series"]) == ["cpu:0", "gpu:0"]


def test_summary_frame_names_repeated_devices_by_run_id():
    frame = charts.device_runs_to_frame([_device_run("cpu:0", [3.0, 2.0])])
    frame = pd.concat([frame.assign(id=7), frame.assign(id=9, total_s=10.0)], ignore_index=True)
    summary = charts.run_summary_frame(frame)
    assert list(summary["series"]) == ["cpu:0 · #7", "cpu:0 · #9"]
    assert summary.loc[0, "speedup_text"] == "2.0x faster"


def test_summary_frame_names_runs_by_the_setting_that_differs():
    frame = charts.device_runs_to_frame([_device_run("cpu:0", [3.0, 2.0])])
    frame = pd.concat([frame.assign(id=1, batch_size=32), frame.assign(id=2, batch_size=1024)], ignore_index=True)
    assert list(charts.run_summary_frame(frame)["series"]) == ["batch 32", "batch 1,024"]
    assert list(charts.run_epochs_frame(frame)["series"].unique()) == ["batch 32", "batch 1,024"]


def test_summary_frame_drops_runs_without_times_and_handles_empty():
    failed = DeviceRun(device="gpu:0", backend="tensorflow", synthetic=False, status="failed", error="OOM")
    frame = charts.device_runs_to_frame([_device_run("cpu:0", [1.0]), failed])
    assert list(charts.run_summary_frame(frame)["device"]) == ["cpu:0"]
    empty = charts.run_summary_frame(pd.DataFrame())
    assert empty.empty and "speedup_text" in empty.columns


def test_epochs_frame_marks_epoch_one_as_compilation(cpu_gpu_runs):
    epochs = charts.run_epochs_frame(cpu_gpu_runs)
    assert len(epochs) == 6
    gpu = epochs[epochs["device"] == "gpu:0"].reset_index(drop=True)
    assert list(gpu["epoch"]) == [1, 2, 3]
    assert list(gpu["epoch_s"]) == [2.0, 0.5, 0.5]
    assert list(gpu["phase"]) == [charts.COMPILE_PHASE, charts.STEADY_PHASE, charts.STEADY_PHASE]
    assert gpu.loc[1, "train_loss"] == pytest.approx(0.5)


def test_epochs_frame_reads_json_results_and_short_metric_lists():
    result = {"device": "cpu:0", "epoch_s": [1.0, 2.0], "train_loss": [0.9], "train_accuracy": []}
    runs = pd.DataFrame({"id": [3], "device": ["cpu:0"], "result": [json.dumps(result)]})
    epochs = charts.run_epochs_frame(runs)
    assert list(epochs["epoch_s"]) == [1.0, 2.0]
    assert epochs.loc[0, "train_loss"] == pytest.approx(0.9)
    assert pd.isna(epochs.loc[1, "train_loss"]) and pd.isna(epochs.loc[0, "train_accuracy"])


def _layers(chart) -> list[dict]:
    spec = chart.to_dict()
    return spec.get("layer", [spec])


def _assert_every_mark_has_tooltip(chart) -> None:
    for layer in _layers(chart):
        assert layer["encoding"]["tooltip"], layer


def test_total_time_chart_writes_speedup_on_bars(cpu_gpu_runs):
    chart = charts.total_time_chart(charts.run_summary_frame(cpu_gpu_runs))
    bars, labels = _layers(chart)
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["x"]["field"] == "total_s"
    assert bars["encoding"]["x"]["title"] == "Total training time (s)"
    assert bars["encoding"]["color"]["scale"]["scheme"] == charts.COLOR_SCHEME
    assert bars["encoding"]["color"]["legend"] is None  # the run is named on the y axis
    assert labels["mark"]["type"] == "text"
    assert labels["encoding"]["text"]["field"] == "speedup_text"
    values = chart.to_dict()["datasets"]
    assert "7.3x faster" in json.dumps(values)
    _assert_every_mark_has_tooltip(chart)


def test_bar_charts_show_long_run_names_whole_one_part_a_line():
    frame = charts.device_runs_to_frame([_device_run("cpu:0", [3.0, 2.0])])
    frame = pd.concat(
        [frame.assign(id=1, batch_size=32, epochs=2), frame.assign(id=2, batch_size=1024, epochs=5)],
        ignore_index=True,
    )
    summary = charts.run_summary_frame(frame)
    assert list(summary["series"]) == ["batch 32 · 2 epochs", "batch 1,024 · 5 epochs"]
    for build in (charts.total_time_chart, charts.throughput_chart, charts.accuracy_on_test_set_chart):
        chart = build(summary)
        spec, axis = chart.to_dict(), _layers(chart)[0]["encoding"]["y"]["axis"]
        assert axis == {"labelExpr": charts.SERIES_LINES, "labelLimit": 0}  # no "…": one line per part
        assert spec["height"] == {"step": 2 * charts.SERIES_LINE_PX + 4}  # room for the two lines
        assert spec["autosize"]["type"] == "fit-x"  # the title adds to the height, not squeezes the bars


def test_epoch_time_chart_shapes_epoch_one_differently(cpu_gpu_runs):
    chart = charts.epoch_time_chart(charts.run_epochs_frame(cpu_gpu_runs))
    lines, points = _layers(chart)
    assert lines["mark"]["type"] == "line"
    assert points["encoding"]["shape"]["field"] == "phase"
    assert points["encoding"]["shape"]["scale"]["domain"] == [charts.COMPILE_PHASE, charts.STEADY_PHASE]
    assert lines["encoding"]["y"]["title"] == "Time per epoch (s)"
    assert chart.to_dict()["title"] == {"text": "Time per epoch", "subtitle": "Epoch 1 includes compilation."}
    legend = lines["encoding"]["color"]["legend"]
    assert legend["orient"] == "bottom" and legend["labelExpr"] == charts.SERIES_LINES and legend["labelLimit"] == 0
    _assert_every_mark_has_tooltip(chart)


def test_throughput_chart_uses_samples_per_second(cpu_gpu_runs):
    chart = charts.throughput_chart(charts.run_summary_frame(cpu_gpu_runs))
    bars, labels = _layers(chart)
    assert bars["encoding"]["x"]["field"] == "samples_per_s"
    assert bars["encoding"]["x"]["title"] == "Throughput (samples/s)"
    assert labels["encoding"]["text"]["format"] == ",.0f"
    _assert_every_mark_has_tooltip(chart)


@pytest.mark.parametrize(
    ("metric", "title"), [("train_loss", "Training loss"), ("train_accuracy", "Training accuracy")]
)
def test_training_curve_chart_draws_metric_per_epoch(cpu_gpu_runs, metric, title):
    chart = charts.training_curve_chart(charts.run_epochs_frame(cpu_gpu_runs), metric)
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["y"] == {**spec["encoding"]["y"], "field": metric, "title": title}
    assert spec["encoding"]["x"]["field"] == "epoch"
    assert spec["encoding"]["color"]["field"] == "series"
    _assert_every_mark_has_tooltip(chart)


def test_training_curve_chart_rejects_unknown_metric(cpu_gpu_runs):
    with pytest.raises(ValueError, match="train_loss"):
        charts.training_curve_chart(charts.run_epochs_frame(cpu_gpu_runs), "val_loss")


def test_accuracy_on_test_set_chart_uses_percent_scale(cpu_gpu_runs):
    chart = charts.accuracy_on_test_set_chart(charts.run_summary_frame(cpu_gpu_runs))
    bars, labels = _layers(chart)
    assert bars["encoding"]["x"]["field"] == "test_accuracy"
    assert bars["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert bars["encoding"]["x"]["axis"]["format"] == "%"
    assert labels["encoding"]["text"]["field"] == "test_accuracy_text"
    assert "85.0%" in json.dumps(chart.to_dict()["datasets"])
    _assert_every_mark_has_tooltip(chart)


@pytest.fixture
def real_and_generated_runs() -> pd.DataFrame:
    """One run on real data, one on generated data (random labels) with a chance-level accuracy."""
    generated = _device_run("cpu:0", [3.0, 2.0], accuracy=0.11)
    generated.synthetic = True
    frame = charts.device_runs_to_frame([_device_run("cpu:0", [3.0, 2.0]), generated])
    frame["id"] = [1, 2]
    return frame


def test_generated_data_gets_no_accuracy_bar_and_says_why(real_and_generated_runs):
    summary = charts.run_summary_frame(real_and_generated_runs)
    assert list(summary["series"]) == ["real data", "generated data"]
    assert list(summary["data"]) == ["real", "generated"]
    assert list(summary["test_accuracy_text"]) == ["85.0%", charts.GENERATED_ACCURACY_TEXT]
    assert pd.isna(summary.loc[1, "test_accuracy"])  # the chance-level 11% is not kept for any chart
    chart = charts.accuracy_on_test_set_chart(summary)
    spec = chart.to_dict()
    assert spec["title"] == {"text": "Test accuracy", "subtitle": "No bar for generated data: its labels are random."}
    (rows,) = spec["datasets"].values()
    by_series = {row["series"]: row for row in rows}
    assert by_series["generated data"]["test_accuracy"] is None  # no bar
    assert by_series["generated data"]["label_x"] == 0.0
    assert by_series["real data"]["test_accuracy"] == pytest.approx(0.85)
    tooltip_fields = {item["field"] for item in _layers(chart)[0]["encoding"]["tooltip"]}
    assert {"test_accuracy_text", "data"} <= tooltip_fields
    assert "test_accuracy" not in tooltip_fields


def test_training_accuracy_curves_leave_generated_data_out(real_and_generated_runs):
    epochs = charts.run_epochs_frame(real_and_generated_runs)
    assert set(epochs["data"]) == {"real", "generated"}
    accuracy = charts.training_curve_chart(epochs, "train_accuracy").to_dict()
    assert accuracy["title"]["subtitle"] == "Real data only: generated data has random labels."
    (rows,) = accuracy["datasets"].values()
    assert {row["data"] for row in rows} == {"real"}
    loss = charts.training_curve_chart(epochs, "train_loss").to_dict()
    (rows,) = loss["datasets"].values()
    assert {row["data"] for row in rows} == {"real", "generated"}
    assert loss["title"] == {"text": "Training loss per epoch"}


FASHION_CLASSES = DATASETS["fashion_mnist"].class_names
# 10 x 10 test images per true class: 90 right, 1 to each other class, and shirts (6) often taken for T-shirts (0).
CONFUSION = [[90 if true == predicted else 1 for predicted in range(10)] for true in range(10)]
CONFUSION[6][6], CONFUSION[6][0] = 0, 90


def test_confusion_frame_is_tidy_with_shares_of_the_true_class():
    frame = comparison.confusion_frame(CONFUSION, FASHION_CLASSES)
    assert len(frame) == 100 and frame["count"].sum() == sum(map(sum, CONFUSION))
    shirt_as_tshirt = frame[(frame["true_class"] == "Shirt") & (frame["predicted_class"] == "T-shirt/top")].iloc[0]
    assert shirt_as_tshirt["count"] == 90 and shirt_as_tshirt["share_of_true"] == pytest.approx(90 / 98)
    assert shirt_as_tshirt["outcome"] == "mixed up"
    assert set(frame.loc[frame["true_index"] == frame["predicted_index"], "outcome"]) == {"right"}


def test_confusion_caption_names_the_most_confused_pair():
    caption = comparison.confusion_caption(CONFUSION, FASHION_CLASSES)
    assert caption.startswith('"Shirt" is most often taken for "T-shirt/top": 90 of its 98 test images.')
    assert "Right overall: 810 of 989 (81.9%, the diagonal)." in caption
    perfect = [[5 if true == predicted else 0 for predicted in range(10)] for true in range(10)]
    assert comparison.confusion_caption(perfect, FASHION_CLASSES).startswith("No test image is mixed up.")


def test_sample_captions_say_predicted_then_true():
    samples = [{"index": 3, "true": 6, "predicted": 0}, {"index": 8, "true": 9, "predicted": 9}]
    assert [comparison.sample_caption(sample, FASHION_CLASSES) for sample in samples] == [
        "✗ T-shirt/top / Shirt",
        "✓ Ankle boot / Ankle boot",
    ]
    assert comparison.samples_caption(samples).endswith("1 right (✓), 1 wrong (✗).")


def test_confusion_matrix_chart_spec():
    spec = charts.confusion_matrix_chart(comparison.confusion_frame(CONFUSION, FASHION_CLASSES)).to_dict()
    cells, counts = spec["layer"]
    assert cells["mark"]["type"] == "rect" and counts["mark"]["type"] == "text"
    encoding = cells["encoding"]
    assert encoding["x"]["field"] == "predicted_class" and encoding["x"]["sort"] == list(FASHION_CLASSES)
    assert encoding["y"]["field"] == "true_class" and encoding["y"]["sort"] == list(FASHION_CLASSES)
    assert encoding["color"]["scale"]["scheme"] == charts.HEATMAP_SCHEME
    assert {tip["field"] for tip in encoding["tooltip"]} >= {"true_class", "predicted_class", "count", "share_of_true"}
    assert counts["encoding"]["text"]["field"] == "count"
    assert spec["title"]["text"] == "Confusion matrix" and "true class" in spec["title"]["subtitle"]


def test_learned_runs_keep_real_runs_with_a_matrix_most_accurate_first():
    runs = [
        _device_run("cpu:0", [1.0], accuracy=0.7),
        _device_run("gpu:0", [1.0], accuracy=0.9),
        _device_run("cpu:1", [1.0], accuracy=0.95),  # stored before matrices were kept
        _device_run("gpu:1", [1.0], accuracy=0.99),
    ]
    runs[0].confusion = runs[1].confusion = runs[3].confusion = CONFUSION
    runs[3].synthetic = True  # generated labels: no matrix worth drawing
    frame = charts.device_runs_to_frame(runs)
    assert comparison.learned_runs(frame)["device"].tolist() == ["gpu:0", "cpu:0"]
