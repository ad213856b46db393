"""Per-session state of the Build, Train and Results pages: who this browser is and which model it builds.

The model spec lives in `st.session_state[Key.MODEL_SPEC]`, shared by the Build and Train pages. On a
session's first page view it comes from the link's query parameters (a shared link), else the default
Fashion-MNIST preset; what the link got wrong is kept as notices for the page to show.
"""

from __future__ import annotations

import uuid

import streamlit as st

from lib.keys import Key
from lib.limits import ServerLimits
from lib.links import (
    RunSettings,
    preset_from_query_params,
    run_settings_from_query_params,
    spec_from_query_params,
    spec_to_query_params,
)
from lib.presets import PRESETS
from lib.spec import ModelSpec
from lib.ui_state import matching_preset

DEFAULT_PRESET = "fashion-seed"


def owner_id() -> str:
    """Returns this browser session's id (a uuid), the owner of its training jobs."""
    if Key.OWNER_ID not in st.session_state:
        st.session_state[Key.OWNER_ID] = uuid.uuid4().hex
    return st.session_state[Key.OWNER_ID]


def current_spec(limits: ServerLimits, available_devices: list[str]) -> ModelSpec:
    """Returns the session's model spec, reading a shared link's query parameters on first use.

    Args:
        limits: The server limits; a link's values beyond them are clamped (with a notice).
        available_devices: Device names this server has, for the link's `devices`.
    """
    if Key.MODEL_SPEC not in st.session_state:
        _start_from_link(limits, available_devices)
    return st.session_state[Key.MODEL_SPEC]


def set_spec(spec: ModelSpec) -> None:
    """Replaces the session's model spec."""
    st.session_state[Key.MODEL_SPEC] = spec


def run_settings() -> RunSettings:
    """Returns the run settings (devices, sample limit) of this session, as a shared link set them."""
    return st.session_state.get(Key.RUN_SETTINGS, RunSettings())


def set_run_settings(settings: RunSettings) -> None:
    """Replaces the session's run settings."""
    st.session_state[Key.RUN_SETTINGS] = settings


def show_link_notices() -> None:
    """Shows (once) what a shared link asked for that was ignored or clamped."""
    notices = st.session_state.pop(Key.LINK_NOTICES, [])
    if notices:
        st.warning(
            "Some settings in this link were changed:\n" + "\n".join(f"- {notice}" for notice in notices),
            icon=":material/link:",
        )


def write_link(spec: ModelSpec, settings: RunSettings | None = None) -> None:
    """Puts the spec (and run settings) in the address bar, so copying it shares this model."""
    # Written on every run, even when unchanged: a click made before the last run's URL reached the
    # browser sends the older URL back with its rerun, and only a fresh write corrects it.
    st.query_params.from_dict(spec_to_query_params(spec, settings, matching_preset(spec, PRESETS)))


def _start_from_link(limits: ServerLimits, available_devices: list[str]) -> None:
    """Fills the session's spec and run settings from the query parameters (or the default preset)."""
    params = st.query_params.to_dict()
    preset_name, notices = preset_from_query_params(params, tuple(PRESETS))
    base = PRESETS[preset_name or DEFAULT_PRESET].spec
    spec, spec_notices = spec_from_query_params(params, limits, base=base)
    settings, settings_notices = run_settings_from_query_params(params, limits, available_devices)
    st.session_state[Key.MODEL_SPEC] = spec
    st.session_state[Key.RUN_SETTINGS] = settings
    st.session_state[Key.LINK_NOTICES] = notices + spec_notices + settings_notices
