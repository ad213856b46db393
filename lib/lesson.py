"""Lesson links: the lesson's numbered steps, and a teacher's lesson as query parameters, and back.

A teacher picks the page the class starts on, the model, which controls are hidden or locked and short
notes for the top of each page; the app writes one link (TensorFlow Playground's `*_hide` flags did this for
its controls). A lesson link is a shareable link (`lib.links`) plus these parameters:

    lesson=1                      lesson mode (the only value)
    start=gpu                     the page it opens on (a step's page, "home" or "board")
    hide=seed,spe                 controls not drawn (names: `CONTROLS`, the link parameters of what they set)
    lock=batch,devices,batches    controls drawn but disabled (the model's, the run's and the sweep's)
    note=...                      a note at the top of every page (plain text)
    note_train=...                one page's own note
    fix_batch=1024                the value a hidden or locked control keeps, as its link parameter spells it

Hidden and locked controls keep their value for the whole session: the lesson's `fix_` value when it has one
(the link's own value for that control is then ignored, with a notice), else the link's model's. Parsing is
pure and bounded like `lib.links`: every value's length is checked before it is read, notices quote the
link's pieces through `lib.links.quote_fragment`, and notes are shown as literal text, never as markdown.
"""

from __future__ import annotations

import unicodedata
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lib.links import (
    BATCHES_PARAM,
    ELLIPSIS,
    LAYERS_PARAM,
    MAX_LISTED,
    REPEATS_PARAM,
    REPLACEMENT,
    TARGET_PARAM,
    LinkNotice,
    RunSettings,
    link_value,
    quote_fragment,
)
from lib.spec import SPEC_FIELDS, ModelSpec


@dataclass(frozen=True)
class LessonStep:
    """One numbered step of the lesson: a page, its title and what the class does there."""

    page: str  # the page's url path ("gpu"), its script app_pages/<page>.py
    title: str  # the step's name, as the router's menu names the page
    what: str  # one line: what the class does there


LESSON_STEPS: tuple[LessonStep, ...] = (
    LessonStep("gpu", "What is a GPU?", "Many simple cores against a few complex ones; race them."),
    LessonStep("datasets", "Datasets", "CIFAR-10 and Fashion-MNIST: samples, charts, preprocessing."),
    LessonStep("build", "Build a model", "Sliders for layers and units; see parameters, FLOPs and the Keras code."),
    LessonStep("train", "Train", "Time the training on each device, with live progress and a fair queue."),
    LessonStep("results", "Results", "Time per device, speedup, per-epoch time, throughput, learning curves."),
    LessonStep("sweep", "Where does the GPU win?", "One click: several batch sizes per device, and the crossover."),
)
HOME_PAGE = "home"  # the start page, before step 1
BOARD_PAGE = "board"  # the class board: no step of its own, a lesson may start there (a projector)
LESSON_PAGES = (HOME_PAGE, *(step.page for step in LESSON_STEPS), BOARD_PAGE)  # pages a lesson starts on or notes
PAGE_TITLES = {HOME_PAGE: "Start here", **{step.page: step.title for step in LESSON_STEPS}, BOARD_PAGE: "Class board"}

LESSON_PARAM = "lesson"
LESSON_VERSION = "1"  # the one value of `lesson=`
START_PARAM = "start"
HIDE_PARAM = "hide"
LOCK_PARAM = "lock"
NOTE_PARAM = "note"
PAGE_NOTE_PREFIX = "note_"  # + a page: that page's note
FIX_PREFIX = "fix_"  # + a link parameter: the value the lesson keeps for it
MAX_NOTE_CHARS = 400  # the longest note; a longer one is cut, with a notice
MAX_FIXED_CHARS = 128  # the longest `fix_` value (longer than any legal link value: `lib.links` checks it then)
_NAMED_PARAMS = frozenset({LESSON_PARAM, START_PARAM, HIDE_PARAM, LOCK_PARAM, NOTE_PARAM})
_HIDDEN_IN_NOTES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # shown as U+FFFD; a line break stays


