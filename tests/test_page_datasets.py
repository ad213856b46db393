"""AppTest of the Datasets page, run through the router: real Fashion-MNIST, CIFAR-10 absent, damaged or present."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.datasets import get_info
from lib.presets import TUTORIAL_LINK
from tests.conftest import REPO_ROOT
from tests.test_datasets import FAKE_CIFAR_TEST, write_fake_cifar
from ui.keys import Key

PAGE = "app_pages/datasets.py"
TEXT_KINDS = ("markdown", "caption", "code", "error", "warning", "info", "success")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OWNER_EXPANDER = "For the server's owner: how to add CIFAR-10"


@dataclass
class PageEnv:
    data_dir: pathlib.Path  # $GPUX_DATA_DIR, created empty
    keras_home: pathlib.Path  # an empty Keras home
    network_attempts: list[str]  # stays empty: the page never touches the network


@pytest.fixture
def page_env(tmp_path, monkeypatch, keras_home, network_attempts):
    """Real Debian Fashion-MNIST, no CIFAR-10 anywhere, an empty Keras cache, no network, fresh caches."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("GPUX_DATA_DIR", str(data_dir))
    monkeypatch.delenv("GPUX_FASHION_MNIST_DIR", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield PageEnv(data_dir, keras_home, network_attempts)
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="module")
def fake_cifar_archive(tmp_path_factory) -> pathlib.Path:
    """A small CIFAR-10 archive in the original format (see tests/test_datasets.py)."""
    return write_fake_cifar(tmp_path_factory.mktemp("fake-cifar"))["archive"]


def open_page(dataset: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=90)
    at.switch_page(PAGE)
    if dataset is not None:
        at.session_state[Key.DATASET] = dataset
    return at.run()


def texts(node) -> list[str]:
    return [str(element.value) for kind in TEXT_KINDS for element in node.get(kind)]


def all_text(at: AppTest) -> str:
    return "\n".join(texts(at))


def text_outside_expanders(at: AppTest) -> str:
    inside = {id(element) for expander in at.expander for kind in TEXT_KINDS for element in expander.get(kind)}
    return "\n".join(str(element.value) for kind in TEXT_KINDS for element in at.get(kind) if id(element) not in inside)


def image_captions(at: AppTest) -> list[list[str]]:
    return [list(image.captions) for image in at.get("image")]


def test_fashion_mnist_page_shows_shapes_samples_charts_and_preprocessing(page_env):
    at = open_page()

    assert not at.exception
    assert at.selectbox(key=Key.DATASET).value == "fashion_mnist"
    text = all_text(at)
    assert TUTORIAL_LINK in text  # named and linked
    assert "x_train.shape  = (60000, 28, 28)" in text
    assert "y_test.shape   = (10000,)" in text
    assert "y_train[:10] = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]" in text
    assert "Debian package dataset-fashion-mnist" in text
    assert [m.value for m in at.metric] == ["60,000", "10,000", "28 x 28", "10"]
    # Sample grid (16 images by default) and the mean image of each of the 10 classes.
    samples, means = image_captions(at)
    assert len(samples) == 16 and len(means) == 10 and means[0] == "T-shirt/top"
    assert len(at.get("vega_lite_chart")) == 2
    assert "float64" in text and "float32" in text
    assert "Ankle boot" in at.dataframe[0].value["class_name"].tolist()
    # Image #0 is an ankle boot: the article fits the class name; the one-hot row is a softmax target.
    assert "Training image #0 is **an Ankle boot**." in text
    assert "softmax" in text and "sigmoid" in text
    # Memory of the training set with thousands separators: 60,000 x 784 bytes as uint8.
    footprint = at.dataframe[-1].value
    assert footprint["bytes"].tolist() == ["47,040,000", "188,160,000", "376,320,000"]
    assert not at.expander and "generated" not in text
    assert page_env.network_attempts == []


def test_class_filter_changes_the_sample_grid(page_env):
    at = open_page()
    before = image_captions(at)[0]

    at.multiselect(key=Key.SAMPLE_CLASS_FILTER).select(1).run()  # Trouser
    at.slider(key=Key.SAMPLE_COUNT).set_value(8).run()

    assert not at.exception
    after = image_captions(at)[0]
    assert len(after) == 8 and after != before
    assert all(caption.startswith("Trouser (#") for caption in after)
    assert "8 random training images of Trouser." in [c.value for c in at.caption]


