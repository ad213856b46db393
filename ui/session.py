"""Per-session state of the Build, Train and Results pages: who this browser is and which model it builds.

The model spec lives in `st.session_state[Key.MODEL_SPEC]`, shared by the Build and Train pages. On a
session's first page view it comes from the link's query parameters (a shared link), else the default
Fashion-MNIST preset; what the link got wrong is kept as notices for the page to show, until the model
is changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from lib.limits import ServerLimits
from lib.links import LinkNotice, RunSettings, escape_markdown, read_link, spec_to_query_params
from lib.presets import PRESETS
from lib.spec import ModelSpec
from ui.keys import Key
from ui.page_data import matching_preset

DEFAULT_PRESET = "fashion-seed"
LINK_NOTICES_HEADER = "Some settings in this link were changed:"
PRESET_NOTICES_HEADER = "This preset was changed to fit this server:"


@dataclass(frozen=True)
class PendingNotices:
    """Notices about how the session's model differs from what a link (or a preset) asked for.

    They stay on screen while the model is the one they describe, so a rerun the user did not ask for
    (the router's, once the backend has loaded) keeps them; the first change of the model ends them.
    """

    notices: tuple[LinkNotice | str, ...]  # a str is a notice the page wrote in its own words
    spec: ModelSpec  # the model they describe
    header: str = LINK_NOTICES_HEADER  # the line above them, e.g. PRESET_NOTICES_HEADER for a preset


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
    """Returns the run settings (devices, sample limit, job) of this session, as a shared link set them."""
    return st.session_state.get(Key.RUN_SETTINGS, RunSettings())


def set_run_settings(settings: RunSettings) -> None:
    """Replaces the session's run settings."""
    st.session_state[Key.RUN_SETTINGS] = settings


def show_link_notices() -> None:
    """Shows what a shared link asked for that was ignored or clamped, while the model is still the link's.

    Nothing from the link renders: each `LinkNotice` quotes the link's pieces as code, and plain strings
    (notices the pages write themselves) are escaped.
    """
    pending = st.session_state.get(Key.LINK_NOTICES)
    if not pending:
        return
    if not isinstance(pending, PendingNotices):  # a page's own list, about the spec it has just set
        pending = PendingNotices(tuple(pending), st.session_state.get(Key.MODEL_SPEC, ModelSpec()))
        st.session_state[Key.LINK_NOTICES] = pending
    if st.session_state.get(Key.MODEL_SPEC) != pending.spec:
        del st.session_state[Key.LINK_NOTICES]
        return
    st.warning(link_notices_markdown(pending.notices, pending.header), icon=":material/link:")


def link_notices_markdown(notices: Sequence[LinkNotice | str], header: str = LINK_NOTICES_HEADER) -> str:
    """The warning's markdown: a header and one list item per notice, nothing from the link active."""
    lines = [notice.markdown() if isinstance(notice, LinkNotice) else escape_markdown(notice) for notice in notices]
    return escape_markdown(header) + "\n" + "\n".join(f"- {line}" for line in lines)


def write_link(spec: ModelSpec, settings: RunSettings | None = None) -> None:
    """Puts the spec (and run settings) in the address bar, so copying it shares this model."""
    # Written on every run, even when unchanged: a click made before the last run's URL reached the
    # browser sends the older URL back with its rerun, and only a fresh write corrects it.
    st.query_params.from_dict(spec_to_query_params(spec, settings, matching_preset(spec, PRESETS)))


def _start_from_link(limits: ServerLimits, available_devices: list[str]) -> None:
    """Fills the session's spec and run settings from the query parameters (or the default preset)."""
    preset_specs = {name: preset.spec for name, preset in PRESETS.items()}
    params = st.query_params.to_dict()
    link = read_link(params, limits, available_devices, preset_specs, DEFAULT_PRESET)
    st.session_state[Key.MODEL_SPEC] = link.spec
    st.session_state[Key.RUN_SETTINGS] = link.settings
    # Without a link, what changed is the default preset, fitted to this server's limits: say so, not "this link".
    header = LINK_NOTICES_HEADER if params else PRESET_NOTICES_HEADER
    st.session_state[Key.LINK_NOTICES] = PendingNotices(link.notices, link.spec, header) if link.notices else None