@dataclass(frozen=True)
class Control:
    """A page control that a lesson may hide or lock."""

    name: str  # its name in `hide=` and `lock=`: the link parameter of what it sets
    words: str  # in a sentence: "the batch size"
    params: tuple[str, ...]  # the link parameters that carry its value (none: the preset chooser)
    spec_field: str = ""  # the ModelSpec field it sets; "" = a run setting or none
    pages: str = "Build"  # the pages that draw it, in words
    setting: str = ""  # the RunSettings field it sets (`pin_settings`); "" = a spec field or none


def _spec_control(spec_field: Any) -> Control:
    params = (LAYERS_PARAM, spec_field.link) if spec_field.kind == "layers" else (spec_field.link,)
    pages = "Build and Train" if spec_field.name == "epochs" else "Build"  # the Train page has an epochs slider
    return Control(spec_field.link, spec_field.words, params, spec_field.name, pages)


# The Build page's controls (one per `lib.spec.SPEC_FIELDS` entry, the preset chooser) and the Train page's.
CONTROLS: dict[str, Control] = {
    control.name: control
    for control in (
        Control("preset", "the preset chooser", ()),
        *(_spec_control(spec_field) for spec_field in SPEC_FIELDS),
        Control("devices", "the devices", ("devices",), pages="Train", setting="devices"),
        Control("samples", "the number of training samples", ("samples",), pages="Train", setting="sample_limit"),
        Control(
            TARGET_PARAM,
            "the target accuracy (time to accuracy)",
            (TARGET_PARAM,),
            pages="Train",
            setting="target_accuracy",
        ),
        Control(REPEATS_PARAM, "the runs per device", (REPEATS_PARAM,), pages="Train", setting="repeats"),
        Control(
            BATCHES_PARAM,
            "the batch sizes compared",
            (BATCHES_PARAM,),
            pages='"Where does the GPU win?"',
            setting="sweep_batches",
        ),
    )
}
_CONTROL_PARAMS = frozenset(param for control in CONTROLS.values() for param in control.params)
_MAX_CONTROL_LIST_CHARS = sum(len(name) + 1 for name in CONTROLS)  # every control once, with commas
_LONGEST_LESSON_PARAM = len(FIX_PREFIX) + max(map(len, (*_CONTROL_PARAMS, *LESSON_PAGES)))  # "fix_precision"


@dataclass(frozen=True)
class Lesson:
    """What a lesson link fixes: where the class starts, the controls it may not change, the teacher's notes.

    Build one with `parse_lesson` (or from a teacher's choices, names in `CONTROLS` order), so that
    `parse_lesson(lesson_params(lesson))` gives it back.
    """

    start: str = HOME_PAGE  # the page the link opens on, one of LESSON_PAGES
    hidden: tuple[str, ...] = ()  # controls not drawn, in CONTROLS order
    locked: tuple[str, ...] = ()  # controls drawn disabled, in CONTROLS order; none of them hidden
    note: str = ""  # shown at the top of every page, as plain text; at most MAX_NOTE_CHARS
    page_notes: tuple[tuple[str, str], ...] = ()  # (page, note), in LESSON_PAGES order, each note not empty
    fixed: tuple[tuple[str, str], ...] = ()  # (link parameter, value) of hidden or locked controls, sorted

    @property
    def pinned(self) -> tuple[str, ...]:
        """The controls whose value the lesson keeps (hidden or locked), in CONTROLS order."""
        return tuple(name for name in CONTROLS if name in self.hidden or name in self.locked)

    def notes_for(self, page: str) -> tuple[str, ...]:
        """The notes shown at the top of `page`: the lesson's note, then the page's own."""
        own = tuple(note for note_page, note in self.page_notes if note_page == page)
        return tuple(note for note in (self.note, *own) if note)


def is_lesson_param(name: Any) -> bool:
    """Whether a query parameter belongs to the lesson (not to the model link that `lib.links` reads)."""
    if not isinstance(name, str) or len(name) > _LONGEST_LESSON_PARAM:
        return False
    return name in _NAMED_PARAMS or name.startswith((PAGE_NOTE_PREFIX, FIX_PREFIX))


