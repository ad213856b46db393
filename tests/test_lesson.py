"""Tests of lib/lesson.py: the lesson's steps, lesson links read and written back, bounds and notices, pinning."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.lesson import (
    BOARD_PAGE,
    CONTROLS,
    HOME_PAGE,
    LESSON_PAGES,
    LESSON_STEPS,
    MAX_FIXED_CHARS,
    MAX_NOTE_CHARS,
    Lesson,
    clean_note,
    fixed_link_params,
    is_lesson_param,
    lesson_params,
    lesson_url,
    make_lesson,
    model_params,
    next_step,
    parse_lesson,
    pin_settings,
    pin_spec,
    step_number,
)
from lib.limits import ServerLimits
from lib.links import (
    FRAGMENT_CHARS,
    MAX_LISTED,
    RunSettings,
    read_link,
    run_settings_from_query_params,
    spec_to_query_params,
)
from lib.presets import PRESETS
from lib.spec import SPEC_FIELDS, ModelSpec

PRESET_SPECS = {name: preset.spec for name, preset in PRESETS.items()}


def texts(notices) -> str:
    return " | ".join(notice.text for notice in notices)


def test_the_steps_are_the_app_pages_in_lesson_order_and_next_follows_them():
    assert [step.page for step in LESSON_STEPS] == ["gpu", "datasets", "build", "train", "results", "sweep"]
    assert next_step(HOME_PAGE) == LESSON_STEPS[0]
    assert [next_step(step.page) for step in LESSON_STEPS] == [*LESSON_STEPS[1:], None]
    assert next_step(BOARD_PAGE) is None
    assert step_number("build") == 3 and step_number(HOME_PAGE) is None


def test_every_spec_field_and_the_train_pages_settings_can_be_hidden_or_locked():
    spec_controls = {control.spec_field for control in CONTROLS.values() if control.spec_field}
    assert spec_controls == {spec_field.name for spec_field in SPEC_FIELDS}
    assert {"preset", "devices", "samples"} <= set(CONTROLS)
    assert CONTROLS["units"].params == ("layers", "units")


def test_a_link_without_lesson_is_no_lesson():
    assert parse_lesson({"batch": "32"}) == (None, [])


def test_lesson_settings_without_lesson_1_are_ignored_with_a_notice():
    lesson, notices = parse_lesson({"hide": "batch", "start": "gpu"})
    assert lesson is None
    assert "“hide” and “start”" in texts(notices) and "no lesson=1" in texts(notices)


def test_a_lesson_link_is_read_whole():
    lesson, notices = parse_lesson(
        {
            "lesson": "1",
            "start": "train",
            "hide": "seed,spe",
            "lock": "devices,batch,seed",  # seed is hidden: hidden wins
            "note": "  Watch the epoch times.  ",
            "note_train": "Press Train once.",
            "fix_batch": "1024",
            "fix_seed": "7",
        }
    )
    assert notices == []
    assert lesson == Lesson(
        start="train",
        hidden=("seed", "spe"),
        locked=("batch", "devices"),
        note="Watch the epoch times.",
        page_notes=(("train", "Press Train once."),),
        fixed=(("batch", "1024"), ("seed", "7")),
    )
    assert lesson.pinned == ("batch", "seed", "spe", "devices")
    assert lesson.notes_for("train") == ("Watch the epoch times.", "Press Train once.")
    assert lesson.notes_for("gpu") == ("Watch the epoch times.",)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"lesson": "2"}, "lesson=2"),
        ({"lesson": "1", "start": "admin"}, "start=admin"),
        ({"lesson": "1", "hide": "batch,sudo,$x$"}, "“sudo” and “$x$”"),
        ({"lesson": "1", "note_admin": "x", "lessons": "1"}, "“note_admin”"),
        ({"lesson": "1", "lock": "batch", "fix_epochs": "3"}, "fix_epochs=3"),
        ({"lesson": "1", "lock": "batch", "fix_batch": "9" * (MAX_FIXED_CHARS + 1)}, "fix_batch=999"),
        ({"lesson": "1", "hide": "batch," * 200}, "hide="),
    ],
)
def test_what_a_lesson_link_gets_wrong_is_said_and_ignored(params, expected):
    lesson, notices = parse_lesson(params)
    assert expected in texts(notices)
    if params["lesson"] == "1":
        assert lesson is not None and lesson.start == HOME_PAGE


def test_unknown_lesson_settings_are_quoted_at_most_three_at_a_time():
    params = {"lesson": "1", **{f"note_x{index}": "n" for index in range(50)}}
    lesson, [notice] = parse_lesson(params)
    assert lesson == Lesson()
    assert len(notice.ignored) == MAX_LISTED and notice.more == 50 - MAX_LISTED


def test_a_long_note_is_cut_with_a_notice_and_hidden_characters_are_shown():
    lesson, notices = parse_lesson({"lesson": "1", "note": "a" * 10_000})
    assert len(lesson.note) == MAX_NOTE_CHARS and lesson.note.endswith("…")
    assert "longer than" in texts(notices)
    assert clean_note("a\u202eb\r\nc\x00") == "a\ufffdb\nc\ufffd"


def test_only_lesson_names_are_the_lessons_and_the_rest_is_the_models():
    params = {"lesson": "1", "note_gpu": "x", "fix_batch": "8", "batch": "32", "presenter": "1"}
    assert model_params(params) == {"batch": "32", "presenter": "1"}
    assert not is_lesson_param("fix_" + "x" * 10_000)  # long names are the link's (and its unknown-name notice)


def test_the_lessons_fixed_value_replaces_the_links_own_with_a_notice():
    lesson, _ = parse_lesson({"lesson": "1", "lock": "batch,units", "fix_batch": "1024", "fix_units": "64,32"})
    params, notices = fixed_link_params({"batch": "4096", "layers": "5", "units": "500", "opt": "sgd"}, lesson)
    assert params == {"batch": "1024", "units": "64,32", "opt": "sgd"}
    [notice] = notices
    assert notice.ignored == ("layers=5", "units=500", "batch=4096")  # in CONTROLS order
    link = read_link(params, ServerLimits(), ["cpu:0"], PRESET_SPECS, "fashion-seed")
    assert (link.spec.batch_size, link.spec.hidden_units, link.spec.optimizer) == (1024, (64, 32), "sgd")


def test_a_link_that_agrees_with_the_lesson_gets_no_notice():
    lesson, _ = parse_lesson({"lesson": "1", "lock": "batch", "fix_batch": "1024"})
    assert fixed_link_params({"batch": "1024"}, lesson) == ({"batch": "1024"}, [])


def test_pinning_keeps_the_lessons_values_for_hidden_and_locked_controls_only():
    lesson = Lesson(hidden=("opt",), locked=("batch", "units", "devices", "samples"))
    kept = ModelSpec(optimizer="sgd", batch_size=1024, hidden_units=(64,))
    asked = ModelSpec(optimizer="adam", batch_size=8, hidden_units=(9, 9), epochs=3)
    assert pin_spec(asked, lesson, kept) == asked.with_changes(optimizer="sgd", batch_size=1024, hidden_units=(64,))
    kept_settings = RunSettings(devices=("cpu:0",), sample_limit=500)
    asked_settings = RunSettings(devices=("gpu:0",), sample_limit=9, job_id="abcdefabcdef")
    assert pin_settings(asked_settings, lesson, kept_settings) == RunSettings(("cpu:0",), 500, "abcdefabcdef")
    assert pin_spec(asked, Lesson(), kept) is asked


def test_a_lesson_keeps_the_target_the_runs_per_device_and_the_sweeps_batch_sizes_it_pins():
    params = {"lesson": "1", "hide": "repeats", "lock": "target,batches", "fix_target": "0.8", "fix_batches": "32,512"}
    lesson, notices = parse_lesson(params)
    assert notices == [] and lesson.pinned == ("target", "repeats", "batches")
    link = {"target": "0.5", "repeats": "4", "batches": "64,128"}  # a student's edited link
    fixed, [notice] = fixed_link_params(link, lesson)
    assert notice.ignored == ("target=0.5", "batches=64,128")  # repeats has no fix_ value: the link's is kept
    settings, _ = run_settings_from_query_params(fixed, ServerLimits(), ["cpu:0"])
    assert (settings.target_accuracy, settings.repeats, settings.sweep_batches) == (0.8, 4, (32, 512))

    asked = RunSettings(target_accuracy=0.6, repeats=5, sweep_batches=(8, 16))  # what the pages were asked
    assert pin_settings(asked, lesson, settings) == settings
    assert pin_settings(asked, Lesson(locked=("devices",)), settings) == asked


def test_a_teachers_lesson_keeps_the_models_values_and_makes_a_link_that_reads_back():
    model = spec_to_query_params(ModelSpec(batch_size=256), RunSettings(devices=("cpu:0",)), None)
    lesson = make_lesson(
        "build",
        ("seed",),
        ("batch", "devices", "seed"),
        {"note": "Hello **class**", "train": "", "gpu": " GPUs! "},
        model,
    )
    assert lesson.hidden == ("seed",) and lesson.locked == ("batch", "devices")
    assert lesson.fixed == (("batch", "256"), ("devices", "cpu:0"), ("seed", "0"))
    assert lesson.page_notes == (("gpu", "GPUs!"),)
    url = lesson_url("http://server:8501/", model, lesson)
    assert url.startswith("http://server:8501/?")
    read = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert parse_lesson(read) == (lesson, [])
    assert model_params(read) == model


# --- properties --------------------------------------------------------------------------------------

NOTES = st.text(max_size=MAX_NOTE_CHARS + 20).map(clean_note)
CONTROL_SETS = st.lists(st.sampled_from(list(CONTROLS)), unique=True)


@st.composite
def lessons(draw) -> Lesson:
    """Any lesson a teacher can make: a start page, hidden and locked controls, notes and fixed values."""
    hidden = draw(CONTROL_SETS)
    locked = [name for name in draw(CONTROL_SETS) if name not in hidden]
    pinned = [name for name in CONTROLS if name in hidden or name in locked]
    params = sorted({param for name in pinned for param in CONTROLS[name].params})
    fixed = draw(st.dictionaries(st.sampled_from(params), st.text(max_size=MAX_FIXED_CHARS))) if params else {}
    page_notes = draw(st.dictionaries(st.sampled_from(LESSON_PAGES), NOTES))
    return Lesson(
        start=draw(st.sampled_from(LESSON_PAGES)),
        hidden=tuple(name for name in CONTROLS if name in hidden),
        locked=tuple(name for name in CONTROLS if name in locked),
        note=draw(NOTES),
        page_notes=tuple((page, page_notes[page]) for page in LESSON_PAGES if page_notes.get(page)),
        fixed=tuple(sorted(fixed.items())),
    )


@settings(max_examples=300, deadline=None)
@given(lessons())
def test_every_lesson_reads_back_from_its_link_without_a_notice(lesson):
    assert parse_lesson(lesson_params(lesson)) == (lesson, [])


LESSON_NAMES = ["lesson", "start", "hide", "lock", "note", "note_gpu", "note_x", "fix_batch", "fix_zz", "batch"]
HOSTILE_VALUES = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["1", "gpu", "batch,units", "$x$", "**b**", "[x](https://e.com)", ",,,", "1" * 5000]),
    st.lists(st.text(max_size=10), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(LESSON_NAMES), st.text(max_size=12)), HOSTILE_VALUES, max_size=12))
def test_any_link_reads_as_a_bounded_lesson_that_reads_back_the_same(params):
    lesson, notices = parse_lesson(params)
    assert len(notices) <= 6  # one per kind: unknown names, start, hide, lock, a long note, fixed values
    for notice in notices:
        assert len(notice.ignored) <= MAX_LISTED
        assert all(len(piece) <= 2 * (FRAGMENT_CHARS + 1) + 1 for piece in notice.ignored)
    if lesson is None:
        return
    assert len(lesson.note) <= MAX_NOTE_CHARS and all(len(note) <= MAX_NOTE_CHARS for _, note in lesson.page_notes)
    assert set(lesson.hidden) | set(lesson.locked) <= set(CONTROLS) and lesson.start in LESSON_PAGES
    assert parse_lesson(lesson_params(lesson)) == (lesson, [])
