"""Home: what this app teaches and the path through it, one link per step; a teacher's lesson link."""

import streamlit as st

from lib.lesson import LESSON_STEPS
from lib.presets import PRESETS, TUTORIAL_FIXES, TUTORIAL_LINK, TUTORIAL_PRESETS
from ui import lesson, session

st.title("CPU vs GPU deep learning")
st.markdown(
    "Why do neural networks train faster on a GPU, and when do they not? This app answers with "
    "**live measurements on this machine**: you build a small network, train it on the devices you choose, "
    "and compare the timings."
)

st.subheader("The lesson, step by step")
for number, step in enumerate(LESSON_STEPS, start=1):
    with st.container(border=True):
        st.page_link(f"app_pages/{step.page}.py", label=f"{number}. {step.title}", icon=":material/arrow_forward:")
        st.caption(step.what)

st.subheader("Teaching a class on one server?")
with st.container(border=True):
    st.page_link("app_pages/board.py", label="Class board", icon=":material/co_present:")
    st.caption(
        "Project it: the queue with anonymous names, the run training now, and today's finished runs with "
        "their speedups, large enough to read from the back of the room."
    )
if session.lesson() is None:  # a lesson's students have their link already
    with st.expander("Make a lesson link", icon=":material/link:"):
        st.caption(
            "Choose where the class starts, the model, the controls to hide or lock, and notes for the top of "
            "each page. The link opens the app in lesson mode: no menu, a Next link at the end of each page."
        )
        lesson.draw_form()

st.subheader("The tutorial's two experiments, one click each")
st.markdown(
    f"On **Build a model**, two presets reproduce the experiments of {TUTORIAL_LINK}: "
    + " and ".join(f"**{PRESETS[name].title}**" for name in TUTORIAL_PRESETS)
    + f". {TUTORIAL_FIXES}"
)