def model_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The query parameters that are not the lesson's: what `lib.links.read_link` reads."""
    return {name: value for name, value in params.items() if not is_lesson_param(name)}


def parse_lesson(params: Mapping[str, Any]) -> tuple[Lesson | None, list[LinkNotice]]:
    """Reads a lesson from query parameters: None when the link is no lesson, and what it ignored or cut.

    Only parameter names that `is_lesson_param` accepts are looked at; every value's length is checked before
    it is split or cleaned, and unknown names, pages and controls are quoted at most `MAX_LISTED` at a time.

    Args:
        params: Query parameter name -> value (a string, or a list of strings of which the last counts).

    Returns:
        The lesson (None without `lesson=1`) and notices in our words, the link's pieces quoted.
    """
    names = [name for name in params if is_lesson_param(name)]
    raw = link_value(params, LESSON_PARAM)
    if raw is None:
        if not names:
            return None, []
        return None, [_unknown(names, "these are a lesson's settings, and the link has no lesson=1.")]
    if raw != LESSON_VERSION:
        return None, [_ignored(LESSON_PARAM, raw, f"a lesson link has {LESSON_PARAM}={LESSON_VERSION}.")]
    notices: list[LinkNotice] = []
    start = _parse_start(params, notices)
    hidden = _parse_controls(params, HIDE_PARAM, notices)
    locked = tuple(name for name in _parse_controls(params, LOCK_PARAM, notices) if name not in hidden)
    note = _parse_note(params, NOTE_PARAM)
    page_notes = tuple((page, own) for page in LESSON_PAGES if (own := _parse_note(params, PAGE_NOTE_PREFIX + page)))
    note_params = (NOTE_PARAM, *(PAGE_NOTE_PREFIX + page for page in LESSON_PAGES))
    if any(len(link_value(params, param) or "") > MAX_NOTE_CHARS for param in note_params):
        notices.append(LinkNotice(f"A note in this lesson is longer than {MAX_NOTE_CHARS:,} characters: it is cut."))
    lesson = Lesson(start, hidden, locked, note, page_notes)
    fixed = _parse_fixed(params, lesson.pinned, notices)
    known = {LESSON_PARAM, START_PARAM, HIDE_PARAM, LOCK_PARAM, NOTE_PARAM}
    known |= {PAGE_NOTE_PREFIX + page for page in LESSON_PAGES} | {FIX_PREFIX + param for param in _CONTROL_PARAMS}
    unknown = [name for name in names if name not in known]
    if unknown:
        notices.insert(0, _unknown(unknown, "this app does not know these lesson settings."))
    return Lesson(start, hidden, locked, note, page_notes, fixed), notices


def lesson_params(lesson: Lesson) -> dict[str, str]:
    """Encodes a lesson as query parameters, which `parse_lesson` reads back to an equal lesson.

    Args:
        lesson: The lesson; its defaults (start at home, nothing hidden, no note) are left out of the link.

    Returns:
        Parameter name -> value, `lesson=1` first.
    """
    params = {LESSON_PARAM: LESSON_VERSION}
    if lesson.start != HOME_PAGE:
        params[START_PARAM] = lesson.start
    if lesson.hidden:
        params[HIDE_PARAM] = ",".join(lesson.hidden)
    if lesson.locked:
        params[LOCK_PARAM] = ",".join(lesson.locked)
    if lesson.note:
        params[NOTE_PARAM] = lesson.note
    params.update({PAGE_NOTE_PREFIX + page: note for page, note in lesson.page_notes})
    params.update({FIX_PREFIX + param: value for param, value in lesson.fixed})
    return params


