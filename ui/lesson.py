"""Streamlit-side lesson mode: the banner and its way out, the teacher's notes, "Next", and the lesson form.

The router calls `open_start_page`, `draw_top` and `draw_next` around every page; the Build and Train pages
ask `hidden` and `locked` which of their controls to leave out or disable; the home page draws `draw_form`.
The lesson itself (what it hides, locks and keeps) is `ui.session.lesson()`, read from the link once.
Nothing from a link renders as markdown: notes are `st.text`, notices quote the link's pieces as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from lib.lesson import (
    CONTROLS,
    HOME_PAGE,
    LESSON_PAGES,
    LESSON_STEPS,
    MAX_NOTE_CHARS,
    NOTE_PARAM,
    PAGE_TITLES,
    lesson_params,
    lesson_url,
    make_lesson,
    next_step,
    step_number,
)
from lib.links import RunSettings, fit_to_limits, spec_to_query_params
from lib.presets import PRESETS
from lib.spec import SPEC_FIELD
from ui import runtime, session
from ui.keys import Key

LESSON_NOTICES_HEADER = "Some lesson settings in this link were ignored:"
CURRENT_MODEL = ""  # the lesson form's model choice: the model this session is building


def hidden(control: str) -> bool:
    """Whether the lesson hides a control (a name in `lib.lesson.CONTROLS`, or a spec field's name)."""
    lesson = session.lesson()
    return lesson is not None and _control_name(control) in lesson.hidden


def locked(control: str) -> bool:
    """Whether the lesson locks a control (drawn, disabled)."""
    lesson = session.lesson()
    return lesson is not None and _control_name(control) in lesson.locked


def open_start_page(current: str, pages: Mapping[str, StreamlitPage]) -> None:
    """Opens the lesson's start page once per session, when the link opened the home page.

    Args:
        current: The page the router is about to run (a name in `lib.lesson.LESSON_PAGES`).
        pages: Page name -> the router's page.
    """
    lesson = session.lesson()
    if lesson is None or st.session_state.get(Key.LESSON_STARTED):
        return
    st.session_state[Key.LESSON_STARTED] = True
    if current == HOME_PAGE and lesson.start != HOME_PAGE:
        st.switch_page(pages[lesson.start], query_params=st.query_params.to_dict())


def draw_top(page: str) -> None:
    """In lesson mode: the banner with the step and "Leave lesson mode", what the link got wrong, the notes."""
    lesson = session.lesson()
    if lesson is None:
        return
    number = step_number(page)
    where = f"step {number} of {len(LESSON_STEPS)}" if number else PAGE_TITLES.get(page, "")
    with st.container(border=True, horizontal=True, vertical_alignment="center"):
        st.markdown(f"**Lesson mode**, {where}. Your teacher has chosen what this lesson shows.")
        st.button(
            "Leave lesson mode",
            key=Key.LEAVE_LESSON,
            icon=":material/logout:",
            on_click=session.leave_lesson,
            help="The whole app: every page in the menu and every control back.",
        )
    _draw_lesson_notices(page)
    for note in lesson.notes_for(page):
        with st.container(border=True):
            st.caption("Your teacher's note")
            st.text(note)  # literal: a note is never markdown


def draw_next(page: str, pages: Mapping[str, StreamlitPage]) -> None:
    """In lesson mode: "Next: <number>. <step>" at the end of the page, the way forward without the sidebar."""
    lesson = session.lesson()
    if lesson is None:
        return
    step = next_step(page)
    st.divider()
    if step is None:
        if step_number(page) == len(LESSON_STEPS):
            st.caption("That was the lesson's last step.")
        st.page_link(pages[HOME_PAGE], label="The lesson's steps", icon=":material/list:")
        return
    st.page_link(
        pages[step.page],
        label=f"Next: {step_number(step.page)}. {step.title}",
        icon=":material/arrow_forward:",
        query_params={**st.query_params.to_dict(), **lesson_params(lesson)},  # the model and the lesson go on
    )


def draw_form() -> None:
    """The teacher's form: start page, model, hidden and locked controls, notes; writes the lesson link."""
    with st.form(key=Key.LESSON_FORM, border=False):
        st.selectbox("The class starts on", LESSON_PAGES, format_func=PAGE_TITLES.get, key=Key.LESSON_FORM_START)
        st.selectbox(
            "Model",
            [CURRENT_MODEL, *PRESETS],
            format_func=lambda name: PRESETS[name].title if name else "The model on the Build page now",
            key=Key.LESSON_FORM_MODEL,
        )
        names = list(CONTROLS)
        st.multiselect("Hide these controls", names, format_func=_control_label, key=Key.LESSON_FORM_HIDE)
        st.multiselect(
            "Lock these controls (shown, not changeable)", names, format_func=_control_label, key=Key.LESSON_FORM_LOCK
        )
        st.text_area("A note at the top of every page (plain text)", max_chars=MAX_NOTE_CHARS, key=Key.LESSON_FORM_NOTE)
        with st.expander("A note for one page"):
            for page in LESSON_PAGES:
                st.text_input(PAGE_TITLES[page], max_chars=MAX_NOTE_CHARS, key=f"{Key.LESSON_FORM_NOTE}_{page}")
        made = st.form_submit_button("Make the lesson link", key=Key.LESSON_FORM_MAKE, icon=":material/link:")
    if made:
        st.session_state[Key.LESSON_FORM_LINK] = _lesson_link()
    link = st.session_state.get(Key.LESSON_FORM_LINK)
    if link:
        st.caption(
            "Hand this link out (the copy button is on the right). Hidden and locked controls keep the "
            "values they have in this model; a student can leave lesson mode to see the whole app."
        )
        st.code(link, language=None, wrap_lines=True)


def _lesson_link() -> str:
    """The form's lesson as a link: the chosen model (fitted to this server) and the lesson's parameters."""
    choice = st.session_state[Key.LESSON_FORM_MODEL]
    limits = runtime.server_limits()
    if choice:
        spec, _ = fit_to_limits(PRESETS[choice].spec, limits)
        settings = RunSettings()
    else:
        spec = session.current_spec(limits, runtime.training_device_names())
        settings = replace(session.run_settings(), job_id=None)  # devices, samples, target, repeats, batches
    model = spec_to_query_params(spec, settings, choice or None)
    notes = {NOTE_PARAM: st.session_state[Key.LESSON_FORM_NOTE]}
    notes.update({page: st.session_state[f"{Key.LESSON_FORM_NOTE}_{page}"] for page in LESSON_PAGES})
    lesson = make_lesson(
        st.session_state[Key.LESSON_FORM_START],
        tuple(st.session_state[Key.LESSON_FORM_HIDE]),
        tuple(st.session_state[Key.LESSON_FORM_LOCK]),
        notes,
        model,
    )
    return lesson_url(st.context.url or "", model, lesson)


def _draw_lesson_notices(page: str) -> None:
    """What the lesson part of the link got wrong, on the first page the lesson showed (until another is shown)."""
    shown_on, notices = st.session_state.get(Key.LESSON_NOTICES, (None, ()))
    if not notices:
        return
    if shown_on is None:
        st.session_state[Key.LESSON_NOTICES] = (page, notices)
    elif shown_on != page:
        st.session_state[Key.LESSON_NOTICES] = (None, ())
        return
    st.warning(session.link_notices_markdown(notices, LESSON_NOTICES_HEADER), icon=":material/link:")


def _control_name(control: str) -> str:
    """A control's name in the lesson: a spec field's name becomes its link parameter."""
    return SPEC_FIELD[control].link if control in SPEC_FIELD else control


def _control_label(name: str) -> str:
    """A control in the form: its words and the page it is on."""
    control = CONTROLS[name]
    return f"{control.words[0].upper()}{control.words[1:]} ({control.pages} page{'s' * ('and' in control.pages)})"
