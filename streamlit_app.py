"""CPU vs GPU deep learning, explained with live measurements: the app's router.

Run with `make run` (or `streamlit run streamlit_app.py`). This file only sets up the page,
draws the shared sidebar and routes to the pages in `app_pages/`. It never imports Keras: the
sidebar lists the devices the light probe found until the backend, imported in the background once
the first page has drawn, lists its own.
"""

import pathlib

import streamlit as st

from lib.backend import backend_name, take_gpu_memory_on_demand
from ui import runtime
from ui.rerun_cleanup import keep_keras_between_reruns

PAGE_ICON = pathlib.Path(__file__).parent / "static" / "icon.png"  # served by this server: no font CDN
BACKEND_POLL_S = 2.0  # how often a page looks whether the backend finished loading, while it loads

keep_keras_between_reruns()  # Streamlit's reset of Keras after each run costs 0.4 s of CPU a page view
take_gpu_memory_on_demand()  # before any page touches a GPU: the training workers need its memory
st.set_page_config(page_title="CPU vs GPU deep learning", page_icon=str(PAGE_ICON), layout="wide")


@st.fragment(run_every=BACKEND_POLL_S)
def rerun_once_backend_loaded() -> None:
    """Redraws the whole page once the backend's import is over, so its device list replaces the probe's."""
    if not runtime.backend_loading():
        st.rerun()


def draw_sidebar() -> None:
    """Shows the Keras backend and the devices every page can use."""
    with st.sidebar:
        st.caption(f"Keras backend: **{backend_name()}**")
        for device in runtime.devices():
            st.caption(f":material/memory: `{device.name}` {device.description}")
        note = runtime.device_list_note()
        if note:
            st.caption(note)
        if runtime.backend_loading():
            rerun_once_backend_loaded()


pages = {
    "Learn": [
        st.Page("app_pages/home.py", title="Start here", icon=":material/home:", url_path="home", default=True),
        st.Page("app_pages/gpu.py", title="What is a GPU?", icon=":material/developer_board:", url_path="gpu"),
        st.Page("app_pages/datasets.py", title="Datasets", icon=":material/image:", url_path="datasets"),
    ],
    "Train a model": [
        st.Page("app_pages/build.py", title="Build a model", icon=":material/construction:", url_path="build"),
        st.Page("app_pages/train.py", title="Train", icon=":material/play_arrow:", url_path="train"),
        st.Page("app_pages/results.py", title="Results", icon=":material/bar_chart:", url_path="results"),
        st.Page("app_pages/board.py", title="Class board", icon=":material/co_present:", url_path="board"),
    ],
}

draw_sidebar()
try:
    st.navigation(pages).run()
finally:
    runtime.start_backend_warmup()  # after the page: the import then slows no first view