def make_lesson(
    start: str,
    hidden: tuple[str, ...],
    locked: tuple[str, ...],
    notes: Mapping[str, str],
    link: Mapping[str, str],
) -> Lesson:
    """A teacher's lesson from the form's choices, its fixed values taken from the model's link.

    Args:
        start: The page the class starts on (one of LESSON_PAGES).
        hidden: Controls to hide (names in CONTROLS).
        locked: Controls to lock; one also hidden is hidden.
        notes: Page -> note, `NOTE_PARAM` for every page's note; empty notes are left out.
        link: The model's link parameters (`lib.links.spec_to_query_params`): each hidden or locked control
            keeps the value it has there.

    Returns:
        The lesson, as `parse_lesson` would read it from `lesson_params` (notes cleaned and cut).
    """
    params: dict[str, str] = {LESSON_PARAM: LESSON_VERSION, START_PARAM: start}
    params[HIDE_PARAM] = ",".join(hidden)
    params[LOCK_PARAM] = ",".join(locked)
    for page, note in notes.items():
        params[NOTE_PARAM if page == NOTE_PARAM else PAGE_NOTE_PREFIX + page] = clean_note(note)
    pinned = {param for name in (*hidden, *locked) if name in CONTROLS for param in CONTROLS[name].params}
    params.update({FIX_PREFIX + param: value for param, value in link.items() if param in pinned})
    lesson, _ = parse_lesson(params)
    return lesson or Lesson()  # never None: params has lesson=1


def lesson_url(base: str, model: Mapping[str, str], lesson: Lesson) -> str:
    """The link a teacher hands out: the app's address, the model's parameters, then the lesson's.

    Args:
        base: The app's address ("http://server:8501/"), or "" for a link relative to the app.
        model: The model's link parameters (`lib.links.spec_to_query_params`).
        lesson: The lesson.
    """
    params = {**model_params(model), **lesson_params(lesson)}
    return f"{base}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"


def clean_note(text: str) -> str:
    """A note as the lesson keeps it: at most `MAX_NOTE_CHARS` characters, trimmed, nothing invisible.

    Control, format and separator characters (line breaks aside) become U+FFFD, so a note cannot hide text
    or reorder the page around it; it is shown as plain text in any case.
    """
    head = text[: MAX_NOTE_CHARS + 1].replace("\r\n", "\n").replace("\r", "\n")
    shown = "".join(
        char if char == "\n" or unicodedata.category(char) not in _HIDDEN_IN_NOTES else REPLACEMENT for char in head
    ).strip()
    if len(shown) > MAX_NOTE_CHARS:
        shown = shown[: MAX_NOTE_CHARS - 1].rstrip() + ELLIPSIS
    return shown


def fixed_link_params(params: Mapping[str, Any], lesson: Lesson) -> tuple[dict[str, Any], list[LinkNotice]]:
    """The model link a lesson session reads: the lesson's fixed values replace the link's own for their controls.

    Args:
        params: The model's query parameters (`model_params`).
        lesson: The lesson.

    Returns:
        The parameters to read, and one notice quoting the link's values that the lesson's replaced.
    """
    fixed = dict(lesson.fixed)
    replaced: list[str] = []
    result = dict(params)
    for name in lesson.pinned:
        control = CONTROLS[name]
        if not any(param in fixed for param in control.params):
            continue
        for param in control.params:
            own = link_value(params, param)
            if own is not None and own != fixed.get(param):
                replaced.append(f"{quote_fragment(param)}={quote_fragment(own)}")
            result.pop(param, None)
            if param in fixed:
                result[param] = fixed[param]
    if not replaced:
        return result, []
    shown = tuple(replaced[:MAX_LISTED])
    return result, [LinkNotice("this lesson keeps its own value there.", shown, len(replaced) - len(shown))]


def pin_spec(spec: ModelSpec, lesson: Lesson, kept: ModelSpec) -> ModelSpec:
    """The spec with every hidden or locked control's field set back to the lesson's value.

    Args:
        spec: The spec a page or a link asked for.
        lesson: The lesson in force.
        kept: The spec the lesson session started with: the values its hidden and locked controls keep.
    """
    changes = {
        CONTROLS[name].spec_field: getattr(kept, CONTROLS[name].spec_field)
        for name in lesson.pinned
        if CONTROLS[name].spec_field
    }
    return spec.with_changes(**changes) if changes else spec