def test_cifar10_without_the_archive_shows_what_it_is_and_what_training_uses(page_env):
    at = open_page("cifar10")

    assert not at.exception
    assert not at.error  # nothing red: the student can carry on
    info = get_info("cifar10")
    # Shapes and class names come from the dataset's description, without the files.
    assert [m.value for m in at.metric] == ["50,000", "10,000", "32 x 32 x 3", "10"]
    text = all_text(at)
    assert "x_train.shape  = (50000, 32, 32, 3)  # dtype uint8" in text and "y_test.shape   = (10000,)" in text
    assert at.dataframe[0].value["class_name"].tolist() == list(info.class_names)
    # One line for the student says what this means.
    (line,) = at.info
    assert line.value == (
        "This server has no CIFAR-10 copy, so training uses generated images of the same shape: "
        "timings are real, accuracy is meaningless."
    )
    # The preview is generated images, labelled as such everywhere.
    (preview,) = image_captions(at)
    assert len(preview) == 16 and all(caption.startswith("generated, random label: ") for caption in preview)
    assert "16 generated images (random pixels), not CIFAR-10." in text
    assert "need the real CIFAR-10 images" in text
    assert not at.get("vega_lite_chart")
    # The set-up instructions are for the server's owner, folded away.
    (expander,) = at.expander
    assert expander.label == OWNER_EXPANDER
    owner_text = "\n".join(texts(expander))
    assert "CIFAR-10 is not available offline." in owner_text
    assert CIFAR_URL in owner_text and "python -m lib.fetch_data" in owner_text
    assert str(page_env.data_dir / "cifar-10-python.tar.gz") in owner_text and "GPUX_DATA_DIR" in owner_text
    outside = text_outside_expanders(at)
    for owner_detail in (CIFAR_URL, "GPUX_DATA_DIR", str(page_env.data_dir), str(page_env.keras_home), "fetch_data"):
        assert owner_detail not in outside
    assert page_env.network_attempts == []


def test_cifar10_with_a_damaged_archive_says_so_and_keeps_the_details_for_the_owner(page_env):
    archive = page_env.data_dir / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + b"truncated download" * 100)

    at = open_page("cifar10")

    assert not at.exception and not at.error
    (line,) = at.warning
    assert line.value.startswith("This server's CIFAR-10 copy cannot be read")
    (expander,) = at.expander
    owner_text = "\n".join(texts(expander))
    assert str(archive) in owner_text and "could not be read" in owner_text
    assert str(archive) not in text_outside_expanders(at)
    assert len(image_captions(at)[0]) == 16


def test_switching_dataset_back_and_forth(page_env):
    at = open_page("cifar10")
    assert at.expander

    at.selectbox(key=Key.DATASET).set_value("fashion_mnist").run()

    assert not at.exception and not at.error and not at.expander
    assert "x_train.shape  = (60000, 28, 28)" in all_text(at)


def test_cifar10_page_shows_the_real_data_when_the_archive_is_there(page_env, fake_cifar_archive):
    (page_env.data_dir / "cifar-10-python.tar.gz").symlink_to(fake_cifar_archive)

    at = open_page("cifar10")

    assert not at.exception and not at.error
    assert not at.expander and not at.info
    text = all_text(at)
    assert "generated" not in text and "data folder" in text
    assert "x_train.shape  = (50000, 32, 32, 3)" in text and "(red channel)" in text
    assert [m.value for m in at.metric] == ["50,000", f"{FAKE_CIFAR_TEST:,}", "32 x 32 x 3", "10"]
    # Image #0 of the fake archive has label 0: an airplane.
    assert "Training image #0 is **an airplane**." in text
    samples, means = image_captions(at)
    assert len(samples) == 16 and not any(caption.startswith("generated") for caption in samples)
    assert means[0] == "airplane" and means[9] == "truck"
    assert len(at.get("vega_lite_chart")) == 2
    assert page_env.network_attempts == []
