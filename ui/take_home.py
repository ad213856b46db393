"""Streamlit-side: the "Take it home" downloads (a Keras script, a notebook) of stored runs, on Train and Results."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from lib.store import StoredRun
from lib.take_home import file_name, run_notebook, run_script, same_settings_groups


def draw_take_home(runs: Sequence[StoredRun], script_key: str, notebook_key: str, pick_key: str) -> None:
    """Two download buttons for the runs; when they used different settings, a picker of one settings group first.

    Args:
        runs: The stored runs to reproduce (nothing is drawn when empty).
        script_key: The script button's key.
        notebook_key: The notebook button's key.
        pick_key: The picker's key (drawn only for runs of several settings).
    """
    groups = same_settings_groups(runs)
    if not groups:
        return
    with st.container(border=True):
        st.markdown("**Take it home**")
        group = groups[0]
        if len(groups) > 1:
            picked = st.selectbox(
                "These runs used different settings; one script reproduces the runs of",
                range(len(groups)),
                format_func=lambda index: ", ".join(f"#{stored.id} {stored.run.device}" for stored in groups[index]),
                key=pick_key,
            )
            group = groups[picked or 0]
        spec = group[0].spec
        columns = st.columns(2)
        columns[0].download_button(
            "Download Python script",
            data=run_script(spec, group),
            file_name=file_name(group, "py"),
            mime="text/x-python",
            key=script_key,
            icon=":material/code:",
        )
        columns[1].download_button(
            "Download notebook",
            data=run_notebook(spec, group),
            file_name=file_name(group, "ipynb"),
            mime="application/x-ipynb+json",
            key=notebook_key,
            icon=":material/description:",
        )
        st.caption(
            "The same training with Keras alone, on the same devices, timing every epoch; the settings and the "
            "times measured here are in its comments."
        )
