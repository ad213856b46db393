"""AppTests of lesson mode through the router: hidden and locked controls the session cannot change, the banner
and its way out, the teacher's notes as literal text, "Next" along the home page's steps, the lesson form."""

from __future__ import annotations

import urllib.parse

import pytest
from streamlit.testing.v1 import AppTest

from lib.lesson import LESSON_STEPS, parse_lesson
from lib.presets import PRESETS
from tests.conftest import REPO_ROOT
from ui import runtime
from ui.keys import Key

APP = str(REPO_ROOT / "streamlit_app.py")
LOCKED_BATCH = {"lesson": "1", "lock": "batch,devices", "fix_batch": "1024", "fix_devices": "cpu:0"}
NOTE = "**Bold** [a link](https://example.com) $x^2$ :red[red] <b>b</b>"


@pytest.fixture
def quiet_server(runs_db, monkeypatch):
    """A fresh run store, nothing imported in the background; the Train page's job runner ends with the test."""
    monkeypatch.setenv("GPUX_WARM_WORKER", "0")
    monkeypatch.setenv("GPUX_WARMUP", "0")
    yield runs_db
    runtime.runner().shutdown()


def open_app(query: dict[str, str], page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in query.items():
        at.query_params[name] = value
    if page is not None:
        at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception
    return at


def drawn(at: AppTest, kind: str, key: str) -> bool:
    """Whether the page drew a widget of this kind (an AppTest accessor: "selectbox", "pills") with this key."""
    try:
        getattr(at, kind)(key=key)
    except KeyError:
        return False
    return True


def page_links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def warnings(at: AppTest) -> str:
    return " ".join(warning.value for warning in at.warning)


def test_a_locked_control_is_disabled_and_the_links_own_value_for_it_is_ignored_with_a_notice(quiet_server):
    at = open_app({**LOCKED_BATCH, "batch": "4096", "opt": "sgd"}, page="build")
    batch = at.select_slider(key=Key.BATCH_SIZE)
    assert batch.disabled and batch.value == 1024
    assert not at.selectbox(key=Key.OPTIMIZER).disabled
    spec = at.session_state[Key.MODEL_SPEC]
    assert (spec.batch_size, spec.optimizer) == (1024, "sgd")  # the link's other values count
    assert "`batch=4096`" in warnings(at) and "this lesson keeps its own value there" in warnings(at)
    assert at.query_params["lesson"] == "1" and at.query_params["batch"] == "1024"


def test_the_session_cannot_change_a_locked_control(quiet_server):
    at = open_app(LOCKED_BATCH, page="build")
    # A value for the locked widget in the session (as a forged or stale browser value would be), sent with a change
    # of another widget: the spec the callback rebuilds keeps the lesson's batch.
    at.session_state[Key.BATCH_SIZE] = 64
    at.selectbox(key=Key.OPTIMIZER).set_value("sgd").run()
    spec = at.session_state[Key.MODEL_SPEC]
    assert (spec.batch_size, spec.optimizer) == (1024, "sgd")
    assert at.select_slider(key=Key.BATCH_SIZE).value == 1024
    at.session_state[Key.MODEL_SPEC] = at.session_state[Key.MODEL_SPEC].with_changes(batch_size=8, epochs=2)
    at.run()
    spec = at.session_state[Key.MODEL_SPEC]
    assert (spec.batch_size, spec.epochs) == (1024, 2)  # epochs is not locked
    at.pills(key=Key.PRESET).set_value("cifar10-seed").run()  # a preset loads, the lesson's batch stays
    assert at.session_state[Key.MODEL_SPEC] == PRESETS["cifar10-seed"].spec.with_changes(batch_size=1024)
    assert at.select_slider(key=Key.BATCH_SIZE).value == 1024


def test_locked_devices_are_disabled_on_the_train_page_and_kept(quiet_server):
    at = open_app(LOCKED_BATCH, page="train")
    devices = at.multiselect(key=Key.DEVICES)
    assert devices.disabled and devices.value == ["cpu:0"]
    assert not at.slider(key=Key.EPOCHS).disabled


def test_hidden_controls_are_not_drawn_and_keep_the_lessons_value(quiet_server):
    query = {"lesson": "1", "hide": "opt,units,preset", "fix_opt": "sgd", "opt": "adam"}
    at = open_app(query, page="build")
    for kind, key in (("selectbox", Key.OPTIMIZER), ("slider", Key.HIDDEN_LAYERS), ("pills", Key.PRESET)):
        assert not drawn(at, kind, key), key
    assert drawn(at, "selectbox", Key.HIDDEN_ACTIVATION)  # the others are drawn
    assert at.session_state[Key.MODEL_SPEC].optimizer == "sgd"


@pytest.mark.parametrize(
    ("control", "kind", "key"), [("devices", "multiselect", Key.DEVICES), ("epochs", "slider", Key.EPOCHS)]
)
def test_hidden_train_controls_are_not_drawn(quiet_server, control, kind, key):
    at = open_app({"lesson": "1", "hide": control}, page="train")
    assert not drawn(at, kind, key)
    assert drawn(at, "button", Key.TRAIN)


def test_notes_are_literal_text_at_the_top_of_each_page(quiet_server):
    at = open_app({"lesson": "1", "note": NOTE, "note_home": "Home only", "note_build": "Build only"})
    texts = [element.value for element in at.text]
    assert texts == [NOTE, "Home only"]
    assert not any("Bold" in element.value or "example.com" in element.value for element in at.markdown)
    at.switch_page("app_pages/build.py").run()
    assert [element.value for element in at.text] == [NOTE, "Build only"]


def test_lesson_mode_says_so_and_each_page_ends_with_next_along_the_steps(quiet_server):
    at = open_app({"lesson": "1"})
    assert any("Lesson mode" in element.value and "Start here" in element.value for element in at.markdown)
    assert page_links(at)[-1] == f"Next: 1. {LESSON_STEPS[0].title}"
    at = open_app({"lesson": "1"}, page="build")
    assert any(f"step 3 of {len(LESSON_STEPS)}" in element.value for element in at.markdown)
    assert page_links(at)[-1] == "Next: 4. Train"
    carried = dict(urllib.parse.parse_qsl(at.get("page_link")[-1].proto.query_string))
    assert carried["lesson"] == "1" and carried["preset"] == "fashion-seed"  # the lesson and the model go on


def test_no_next_and_no_banner_outside_lesson_mode(quiet_server):
    at = open_app({}, page="build")
    assert not any(label.startswith("Next:") for label in page_links(at))
    assert not drawn(at, "button", Key.LEAVE_LESSON)


def test_a_lesson_opens_on_its_start_page(quiet_server):
    at = open_app({"lesson": "1", "start": "build"})
    assert at.title[0].value == "Build a model"


def test_leaving_lesson_mode_restores_every_control(quiet_server):
    at = open_app({**LOCKED_BATCH, "hide": "opt"}, page="build")
    at.button(key=Key.LEAVE_LESSON).click().run()
    assert not at.exception
    assert not at.select_slider(key=Key.BATCH_SIZE).disabled
    assert drawn(at, "selectbox", Key.OPTIMIZER)
    assert "lesson" not in at.query_params and "lock" not in at.query_params
    assert not any(label.startswith("Next:") for label in page_links(at))
    at.select_slider(key=Key.BATCH_SIZE).set_value(64).run()
    assert at.session_state[Key.MODEL_SPEC].batch_size == 64


def test_unknown_lesson_settings_get_a_notice_quoted_as_code(quiet_server):
    at = open_app({"lesson": "1", "hide": "batch,**sudo**", "note_admin": "x"})
    assert "`**sudo**`" in warnings(at) and "`note_admin`" in warnings(at)
    assert at.session_state[Key.LESSON].hidden == ("batch",)


def test_the_lesson_form_writes_a_link_that_opens_that_lesson(quiet_server):
    at = open_app({})
    at.selectbox(key=Key.LESSON_FORM_START).set_value("build")
    at.selectbox(key=Key.LESSON_FORM_MODEL).set_value("cifar10-seed")
    at.multiselect(key=Key.LESSON_FORM_HIDE).set_value(["opt"])
    at.multiselect(key=Key.LESSON_FORM_LOCK).set_value(["batch"])
    at.text_area(key=Key.LESSON_FORM_NOTE).set_value("Watch the **epoch** times")
    at.button(key=Key.LESSON_FORM_MAKE).click().run()
    assert not at.exception
    link = at.code[-1].value
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    lesson, notices = parse_lesson(query)
    assert notices == [] and lesson.start == "build" and lesson.note == "Watch the **epoch** times"
    assert (lesson.hidden, lesson.locked) == (("opt",), ("batch",))
    cifar = PRESETS["cifar10-seed"].spec
    assert dict(lesson.fixed) == {"opt": cifar.optimizer, "batch": str(cifar.batch_size)}
    student = open_app(query)
    assert student.title[0].value == "Build a model"
    assert student.select_slider(key=Key.BATCH_SIZE).disabled
    assert student.session_state[Key.MODEL_SPEC] == cifar


def test_the_lesson_form_keeps_the_sessions_target_runs_and_sweep_sizes_for_the_controls_it_locks(quiet_server):
    at = open_app({"target": "0.8", "repeats": "2", "batches": "64,1024"})  # the teacher's own run settings
    at.multiselect(key=Key.LESSON_FORM_LOCK).set_value(["target", "repeats", "batches"])
    at.button(key=Key.LESSON_FORM_MAKE).click().run()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(at.code[-1].value).query))
    lesson, _ = parse_lesson(query)
    assert dict(lesson.fixed) == {"target": "0.8", "repeats": "2", "batches": "64,1024"}

    student = open_app({**query, "batches": "32,64"}, page="sweep")  # a student's edited link changes nothing
    assert student.multiselect(key=Key.SWEEP_BATCHES).disabled
    assert student.multiselect(key=Key.SWEEP_BATCHES).value == [64, 1024]


def test_pages_that_show_nothing_more_still_lead_on_in_a_lesson(quiet_server, runs_db, keras_home, monkeypatch):
    monkeypatch.setenv("GPUX_DATA_DIR", str(runs_db.parent / "no-datasets"))  # CIFAR-10 is not on this server
    at = open_app({"lesson": "1"}, page="results")  # an empty run store: "No runs yet", nothing more to draw
    assert any("No runs yet" in info.value for info in at.info)
    assert page_links(at)[-1] == f"Next: 6. {LESSON_STEPS[5].title}"

    at = open_app({"lesson": "1"}, page="datasets")
    at.selectbox(key=Key.DATASET).set_value("cifar10").run()
    assert not at.exception
    assert page_links(at)[-1] == f"Next: 3. {LESSON_STEPS[2].title}"
