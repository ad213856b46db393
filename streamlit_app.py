"""CPU vs GPU deep learning, explained with live measurements: the app's router.

Run with `make run` (or `streamlit run streamlit_app.py`). This file only sets up the page,
draws the shared sidebar and routes to the pages in `app_pages/`.
"""

import streamlit as st

from lib.backend import backend_name
from lib.devices import list_devices

st.set_page_config(page_title="CPU vs GPU deep learning", page_icon=":material/memory:", layout="wide")


@st.cache_resource(show_spinner="Looking for devices...")
def cached_devices():
    """Lists this server's devices once per process (importing the backend is slow)."""
    return list_devices()


def draw_sidebar() -> None:
    """Shows the Keras backend and the devices every page can use."""
    with st.sidebar:
        st.caption(f"Keras backend: **{backend_name()}**")
        for device in cached_devices():
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
