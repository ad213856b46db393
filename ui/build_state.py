"""Streamlit-side: the Build page's widgets <-> the session's model spec, kept in step in this one module.

The spec in session state is the truth; the widgets show it. `show_spec` sets every widget's value from it
before the widgets are drawn, and each widget's callback rebuilds it from all the widgets
(`ui.page_data.spec_from_build_widgets`, which follows `lib.spec.SPEC_FIELDS`).

A preset click writes the preset's spec and every widget's value at once. The browser may send stale values
of other widgets with the click (a slider hidden in per-layer mode, say); their callbacks, before or after the
preset's in the same rerun, then rebuild from values that already show the preset, so the preset wins
without a flag to set, check and clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from lib.links import fit_to_limits
from lib.presets import PRESETS
from lib.spec import DEFAULT_LEARNING_RATES, SPEC_FIELD, ModelSpec
from ui import lesson, runtime, session
from ui.keys import Key
from ui.page_data import build_widget_values, matching_preset, spec_from_build_widgets


def show_spec(spec: ModelSpec) -> None:
    """Sets every Build widget's value from the spec (call before the widgets are drawn).

    The preset chooser shows the preset the model still is, and nothing once the model was changed.
    """
    _write_widgets(spec)
    st.session_state[Key.PRESET] = matching_preset(spec, PRESETS)


def control(draw: Callable[..., Any], name: str, **options: Any) -> None:
    """Draws a spec field's widget with `draw` (`st.selectbox`, ...), unless the lesson hides it.

    Args:
        draw: The Streamlit widget function.
        name: The spec field (a `lib.spec.SPEC_FIELDS` name).
        **options: The widget's own arguments (options, bounds); `widget(name)` gives the rest.
    """
    if not lesson.hidden(name):
        draw(**options, **widget(name))


def widget(name: str) -> dict[str, Any]:
    """A spec field's widget arguments, from `lib.spec.SPEC_FIELDS`: label, key, tooltip, callback, disabled.

    A field capped by a server limit says the limit in its tooltip (where it is set is in the server
    owner's expander). A field the lesson locks is drawn disabled.
    """
    spec_field = SPEC_FIELD[name]
    tooltip = spec_field.help or None
    if spec_field.limit:
        tooltip = f"Server limit: {getattr(runtime.server_limits(), spec_field.limit):,} {spec_field.unit}."
    callback = on_optimizer_change if name == "optimizer" else on_change
    disabled = lesson.locked(name)
    return {
        "label": spec_field.label,
        "key": spec_field.key,
        "help": tooltip,
        "on_change": callback,
        "disabled": disabled,
    }


def on_change() -> None:
    """Widget callback: the session's spec becomes what the widgets show."""
    session.set_spec(spec_from_build_widgets(st.session_state, _session_spec()))


def on_optimizer_change() -> None:
    """Optimizer callback: a new optimizer starts from its usual learning rate."""
    optimizer = st.session_state[Key.OPTIMIZER]
    if optimizer != _session_spec().optimizer:  # not when a preset click in this rerun has just set it
        st.session_state[Key.LEARNING_RATE] = DEFAULT_LEARNING_RATES[optimizer]
    on_change()


def on_preset_click() -> None:
    """Preset chooser callback: loads the chosen preset, fitted to this server's limits, into spec and widgets."""
    name = st.session_state[Key.PRESET]
    if name is None:
        return
    preset_spec, notices = fit_to_limits(PRESETS[name].spec, runtime.server_limits())
    session.set_spec(preset_spec)
    preset_spec = _session_spec()  # in a lesson, its hidden and locked fields keep the lesson's values
    _write_widgets(preset_spec, per_layer=len(set(preset_spec.hidden_units)) > 1)
    if notices:
        st.session_state[Key.LINK_NOTICES] = session.PendingNotices(
            tuple(notices), preset_spec, header=session.PRESET_NOTICES_HEADER
        )


def _write_widgets(spec: ModelSpec, per_layer: bool | None = None) -> None:
    """Writes the widget values that show `spec`; only changed ones, so the browser keeps the rest as sent.

    Args:
        spec: The spec to show.
        per_layer: The per-layer units toggle; None keeps the user's choice, turned on when the layers differ.
    """
    for key, value in build_widget_values(spec).items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value
    if per_layer is None and (len(set(spec.hidden_units)) > 1 or Key.PER_LAYER_UNITS not in st.session_state):
        per_layer = len(set(spec.hidden_units)) > 1
    if per_layer is not None:
        st.session_state[Key.PER_LAYER_UNITS] = per_layer


def _session_spec() -> ModelSpec:
    return session.current_spec(runtime.server_limits(), [])  # callbacks run once the page has set it
