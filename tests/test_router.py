"""AppTests of the router (streamlit_app.py): the shared sidebar and the default page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from lib.backend import backend_name
from lib.devices import list_devices
from tests.conftest import REPO_ROOT


def open_app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120).run()


def test_router_renders_the_default_page_without_exception():
    at = open_app()
    assert not at.exception
    assert at.title[0].value == "CPU vs GPU deep learning"


def test_home_page_links_every_step_and_names_the_tutorial_presets():
    at = open_app()
    markdown = " ".join(element.value for element in at.markdown)
    assert "`cifar10-seed`" in markdown and "`fashion-seed`" in markdown
    assert "softmax" in markdown
    page_links = at.get("page_link")
    assert [link.proto.page for link in page_links] == ["gpu", "datasets", "build", "train", "results"]


def test_sidebar_shows_backend_and_devices():
    at = open_app()
    captions = [caption.value for caption in at.sidebar.caption]
    assert f"Keras backend: **{backend_name()}**" in captions
    for device in list_devices():
        assert any(f"`{device.name}`" in caption and device.description in caption for caption in captions)


def test_datasets_page_is_reachable_through_the_router():
    at = open_app()
    at.switch_page("app_pages/datasets.py").run()
    assert not at.exception
    assert at.title[0].value == "Datasets"
