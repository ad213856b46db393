"""Home: what this app teaches and the path through it, one link per step."""

import streamlit as st

from lib.presets import PRESETS, TUTORIAL_FIXES, TUTORIAL_LINK, TUTORIAL_PRESETS

st.title("CPU vs GPU deep learning")
st.markdown(
    "Why do neural networks train faster on a GPU, and when do they not? This app answers with "
    "**live measurements on this machine**: you build a small network, train it on the devices you choose, "
    "and compare the timings."
)

st.subheader("The lesson, step by step")
steps = [
    ("app_pages/gpu.py", "What is a GPU?", "Many simple cores against a few complex ones; race them."),
    ("app_pages/datasets.py", "Datasets", "CIFAR-10 and Fashion-MNIST: samples, charts, preprocessing."),
    ("app_pages/build.py", "Build a model", "Sliders for layers and units; see parameters, FLOPs and the Keras code."),
    ("app_pages/train.py", "Train", "Time the training on each device, with live progress and a fair queue."),
    ("app_pages/results.py", "Results", "Time per device, speedup, per-epoch time, throughput, learning curves."),
]
for number, (page, label, what) in enumerate(steps, start=1):
    with st.container(border=True):
        st.page_link(page, label=f"{number}. {label}", icon=":material/arrow_forward:")
        st.caption(what)

st.subheader("Teaching a class on one server?")
with st.container(border=True):
    st.page_link("app_pages/board.py", label="Class board", icon=":material/co_present:")
    st.caption(
        "Project it: the queue with anonymous names, the run training now, and today's finished runs with "
        "their speedups, large enough to read from the back of the room."
    )

st.subheader("The tutorial's two experiments, one click each")
st.markdown(
    f"On **Build a model**, two presets reproduce the experiments of {TUTORIAL_LINK}: "
    + " and ".join(f"**{PRESETS[name].title}**" for name in TUTORIAL_PRESETS)
    + f". {TUTORIAL_FIXES}"
)
