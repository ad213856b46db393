"""AppTest of ui/session.py's link reading and notices: literal, shown while the model is the link's."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from lib.links import LinkNotice, RunSettings
from lib.spec import ModelSpec
from ui import session
from ui.keys import Key


def open_link_script() -> None:
    """The part of a page that reads the link and shows its notices."""
    from lib.limits import ServerLimits
    from ui import session

    session.current_spec(ServerLimits(), ["cpu:0"])
    session.show_link_notices()


def open_link(query: dict[str, str]) -> AppTest:
    at = AppTest.from_function(open_link_script, default_timeout=30)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def test_a_link_sets_the_session_and_its_notices_quote_the_link_as_code():
    at = open_link({"layers": "2", "units": "64", "devices": "cpu:0,$x$", "job": "abcdefabcdef", "**b**": "1"})
    assert not at.exception
    assert at.session_state[Key.MODEL_SPEC].hidden_units == (64, 64)
    assert at.session_state[Key.RUN_SETTINGS] == RunSettings(devices=("cpu:0",), job_id="abcdefabcdef")
    [warning] = at.warning
    assert warning.value.startswith("Some settings in this link were changed\\:\n- Ignored ")
    assert "`**b**`" in warning.value and "`$x$`" in warning.value
    assert "**b**" not in warning.value.replace("`**b**`", "")


def test_notices_stay_through_reruns_until_the_model_changes():
    at = open_link({"epochs": "abc"})
    assert len(at.warning) == 1
    at.run()  # a rerun nobody asked for (the router's, once the backend has loaded)
    assert len(at.warning) == 1
    at.session_state[Key.MODEL_SPEC] = at.session_state[Key.MODEL_SPEC].with_changes(epochs=2)
    at.run()
    assert not at.warning
    assert Key.LINK_NOTICES not in at.session_state
    at.session_state[Key.MODEL_SPEC] = ModelSpec()
    at.run()
    assert not at.warning  # gone for good, not back with the old model


def test_a_clean_link_shows_no_notice():
    at = open_link({"layers": "2", "units": "64"})
    assert not at.warning and not at.session_state[Key.LINK_NOTICES]


def show_notices_script() -> None:
    from ui import session

    session.show_link_notices()


def test_notices_a_page_writes_itself_are_escaped_and_can_have_their_own_header():
    at = AppTest.from_function(show_notices_script, default_timeout=30)
    at.session_state[Key.MODEL_SPEC] = ModelSpec()
    at.session_state[Key.LINK_NOTICES] = ["units: [500] -> [256] **now**"]
    at.run()
    assert at.warning[0].value.endswith("- units\\: \\[500\\] \\-\\> \\[256\\] \\*\\*now\\*\\*")
    at.session_state[Key.LINK_NOTICES] = session.PendingNotices(
        (LinkNotice("The model has 3 hidden layers."),), ModelSpec(), header=session.PRESET_NOTICES_HEADER
    )
    at.run()
    assert at.warning[0].value == "This preset was changed to fit this server\\:\n- The model has 3 hidden layers\\."


def open_without_a_link_on_a_small_server_script() -> None:
    from lib.limits import ServerLimits
    from ui import session

    session.current_spec(ServerLimits(hidden_layers=3), ["cpu:0"])
    session.show_link_notices()


def test_without_a_link_the_fitted_default_preset_is_not_called_a_link():
    at = AppTest.from_function(open_without_a_link_on_a_small_server_script, default_timeout=30).run()
    [warning] = at.warning
    assert warning.value.startswith("This preset was changed to fit this server\\:\n- To fit this server")
    assert "link" not in warning.value
