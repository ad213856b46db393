"""CPU vs GPU deep learning, explained with live measurements: the app's router.

Run with `make run` (or `streamlit run streamlit_app.py`). This file only sets up the page,
draws the shared sidebar and routes to the pages in `app_pages/`.
"""

import streamlit as st

from lib.backend import backend_name, take_gpu_memory_on_demand
from ui import runtime

take_gpu_memory_on_demand()  # before any page touches a GPU: the training workers need its memory
st.set_page_config(page_title="CPU vs GPU deep learning", page_icon=":material/memory:", layout="wide")


def draw_sidebar() -> None:
    """Shows the Keras backend and the devices every page can use."""
    with st.sidebar:
        st.caption(f"Keras backend: **{backend_name()}**")
        for device in runtime.devices():
            st.caption(f":material/memory: `{device.name}` {device.description}")


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
    ],
}

draw_sidebar()
st.navigation(pages).run()
