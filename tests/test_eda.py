"""EDA numbers (class counts, histograms, mean images, preprocessing) and the Datasets page charts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib import eda
from lib.charts import CHANNEL_COLORS, class_distribution_chart, pixel_histogram_chart
from lib.datasets import Dataset, get_info, synthetic_dataset


def tiny_dataset(name: str = "fashion_mnist") -> Dataset:
    """A hand-made dataset with known labels: train has 3 x class 0, 1 x class 2; test has 2 x class 9."""
    info = get_info(name)
    shape = info.image_shape
    x_train = np.zeros((4, *shape), dtype=np.uint8)
    x_train[0] = 10
    x_train[1] = 20
    x_train[2] = 30
    x_train[3] = 255
    y_train = np.array([0, 0, 0, 2], dtype=np.uint8)
    x_test = np.full((2, *shape), 7, dtype=np.uint8)
    y_test = np.array([9, 9], dtype=np.uint8)
    return Dataset(info, x_train, y_train, x_test, y_test, source="test", synthetic=True)


def test_class_counts_per_split_and_class():
    counts = eda.class_counts(tiny_dataset())

    assert list(counts.columns) == ["split", "class_index", "class_name", "count", "share"]
    assert len(counts) == 20
    train = counts[counts["split"] == "train"].set_index("class_index")
    test = counts[counts["split"] == "test"].set_index("class_index")
    assert train["count"].tolist() == [3, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert test.loc[9, "count"] == 2 and test.loc[9, "class_name"] == "Ankle boot"
    assert train.loc[0, "share"] == pytest.approx(0.75)
    assert train.loc[2, "class_name"] == "Pullover"


def test_pixel_histogram_grayscale_bins():
    images = np.array([[[0, 0], [7, 8]], [[255, 255], [128, 9]]], dtype=np.uint8)

    histogram = eda.pixel_histogram(images, bins=32)

    assert set(histogram["channel"]) == {"gray"}
    assert len(histogram) == 32
    assert histogram["count"].sum() == images.size
    by_start = histogram.set_index("bin_start")["count"]
    assert by_start[0] == 3  # 0, 0, 7
    assert by_start[8] == 2  # 8, 9
    assert by_start[128] == 1 and by_start[248] == 2
    assert histogram["share"].sum() == pytest.approx(1.0)
    assert histogram["bin_end"].iloc[-1] == 256


def test_pixel_histogram_rgb_has_one_series_per_channel():
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    images[..., 0] = 250  # red bright
    images[..., 2] = 100  # blue mid

    histogram = eda.pixel_histogram(images, bins=4)

    assert histogram["channel"].drop_duplicates().tolist() == ["red", "green", "blue"]
    counts = histogram.pivot(index="bin_start", columns="channel", values="count")
    assert counts.loc[192, "red"] == 48 and counts.loc[0, "green"] == 48 and counts.loc[64, "blue"] == 48
    assert counts["red"].sum() == 48


def test_pixel_histogram_rejects_floats_and_bad_bins():
    with pytest.raises(ValueError, match="uint8"):
        eda.pixel_histogram(np.zeros((2, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="bins"):
        eda.pixel_histogram(np.zeros((2, 2, 2), dtype=np.uint8), bins=0)


def test_mean_image_per_class():
    data = tiny_dataset()

    means = eda.mean_image_per_class(data.x_train, data.y_train, num_classes=10)

    assert means.shape == (10, 28, 28) and means.dtype == np.float32
    assert np.all(means[0] == 20.0)  # (10 + 20 + 30) / 3
    assert np.all(means[2] == 255.0)
    assert np.all(means[1] == 0.0)  # no images of class 1


def test_mean_image_per_class_rgb_keeps_channels():
    data = synthetic_dataset("cifar10", num_train=200, num_test=10)
    means = eda.mean_image_per_class(data.x_train, data.y_train, 10)
    assert means.shape == (10, 32, 32, 3)
    expected = data.x_train[data.y_train == 4].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(means[4], expected, rtol=1e-5)


def test_memory_footprint_of_training_images():
    data = synthetic_dataset("fashion_mnist", num_train=1000, num_test=10)

    footprint = eda.memory_footprint(data).set_index("dtype")

    assert footprint.index.tolist() == ["uint8", "float32", "float64"]
    assert footprint.loc["uint8", "bytes"] == data.x_train.nbytes == 784_000
    assert footprint.loc["float32", "bytes"] == 4 * 784_000
    assert footprint.loc["float64", "bytes"] == (data.x_train / 255).nbytes
    assert footprint.loc["float32", "mib"] == pytest.approx(4 * 784_000 / 2**20)
    assert footprint["ratio"].tolist() == [1.0, 4.0, 8.0]


def test_sample_indices_filters_and_is_reproducible():
    labels = np.array([0, 1, 2, 1, 1, 0, 2, 1], dtype=np.uint8)

    ones = eda.sample_indices(labels, [1], count=10, seed=0)
    some = eda.sample_indices(labels, None, count=3, seed=5)

    assert ones.tolist() == [1, 3, 4, 7]  # all four matches, fewer than asked
    assert len(some) == 3 and len(set(some.tolist())) == 3 and some.tolist() == sorted(some.tolist())
    np.testing.assert_array_equal(some, eda.sample_indices(labels, [], count=3, seed=5))
    assert set(eda.sample_indices(labels, [0, 2], count=10).tolist()) == {0, 2, 5, 6}
    assert eda.sample_indices(labels, [1], count=0).size == 0


def test_first_labels_names_classes():
    table = eda.first_labels(tiny_dataset("cifar10"), count=3)
    assert table.to_dict("list") == {"index": [0, 1, 2], "label": [0, 0, 0], "class_name": ["airplane"] * 3}


def test_enlarge_and_display_helpers():
    image = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    big = eda.enlarge(image, 3)
    assert big.shape == (6, 6) and big[0, 2] == 1 and big[5, 5] == 4
    assert eda.enlarge(np.zeros((32, 32, 3), np.uint8), 3).shape == (96, 96, 3)
    display = eda.to_display_uint8(np.array([0.4, 127.6, 300.0], dtype=np.float32))
    assert display.dtype == np.uint8 and display.tolist() == [0, 128, 255]


# --- Charts ---


def test_class_distribution_chart_encodings():
    spec = class_distribution_chart(eda.class_counts(tiny_dataset())).to_dict()

    assert spec["mark"]["type"] == "bar"
    encoding = spec["encoding"]
    assert encoding["x"]["field"] == "class_name" and encoding["x"]["sort"][0] == "T-shirt/top"
    assert encoding["y"]["title"] == "Images (count)"
    assert encoding["xOffset"]["field"] == "split"
    assert encoding["color"]["scale"]["scheme"] == "tableau10"
    assert {t["field"] for t in encoding["tooltip"]} >= {"class_name", "split", "count", "share"}


@pytest.mark.parametrize(
    ("images", "channels"),
    [
        (np.zeros((2, 4, 4), np.uint8), ["gray"]),
        (np.zeros((2, 4, 4, 3), np.uint8), ["red", "green", "blue"]),
    ],
)
def test_pixel_histogram_chart_colours_each_channel(images, channels):
    spec = pixel_histogram_chart(eda.pixel_histogram(images, bins=8)).to_dict()

    color = spec["encoding"]["color"]
    assert color["scale"]["domain"] == channels
    assert color["scale"]["range"] == [CHANNEL_COLORS[c] for c in channels]
    assert spec["encoding"]["x"]["title"] == "Pixel intensity (0-255)"
    assert spec["encoding"]["y"]["title"] == "Share of pixels (%)"
    assert {t["field"] for t in spec["encoding"]["tooltip"]} == {"channel", "bin_start", "bin_end", "count", "share"}


def test_chart_frames_are_tidy():
    counts = eda.class_counts(tiny_dataset())
    histogram = eda.pixel_histogram(np.zeros((1, 2, 2), np.uint8), bins=4)
    assert isinstance(counts, pd.DataFrame) and counts["count"].dtype.kind == "i"
    assert histogram["count"].dtype.kind == "i" and histogram["bin_start"].tolist() == [0, 64, 128, 192]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ankle boot", "an Ankle boot"),
        ("T-shirt/top", "a T-shirt/top"),
        ("airplane", "an airplane"),
        ("automobile", "an automobile"),
        ("truck", "a truck"),
        ("", "a "),
    ],
)
def test_with_article(name, expected):
    assert eda.with_article(name) == expected


def test_class_table_lists_every_class_without_loading_data():
    info = get_info("cifar10")

    table = eda.class_table(info)

    assert table.columns.tolist() == ["label", "class_name"]
    assert table["label"].tolist() == list(range(10))
    assert table["class_name"].tolist() == list(info.class_names)
