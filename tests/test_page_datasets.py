"""AppTest of the Datasets page, run through the router, on the real Fashion-MNIST and an absent CIFAR-10."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.keys import Key
from tests.conftest import REPO_ROOT

PAGE = "app_pages/datasets.py"


@pytest.fixture
def page_env(tmp_path, monkeypatch, keras_home, network_attempts):
    """Real Debian Fashion-MNIST, no CIFAR-10 anywhere, an empty Keras cache, no network, fresh caches."""
    monkeypatch.setenv("GPUX_DATA_DIR", str(tmp_path / "empty-data"))
    monkeypatch.delenv("GPUX_FASHION_MNIST_DIR", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield network_attempts
    st.cache_resource.clear()
    st.cache_data.clear()


def open_page(dataset: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=60)
    at.switch_page(PAGE)
    if dataset is not None:
        at.session_state[Key.DATASET] = dataset
    return at.run()


def all_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "code", "error", "info") for e in at.get(kind)]
    return "\n".join(str(part) for part in parts)


def image_captions(at: AppTest) -> list[list[str]]:
    return [list(image.captions) for image in at.get("image")]


def test_fashion_mnist_page_shows_shapes_samples_charts_and_preprocessing(page_env):
    at = open_page()

    assert not at.exception
    assert at.selectbox(key=Key.DATASET).value == "fashion_mnist"
    text = all_text(at)
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
    assert page_env == []


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


def test_cifar10_unavailable_shows_the_fix_and_no_traceback(page_env):
    at = open_page("cifar10")

    assert not at.exception
    assert "CIFAR-10 is not available offline." in at.error[0].value
    fix = at.info[0].value
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in fix
    assert "cifar-10-python.tar.gz" in fix and "python -m lib.fetch_data" in fix
    assert not at.get("image") and not at.get("vega_lite_chart")
    assert page_env == []


def test_switching_dataset_back_and_forth(page_env):
    at = open_page("cifar10")
    assert at.error

    at.selectbox(key=Key.DATASET).set_value("fashion_mnist").run()

    assert not at.exception and not at.error
    assert "x_train.shape  = (60000, 28, 28)" in all_text(at)


def test_cifar10_page_renders_rgb_data_when_present(page_env, monkeypatch):
    # The page with CIFAR-10 loaded: patched to synthetic data of the real shapes (the real loader has its own tests).
    from lib import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda name: datasets.synthetic_dataset(name, 600, 100))

    at = open_page("cifar10")

    assert not at.exception and not at.error
    text = all_text(at)
    assert "x_train.shape  = (600, 32, 32, 3)" in text and "(red channel)" in text
    samples, means = image_captions(at)
    assert means[0] == "airplane" and means[9] == "truck"
    assert [m.value for m in at.metric][2] == "32 x 32 x 3"
