"""Per-session state of the Build, Train and Results pages: who this browser is and which model it builds.

The model spec lives in `st.session_state[Key.MODEL_SPEC]`, shared by the Build and Train pages. On a
session's first page view it comes from the link's query parameters (a shared link), else the default
Fashion-MNIST preset; what the link got wrong is kept as notices for the page to show, until the model
is changed.

A lesson link (`lib.lesson`) is read on the session's first run too, its model at once (the first page switch
drops the link). In lesson mode the hidden and locked controls keep the lesson's values: every spec and run
setting this module hands out or stores is pinned to them, whatever a widget, a callback or the link asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from lib.lesson import (
    Lesson,
    fixed_link_params,
    is_lesson_param,
    lesson_params,
    model_params,
    parse_lesson,
    pin_settings,
    pin_spec,
)
from lib.limits import ServerLimits
from lib.links import LinkNotice, RunSettings, escape_markdown, fold_notices, read_link, spec_to_query_params
from lib.parallel import PARALLEL_NAMES
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
    spec = st.session_state[Key.MODEL_SPEC]
    pinned = _pinned_spec(spec)
    if pinned is not spec:  # lesson mode: a value written to the session directly does not count
        st.session_state[Key.MODEL_SPEC] = pinned
    return pinned


def set_spec(spec: ModelSpec) -> None:
    """Replaces the session's model spec (in lesson mode, its hidden and locked fields keep the lesson's values)."""
    st.session_state[Key.MODEL_SPEC] = _pinned_spec(spec)


def run_settings() -> RunSettings:
    """Returns the run settings (devices, sample limit, job) of this session, as a shared link set them."""
    return _pinned_settings(st.session_state.get(Key.RUN_SETTINGS, RunSettings()))


def set_run_settings(settings: RunSettings) -> None:
    """Replaces the session's run settings (in lesson mode, the hidden or locked run controls keep theirs)."""
    st.session_state[Key.RUN_SETTINGS] = _pinned_settings(settings)


def change_run_settings(**changes: Any) -> None:
    """Changes some of the session's run settings (`RunSettings` fields), keeping the others.

    Nothing is written when every named field already has its value, so a page may call it on every run.
    """
    settings = run_settings()
    if any(getattr(settings, name) != value for name, value in changes.items()):
        set_run_settings(replace(settings, **changes))


def lesson() -> Lesson | None:
    """The session's lesson, None outside lesson mode; read from the link on the session's first run.

    What the link's lesson part got wrong is kept as notices for the first page to show.
    """
    if Key.LESSON not in st.session_state:
        found, notices = parse_lesson(st.query_params.to_dict())
        st.session_state[Key.LESSON] = found
        st.session_state[Key.LESSON_NOTICES] = (None, tuple(notices))  # the page is known once one is shown
    return st.session_state[Key.LESSON]


def start_lesson(limits: ServerLimits, available_devices: list[str]) -> None:
    """Reads a lesson link's model now, while the link is in the address (the first page switch drops it).

    The lesson's values win over a spec already in the session: its hidden and locked controls keep them.
    """
    if lesson() is not None and Key.LESSON_SPEC not in st.session_state:
        _start_from_link(limits, available_devices)


def leave_lesson() -> None:
    """Button callback: leaves lesson mode for this session; every control comes back and the link is a model's."""
    st.session_state[Key.LESSON] = None
    for name in [name for name in st.query_params if is_lesson_param(name)]:
        del st.query_params[name]


def keep_lesson_in_link() -> None:
    """Puts the lesson's parameters back in the address, so a reload or a copied address stays in the lesson."""
    current = lesson()
    if current is not None:
        st.query_params.update(lesson_params(current))


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
    params = spec_to_query_params(spec, settings, matching_preset(spec, PRESETS))
    current = lesson()
    st.query_params.from_dict(params if current is None else {**params, **lesson_params(current)})


def _start_from_link(limits: ServerLimits, available_devices: list[str]) -> None:
    """Fills the session's spec and run settings from the query parameters (or the default preset)."""
    preset_specs = {name: preset.spec for name, preset in PRESETS.items()}
    query = st.query_params.to_dict()
    params = model_params(query)  # the lesson's own parameters are `lesson()`'s
    current = lesson()
    if current is not None:  # the values of hidden and locked controls are the lesson's
        params, lesson_notices = fixed_link_params(params, current)
    else:  # lesson settings in a link that is no lesson: said with the link's other notices
        lesson_notices = list(st.session_state[Key.LESSON_NOTICES][1])
    link = read_link(params, limits, available_devices, preset_specs, DEFAULT_PRESET)
    if current is not None:
        st.session_state[Key.LESSON_SPEC] = link.spec
        # Devices the link leaves open are the Train page's default: this server's, none data parallel.
        defaults = tuple(device for device in available_devices if device not in PARALLEL_NAMES)
        st.session_state[Key.LESSON_SETTINGS] = replace(link.settings, devices=link.settings.devices or defaults)
    st.session_state[Key.MODEL_SPEC] = link.spec
    st.session_state[Key.RUN_SETTINGS] = link.settings
    notices = tuple(fold_notices([*lesson_notices, *link.notices]))
    # Without a link, what changed is the default preset, fitted to this server's limits: say so, not "this link".
    header = LINK_NOTICES_HEADER if query else PRESET_NOTICES_HEADER
    st.session_state[Key.LINK_NOTICES] = PendingNotices(notices, link.spec, header) if notices else None


def _pinned_spec(spec: ModelSpec) -> ModelSpec:
    """The spec with the lesson's values in its hidden and locked fields (the spec itself outside a lesson)."""
    current, kept = st.session_state.get(Key.LESSON), st.session_state.get(Key.LESSON_SPEC)
    if current is None or kept is None:
        return spec
    pinned = pin_spec(spec, current, kept)
    return spec if pinned == spec else pinned


def _pinned_settings(settings: RunSettings) -> RunSettings:
    """The run settings with the lesson's devices and sample limit where those controls are hidden or locked."""
    current, kept = st.session_state.get(Key.LESSON), st.session_state.get(Key.LESSON_SETTINGS)
    return settings if current is None or kept is None else pin_settings(settings, current, kept)
