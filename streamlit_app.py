"""CPU vs GPU deep learning, explained with live measurements: the app's router.

Run with `make run` (or `streamlit run streamlit_app.py`). This file only sets up the page,
draws the shared sidebar and routes to the pages in `app_pages/`. It never imports Keras: the
sidebar lists the devices the light probe found until the backend, imported in the background once
the first page has drawn, lists its own.
"""

import pathlib

import streamlit as st

from lib.backend import backend_name, take_gpu_memory_on_demand
from lib.lesson import HOME_PAGE, PAGE_TITLES
from ui import lesson, presenter, runtime, session
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
    """Shows the presenter switch, the Keras backend and the devices every page can use."""
    with st.sidebar:
        presenter.draw_switch()
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
        st.Page("app_pages/home.py", title=PAGE_TITLES["home"], icon=":material/home:", url_path="home", default=True),
        st.Page("app_pages/gpu.py", title=PAGE_TITLES["gpu"], icon=":material/developer_board:", url_path="gpu"),
        st.Page("app_pages/datasets.py", title=PAGE_TITLES["datasets"], icon=":material/image:", url_path="datasets"),
    ],
    "Train a model": [
        st.Page("app_pages/build.py", title=PAGE_TITLES["build"], icon=":material/construction:", url_path="build"),
        st.Page("app_pages/train.py", title=PAGE_TITLES["train"], icon=":material/play_arrow:", url_path="train"),
        st.Page("app_pages/results.py", title=PAGE_TITLES["results"], icon=":material/bar_chart:", url_path="results"),
        st.Page("app_pages/sweep.py", title=PAGE_TITLES["sweep"], icon=":material/show_chart:", url_path="sweep"),
        st.Page("app_pages/board.py", title=PAGE_TITLES["board"], icon=":material/co_present:", url_path="board"),
    ],
}

page_by_name = {page.url_path or HOME_PAGE: page for section in pages.values() for page in section}

# Lesson mode: the menu hidden and the sidebar closed (a projector), each page's "Next" the way forward.
in_lesson = session.lesson() is not None
if in_lesson:
    st.set_page_config(initial_sidebar_state="collapsed")
    session.start_lesson(runtime.server_limits(), runtime.training_device_names())
    session.keep_lesson_in_link()
draw_sidebar()
presenter.apply_presenter_view()
try:
    page = st.navigation(pages, position="hidden" if in_lesson else "sidebar")
    page_name = page.url_path or HOME_PAGE
    lesson.open_start_page(page_name, page_by_name)
    lesson.draw_top(page_name)
    page.run()
    lesson.draw_next(page_name, page_by_name)
finally:
    presenter.keep_in_link()  # after the page, which may have rewritten the link
    runtime.start_backend_warmup()  # after the page: the import then slows no first view