def pin_settings(settings: RunSettings, lesson: Lesson, kept: RunSettings) -> RunSettings:
    """The run settings with the lesson's values where their controls are hidden or locked.

    The run controls: devices, samples, the target accuracy, the runs per device and a sweep's batch sizes.
    """
    changes: dict[str, Any] = {
        CONTROLS[name].setting: getattr(kept, CONTROLS[name].setting)
        for name in lesson.pinned
        if CONTROLS[name].setting
    }
    return replace(settings, **changes) if changes else settings


def step_number(page: str) -> int | None:
    """The step number of a page, as the home page numbers them (1 = the first step); None for other pages."""
    pages = [step.page for step in LESSON_STEPS]
    return pages.index(page) + 1 if page in pages else None


def next_step(page: str) -> LessonStep | None:
    """The step after `page` (the home page leads to step 1); None after the last step and on other pages."""
    if page == HOME_PAGE:
        return LESSON_STEPS[0]
    number = step_number(page)
    if number is None or number == len(LESSON_STEPS):
        return None
    return LESSON_STEPS[number]


# --- reading one value -------------------------------------------------------------------------------


def _parse_start(params: Mapping[str, Any], notices: list[LinkNotice]) -> str:
    raw = link_value(params, START_PARAM)
    if raw is None:
        return HOME_PAGE
    if len(raw) <= _longest(LESSON_PAGES) and raw in LESSON_PAGES:
        return raw
    notices.append(_ignored(START_PARAM, raw, f"a lesson starts on one of {', '.join(LESSON_PAGES)}."))
    return HOME_PAGE


def _parse_controls(params: Mapping[str, Any], param: str, notices: list[LinkNotice]) -> tuple[str, ...]:
    """Control names from a comma list, in CONTROLS order; a list longer than all controls is refused whole."""
    raw = link_value(params, param)
    if not raw:
        return ()
    if len(raw) > _MAX_CONTROL_LIST_CHARS:
        notices.append(_ignored(param, raw, "it is longer than a list of every control."))
        return ()
    names = [name for name in raw.split(",") if name]
    unknown = list(dict.fromkeys(name for name in names if name not in CONTROLS))
    if unknown:
        shown = tuple(quote_fragment(name) for name in unknown[:MAX_LISTED])
        why = f"{param}= names controls such as {', '.join(list(CONTROLS)[:4])}."
        notices.append(LinkNotice(why, shown, len(unknown) - len(shown)))
    return tuple(name for name in CONTROLS if name in names)


def _parse_note(params: Mapping[str, Any], param: str) -> str:
    raw = link_value(params, param)
    return "" if raw is None else clean_note(raw)


def _parse_fixed(
    params: Mapping[str, Any], pinned: tuple[str, ...], notices: list[LinkNotice]
) -> tuple[tuple[str, str], ...]:
    """The `fix_` values of hidden or locked controls; others, and over-long values, are ignored with a notice."""
    allowed = {param for name in pinned for param in CONTROLS[name].params}
    fixed, ignored = [], []
    for param in sorted(_CONTROL_PARAMS):
        raw = link_value(params, FIX_PREFIX + param)
        if raw is None:
            continue
        if param in allowed and len(raw) <= MAX_FIXED_CHARS:
            fixed.append((param, raw))
        else:
            ignored.append(f"{FIX_PREFIX}{param}={quote_fragment(raw)}")
    if ignored:
        shown = tuple(ignored[:MAX_LISTED])
        why = f"a lesson keeps values of hidden or locked controls only, each at most {MAX_FIXED_CHARS} characters."
        notices.append(LinkNotice(why, shown, len(ignored) - len(shown)))
    return tuple(fixed)


def _unknown(names: list[Any], why: str) -> LinkNotice:
    shown = tuple(quote_fragment(str(name)) for name in names[:MAX_LISTED])
    return LinkNotice(why, shown, len(names) - len(shown))


def _ignored(name: str, raw: str, why: str) -> LinkNotice:
    return LinkNotice(why, (f"{quote_fragment(name)}={quote_fragment(raw)}",))


def _longest(names: Any) -> int:
    return max(map(len, names), default=0)
