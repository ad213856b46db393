"""Shareable links: a model spec and run settings as URL query parameters, and back.

A teacher builds a model, copies the address bar and sends it; the link opens the same model (as
TensorFlow Playground does). Parsing is pure: it takes the query parameters as a mapping of strings
and returns the spec plus readable notices for everything it ignored or clamped, never an exception.

Parameter names are short and stable, e.g.
`?dataset=fashion_mnist&layers=5&units=500&act=relu&out=softmax&opt=adam&lr=0.001&batch=32&epochs=5`.
`units` is one number (the same for every hidden layer, `layers` of them) or a comma list per layer.

Anyone can send anyone a link, so every value is treated as hostile:

- Its length is checked before anything is built from it: a value longer than any legal value of its
  parameter (a whole number with more digits than the largest allowed one, say) is refused at once, and
  a legal-length number over the limit is clamped to it. So no link builds more than the limits allow.
- Whole numbers are ASCII digits only, the form `spec_to_query_params` writes: no sign, no spaces, no
  `1_000`, no other scripts' digits. Learning rates are ASCII decimals such as `0.001` or `1e-05`.
- Notices are `LinkNotice`s: our own words plus the literal pieces of the link they are about, each cut to
  `FRAGMENT_CHARS` characters. `LinkNotice.markdown` shows those pieces as code spans and escapes our
  words, so nothing from a link can render as markdown, LaTeX, colour, an icon or a link.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.limits import MAX_SWEEP_POINTS, MIN_SWEEP_POINTS, ServerLimits
from lib.spec import SPEC_FIELD, SPEC_FIELDS, ModelSpec, SpecField, clamp_to_limits, count_params, spec_fields

DEVICE_PATTERN = re.compile(r"(cpu|gpu):([0-9]{1,2}|all)")  # full match; "gpu:all": data parallel over all GPUs
MAX_LINK_DEVICES = 16  # a link names at most this many devices
MAX_DEVICES_CHARS = MAX_LINK_DEVICES * len("gpu:all,") - 1  # the longest legal `devices` value
JOB_ID_CHARS = 12  # the runner's job ids: 12 lowercase hex digits
JOB_ID_PATTERN = re.compile(f"[0-9a-f]{{{JOB_ID_CHARS}}}")  # full match
DECIMAL_PATTERN = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")  # full match
MAX_DECIMAL_CHARS = 24  # longer than any learning rate `spec_to_query_params` writes
FLAG_VALUES = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}

FRAGMENT_CHARS = 24  # characters of a link's name or value quoted in a notice, then an ellipsis
MAX_LISTED = 3  # pieces of the link one notice quotes; the rest are counted ("and 4 more")
MAX_NOTICES = 6  # notices shown for one link; more fold into one line
MAX_NOTICE_CHARS = 320  # the longest `LinkNotice.text` (on a server with up to ten devices)
ELLIPSIS = "\u2026"
REPLACEMENT = "\ufffd"  # shown instead of control, format and unpaired surrogate characters
# What a page says when `lib.spec.validate_spec` refuses a spec that is within every limit.
UNKNOWN_SETTING_PROBLEM = "A setting is not one this app knows: load a preset on the Build page to start again."
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_BACKTICK_RUN = re.compile(r"`+")

UNITS_PARAM = SPEC_FIELD["hidden_units"].link  # one width for every layer, or a comma list of widths per layer
LAYERS_PARAM = "layers"  # with one width in UNITS_PARAM: how many hidden layers of that width
# Each spec field's parameter (`lib.spec.SPEC_FIELDS`), read in this order: so are the notices about them.
_READ_FIELDS = (*spec_fields("choice"), *spec_fields("int"), *spec_fields("rate"), *spec_fields("flag"))
SPEC_PARAMS = (LAYERS_PARAM, *(spec_field.link for spec_field in SPEC_FIELDS))
TARGET_PARAM = "target"  # time to accuracy: the test accuracy each run stops at, "0.85"
REPEATS_PARAM = "repeats"  # runs per device
BATCHES_PARAM = "batches"  # a sweep's batch sizes, "32,128,512,2048"
RUN_PARAMS = ("preset", "devices", "samples", "job", TARGET_PARAM, REPEATS_PARAM, BATCHES_PARAM)
TARGET_RANGE = (0.05, 0.99)  # the target accuracies a page offers and a link may ask for
TARGET_PATTERN = re.compile(r"0?\.[0-9]{1,4}")  # full match: "0.85", ".85"; at most 4 decimals
MAX_TARGET_CHARS = len("0.9999")  # the longest target TARGET_PATTERN matches: checked before the pattern runs
KNOWN_PARAMS = (*SPEC_PARAMS, *RUN_PARAMS)  # what `read_link` reads
PRESENTER_PARAM = "presenter"  # presenter=1: the presenter view (larger type, charts sized for a projector)
# How the pages are shown, not what they hold: read by `presenter_from_query_params`, never "unknown" to a model link.
VIEW_PARAMS = (PRESENTER_PARAM,)
_KNOWN = frozenset((*KNOWN_PARAMS, *VIEW_PARAMS))


@dataclass(frozen=True)
class RunSettings:
    """Training-run choices that are not part of the model spec."""

    devices: tuple[str, ...] = ()  # devices to train on, "cpu:0", "gpu:0"; empty = not chosen
    sample_limit: int | None = None  # training samples to use; None = the whole training set
    job_id: str | None = None  # the job this session follows (12 lowercase hex digits); None = none
    target_accuracy: float | None = None  # time to accuracy: stop each run at this test accuracy; None = off
    repeats: int = 1  # runs per device (a median and a spread from several)
    sweep_batches: tuple[int, ...] = ()  # the batch sizes "Where does the GPU win?" compares; empty = its default


@dataclass(frozen=True)
class LinkNotice:
    """Something a shared link asked for that the app ignored or changed.

    Attributes:
        message: What happened and what to use instead, in our words (plain text, never from the link).
        ignored: The literal pieces of the link this notice is about ("epochs=abc"), each already cut to a
            short prefix by `quote_fragment`; shown as code, never as markdown.
        more: How many further ignored pieces there were (counted, not quoted).
    """

    message: str
    ignored: tuple[str, ...] = ()
    more: int = 0

    @property
    def text(self) -> str:
        """The notice as plain text, the link's pieces in quotes (for logs and tests)."""
        if not self.ignored:
            return self.message
        quoted = tuple(f"\u201c{piece}\u201d" for piece in self.ignored)
        return f"Ignored {_listing(quoted, self.more)} from the link: {self.message}"

    def markdown(self) -> str:
        """The notice as markdown in which nothing from the link is active: its pieces are code spans."""
        if not self.ignored:
            return escape_markdown(self.message)
        pieces = tuple(markdown_code(piece) for piece in self.ignored)
        return f"Ignored {_listing(pieces, self.more)} from the link: {escape_markdown(self.message)}"


@dataclass(frozen=True)
class SharedLink:
    """Everything a session starts from when it opens a link."""

    preset: str | None  # the preset the link names, when this app has it
    spec: ModelSpec  # within the server limits, whatever the link said
    settings: RunSettings
    notices: tuple[LinkNotice, ...]  # at most MAX_NOTICES


def quote_fragment(text: str, chars: int = FRAGMENT_CHARS) -> str:
    """Cuts text from a link to a printable prefix of `chars` characters, with an ellipsis when cut.

    Control, format, separator and unpaired surrogate characters become U+FFFD, so a quoted piece stays
    on one line and cannot reorder the text around it.

    Args:
        text: Any text, possibly very long.
        chars: Characters kept.
    """
    head = "".join(REPLACEMENT if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in text[:chars])
    return head + ELLIPSIS if len(text) > chars else head


def escape_markdown(text: str) -> str:
    """Backslash-escapes every ASCII punctuation character, so markdown shows the text as it is.

    CommonMark treats any escaped ASCII punctuation as the plain character, which turns off emphasis,
    links, LaTeX (`$`), Streamlit's colour and icon directives (`:red[...]`), HTML, headings and tables.
    Line breaks become spaces. Meant for our own words; text from a link goes through `markdown_code`.
    """
    flat = " ".join(text.splitlines())
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", flat)


def markdown_code(text: str) -> str:
    """Returns a markdown code span that shows `text` literally (nothing inside a code span renders).

    The fence is one backtick longer than the longest run of backticks in the text, and a space pads the
    text where CommonMark would otherwise strip one or merge it with the fence. Line breaks become spaces.
    """
    flat = " ".join(text.splitlines()) or " "
    fence = "`" * (max((len(run) for run in _BACKTICK_RUN.findall(flat)), default=0) + 1)
    stripped = flat.startswith(" ") and flat.endswith(" ") and bool(flat.strip(" "))
    pad = " " if flat.startswith("`") or flat.endswith("`") or stripped else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def read_link(
    params: Mapping[str, Any],
    limits: ServerLimits,
    available_devices: Sequence[str],
    preset_specs: Mapping[str, ModelSpec],
    default_preset: str,
) -> SharedLink:
    """Reads everything a session takes from its link: preset, spec, run settings and what was changed.

    Args:
        params: Query parameter name -> value (a string, or a list of strings of which the last counts).
        limits: The server's limits; the spec and sample limit never exceed them.
        available_devices: Devices this server has; others in the link are dropped with a notice.
        preset_specs: Preset name -> spec, the presets a link may name.
        default_preset: The preset to start from when the link names none (or an unknown one).

    Returns:
        The link's contents, with at most `MAX_NOTICES` notices.
    """
    preset, preset_notices = preset_from_query_params(params, tuple(preset_specs))
    spec, spec_notices = spec_from_query_params(params, limits, base=preset_specs[preset or default_preset])
    settings, settings_notices = run_settings_from_query_params(params, limits, available_devices)
    notices = fold_notices([*preset_notices, *spec_notices, *settings_notices])
    return SharedLink(preset=preset, spec=spec, settings=settings, notices=tuple(notices))


def spec_to_query_params(
    spec: ModelSpec, settings: RunSettings | None = None, preset: str | None = None
) -> dict[str, str]:
    """Encodes a spec (and optionally run settings and the preset name) as query parameters.

    Args:
        spec: The model and training configuration.
        settings: Devices, sample limit and job; left out when None.
        preset: The preset the spec started from; left out when None.

    Returns:
        Parameter name -> string value; `spec_from_query_params` reads it back to an equal spec.
    """
    params: dict[str, str] = {}
    if preset:
        params["preset"] = preset
    for spec_field in SPEC_FIELDS:
        params.update(_field_params(spec_field, getattr(spec, spec_field.name)))
    if settings is not None:
        if settings.devices:
            params["devices"] = ",".join(settings.devices)
        if settings.sample_limit is not None:
            params["samples"] = str(settings.sample_limit)
        if settings.job_id is not None:
            params["job"] = settings.job_id
        if settings.target_accuracy is not None:
            params[TARGET_PARAM] = format_target(settings.target_accuracy)
        if settings.repeats > 1:
            params[REPEATS_PARAM] = str(settings.repeats)
        if settings.sweep_batches:
            params[BATCHES_PARAM] = ",".join(str(size) for size in settings.sweep_batches)
    return params


def format_target(target: float) -> str:
    """A target accuracy as a link writes it: at most 4 decimals, no trailing zeros ("0.85")."""
    return f"{target:.4f}".rstrip("0").rstrip(".")


def spec_from_query_params(
    params: Mapping[str, Any], limits: ServerLimits, base: ModelSpec | None = None
) -> tuple[ModelSpec, list[LinkNotice]]:
    """Reads a spec from query parameters, ignoring what is invalid and clamping what is too large.

    Only the known parameter names are looked up, and at most `MAX_LISTED` unknown names are quoted, so
    the work done does not grow with the link.

    Args:
        params: Query parameter name -> value (a string, or a list of strings of which the last counts).
        limits: The server's limits; values beyond them are clamped.
        base: The spec to start from (a preset's, say); the default `ModelSpec()` when None.

    Returns:
        The spec, which passes `lib.spec.validate_spec` under `limits`, and the notices (empty when all
        was fine): unknown names fold into one notice.
    """
    spec = base or ModelSpec()
    notices = _unknown_parameter_notices(params)
    changes: dict[str, Any] = {}
    for spec_field in _READ_FIELDS:
        raw = link_value(params, spec_field.link)
        if raw is not None:
            _keep(changes, spec_field.name, _parse_field(spec_field, raw, limits), notices)
    hidden_units = _parse_hidden_units(params, limits, spec.hidden_units, notices)
    if hidden_units is not None:
        changes["hidden_units"] = hidden_units
    spec, limit_notices = fit_to_limits(spec.with_changes(**changes), limits)
    return spec, notices + limit_notices


def fit_to_limits(spec: ModelSpec, limits: ServerLimits) -> tuple[ModelSpec, list[LinkNotice]]:
    """Brings a spec within the server limits (`lib.spec.clamp_to_limits`), saying what changed in our words.

    Args:
        spec: A spec, e.g. a preset's or one read from a link.
        limits: The server limits in force.

    Returns:
        The spec, which passes `lib.spec.validate_spec`, and one notice per kind of change (none when it
        already fitted); the notices name limits by their values, never by internal names.
    """
    clamped, _ = clamp_to_limits(spec, limits)
    return clamped, _limit_notices(spec, clamped, limits)


def limit_problems(spec: ModelSpec, limits: ServerLimits) -> list[str]:
    """Says what in a spec passes this server's limits, in the Build page's words (no field or variable names).

    Args:
        spec: A spec with well-formed values (the Build page's), possibly over a limit.
        limits: The server limits in force.

    Returns:
        One short sentence per limit passed; empty when the spec fits. The parameter limit is checked once
        the layers, units, epochs and batch size fit, and says which layers would fit.
    """
    problems = []
    layers, widest = len(spec.hidden_units), max(spec.hidden_units, default=0)
    for over, text in (
        (layers > limits.hidden_layers, f"{layers} hidden layers: this server's limit is {limits.hidden_layers}."),
        (widest > limits.units, f"{widest:,} units in a layer: this server's limit is {limits.units:,}."),
        (spec.epochs > limits.epochs, f"{spec.epochs:,} epochs: this server's limit is {limits.epochs:,}."),
        (
            spec.batch_size > limits.batch_size,
            f"A batch size of {spec.batch_size:,}: this server's limit is {limits.batch_size:,}.",
        ),
    ):
        if over:
            problems.append(text)
    params = count_params(spec)
    if not problems and params > limits.params:
        fitted, _ = clamp_to_limits(spec, limits)
        problems.append(
            f"{params:,} parameters: this server's limit is {limits.params:,}. Use fewer or smaller hidden layers; "
            f"{_describe_layers(fitted.hidden_units)} would fit."
        )
    return problems


def refused_spec_problems(spec: ModelSpec, limits: ServerLimits) -> list[str]:
    """Why `lib.spec.validate_spec` refused a spec, in the pages' words (its own texts name fields and variables).

    Args:
        spec: A spec that `validate_spec` refused.
        limits: The server limits in force.

    Returns:
        `limit_problems`, or `UNKNOWN_SETTING_PROBLEM` when no limit is passed (a value no widget offers).
    """
    return limit_problems(spec, limits) or [UNKNOWN_SETTING_PROBLEM]


def run_settings_from_query_params(
    params: Mapping[str, Any], limits: ServerLimits, available_devices: Sequence[str]
) -> tuple[RunSettings, list[LinkNotice]]:
    """Reads the devices, the sample limit, the job, the target accuracy, the repeats and a sweep's batch sizes.

    Args:
        params: Query parameter name -> value, as for `spec_from_query_params`.
        limits: The server's limits; a sample limit beyond `limits.samples` and repeats beyond
            `limits.repeats` are clamped, batch sizes beyond `limits.batch_size` dropped.
        available_devices: Devices this server has; others in the link are dropped with a notice.

    Returns:
        The settings and the notices about ignored or clamped values.
    """
    notices: list[LinkNotice] = []
    devices: tuple[str, ...] = ()
    raw_devices = link_value(params, "devices")
    if raw_devices is not None:
        devices = _parse_devices(raw_devices, tuple(available_devices), notices)
    sample_limit = None
    raw_samples = link_value(params, "samples")
    if raw_samples is not None:
        parsed = _parse_bounded_int("samples", raw_samples, 1, limits.samples, "{:,} training samples")
        sample_limit = _take_number(parsed, notices)
    job_id = None
    raw_job = link_value(params, "job")
    if raw_job is not None:
        if len(raw_job) == JOB_ID_CHARS and JOB_ID_PATTERN.fullmatch(raw_job):
            job_id = raw_job
        else:
            notices.append(_ignored("job", raw_job, "it is not a job of this app (12 characters, 0-9 and a-f)."))
    raw_target = link_value(params, TARGET_PARAM)
    target = None if raw_target is None else _parse_target(raw_target, notices)
    repeats = 1
    raw_repeats = link_value(params, REPEATS_PARAM)
    if raw_repeats is not None:
        parsed = _parse_bounded_int(REPEATS_PARAM, raw_repeats, 1, limits.repeats, "{:,} runs per device")
        repeats = _take_number(parsed, notices) or 1
    raw_batches = link_value(params, BATCHES_PARAM)
    batches = () if raw_batches is None else _parse_sweep_batches(raw_batches, limits.batch_size, notices)
    settings = RunSettings(devices, sample_limit, job_id, target, repeats, batches)
    return settings, notices


def _parse_target(raw: str, notices: list[LinkNotice]) -> float | None:
    """A target accuracy: a fraction in `TARGET_RANGE` with at most 4 decimals ("0.85"); None with a notice."""
    low, high = TARGET_RANGE
    value = float(raw) if len(raw) <= MAX_TARGET_CHARS and TARGET_PATTERN.fullmatch(raw) else math.nan
    if low <= value <= high:
        return value
    notices.append(_ignored(TARGET_PARAM, raw, f"use a test accuracy from {low:g} to {high:g}, like 0.85."))
    return None


def _parse_sweep_batches(raw: str, largest: int, notices: list[LinkNotice]) -> tuple[int, ...]:
    """A sweep's batch sizes: `MIN_SWEEP_POINTS` to `MAX_SWEEP_POINTS` whole numbers, ascending, each once.

    A value longer than the longest legal list is refused before it is split; sizes over `largest` are
    dropped with a notice, and fewer than `MIN_SWEEP_POINTS` left refuse the list.
    """
    longest = MAX_SWEEP_POINTS * (len(str(largest)) + 1) - 1
    parts = raw.split(",", MAX_SWEEP_POINTS) if len(raw) <= longest else []
    sizes = [_whole_number(part, 1, largest) for part in parts]
    if not MIN_SWEEP_POINTS <= len(parts) <= MAX_SWEEP_POINTS or None in sizes:
        why = f"give {MIN_SWEEP_POINTS} to {MAX_SWEEP_POINTS} whole batch sizes from 1 to {largest:,}, like 32,128,512."
        notices.append(_ignored(BATCHES_PARAM, raw, why))
        return ()
    kept = sorted({size for size in sizes if size is not None and size <= largest})
    if len(kept) < len(sizes):
        notices.append(
            LinkNotice(f"The link's batch sizes over {largest:,} or listed twice are left out of the sweep.")
        )
    if len(kept) < MIN_SWEEP_POINTS:
        return ()
    return tuple(kept)


def preset_from_query_params(
    params: Mapping[str, Any], preset_names: Sequence[str]
) -> tuple[str | None, list[LinkNotice]]:
    """Reads the preset name a link starts from.

    Args:
        params: Query parameter name -> value.
        preset_names: The presets this app has.

    Returns:
        The preset name (None when the link names none or an unknown one) and notices.
    """
    raw = link_value(params, "preset")
    if raw is None:
        return None, []
    if len(raw) <= max(map(len, preset_names), default=0) and raw in preset_names:
        return raw, []
    return None, [_ignored("preset", raw, f"choose one of {', '.join(preset_names)}.")]


def presenter_from_query_params(params: Mapping[str, Any]) -> tuple[bool, list[LinkNotice]]:
    """Reads whether a link opens the presenter view (`presenter=1`).

    Args:
        params: Query parameter name -> value, as for `spec_from_query_params`.

    Returns:
        True for 1, true or on; False for 0, false, off or no such parameter; for any other value False and
        a notice quoting it.
    """
    raw = link_value(params, PRESENTER_PARAM)
    if raw is None:
        return False, []
    parsed = _parse_flag(PRESENTER_PARAM, raw)
    if isinstance(parsed, _Refused):
        return False, [parsed.notice]
    return parsed, []


def fold_notices(notices: Sequence[LinkNotice], max_notices: int = MAX_NOTICES) -> list[LinkNotice]:
    """Folds notices into at most `max_notices` lines: first all ignored pieces into one, then the rest.

    Args:
        notices: Notices in the order they arose.
        max_notices: The most notices to return (at least 2).

    Returns:
        The same notices when there are few enough, else a shorter list saying the same in fewer lines.
    """
    if len(notices) <= max_notices:
        return list(notices)
    changed = [notice for notice in notices if not notice.ignored]
    ignored = [notice for notice in notices if notice.ignored]
    if len(ignored) > 1:
        pieces = [piece for notice in ignored for piece in notice.ignored]
        more = max(len(pieces) - MAX_LISTED, 0) + sum(notice.more for notice in ignored)
        folded = LinkNotice("this app cannot use these values.", tuple(pieces[:MAX_LISTED]), more)
        ignored = [folded]
    if len(changed) + len(ignored) > max_notices:
        kept = max_notices - 1 - len(ignored)
        rest = len(changed) - kept
        changed = [*changed[:kept], LinkNotice(f"{rest} more settings were changed to fit this server's limits.")]
    return changed + ignored


# --- reading one value -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Refused:
    """A link value that could not be used, with the notice saying why."""

    notice: LinkNotice


@dataclass(frozen=True)
class _Clamped:
    """A link value over its limit, brought down to it, with the notice saying so."""

    value: int
    notice: LinkNotice


def link_value(params: Mapping[str, Any], name: str) -> str | None:
    """The value Streamlit would give for `name` (the last of repeated ones), None when it is absent.

    A value that is not a string (nor a list ending in one) reads as an empty string, which no
    parameter accepts.
    """
    if name not in params:
        return None
    value = params[name]
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    return value if isinstance(value, str) else ""


def _ignored(name: str, raw: str, why: str) -> LinkNotice:
    """The notice for a value the app ignores: the piece of the link, cut short, and why."""
    return LinkNotice(why, (f"{quote_fragment(name)}={quote_fragment(raw)}",))


def _keep(changes: dict[str, Any], field_name: str, parsed: Any, notices: list[LinkNotice]) -> None:
    """Keeps a parsed value, recording its notice when it was clamped or refused."""
    if isinstance(parsed, _Refused):
        notices.append(parsed.notice)
        return
    if isinstance(parsed, _Clamped):
        notices.append(parsed.notice)
        parsed = parsed.value
    changes[field_name] = parsed


def _unknown_parameter_notices(params: Mapping[str, Any]) -> list[LinkNotice]:
    """One notice quoting the first `MAX_LISTED` unknown names and counting the rest.

    At most `len(KNOWN_PARAMS) + len(VIEW_PARAMS) + MAX_LISTED` names are looked at, however many the link has.
    """
    unknown: list[str] = []
    for name in params:
        if not (isinstance(name, str) and name in _KNOWN):
            unknown.append(quote_fragment(name if isinstance(name, str) else ""))
            if len(unknown) == MAX_LISTED:
                break
    if not unknown:
        return []
    more = len(params) - sum(1 for name in _KNOWN if name in params) - len(unknown)
    setting = "this setting" if len(unknown) + more == 1 else "these settings"
    return [LinkNotice(f"this app does not know {setting}.", tuple(unknown), more)]


def _parse_field(spec_field: SpecField, raw: str, limits: ServerLimits) -> Any:
    """A spec field's value from its link parameter, by the field's kind (`lib.spec.SpecField`)."""
    if spec_field.kind == "choice":
        return _parse_choice(spec_field.link, raw, spec_field.choices)
    if spec_field.kind == "int":
        high = getattr(limits, spec_field.limit) if spec_field.limit else int(spec_field.high)
        return _parse_bounded_int(spec_field.link, raw, spec_field.low, high, spec_field.link_phrase)
    if spec_field.kind == "rate":
        return _parse_learning_rate(spec_field.link, raw, spec_field.high)
    return _parse_flag(spec_field.link, raw)


def _field_params(spec_field: SpecField, value: Any) -> dict[str, str]:
    """A spec field's link parameters, as `_parse_field` (and `_parse_hidden_units`) read them back."""
    if spec_field.kind == "layers":
        return _units_params(value)
    if spec_field.kind == "rate":
        return {spec_field.link: f"{value:g}"}
    if spec_field.kind == "flag":
        return {spec_field.link: "1" if value else "0"}
    return {spec_field.link: str(value)}


def _whole_number(raw: str, low: int, high: int) -> int | None:
    """The whole number `raw` spells, or None when it is not ASCII digits of at least `low`.

    A value with more digits than `high` has is refused before it is converted, so the result is below
    `10 * high` and costs nothing to build; the caller clamps it to `high`.
    """
    if not 0 < len(raw) <= len(str(high)) or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if value >= low else None


def _parse_bounded_int(name: str, raw: str, low: int, high: int, phrase: str) -> int | _Clamped | _Refused:
    """A whole number from `low` to `high`; a legal-length one over `high` is clamped with a notice."""
    value = _whole_number(raw, low, high)
    if value is None:
        return _Refused(_ignored(name, raw, f"use a whole number from {low:,} to {high:,}."))
    if value > high:
        return _Clamped(high, _over_limit(phrase.format(value), high))
    return value


def _over_limit(asked: str, high: int) -> LinkNotice:
    """The notice for a link value brought down to the largest one allowed here."""
    return LinkNotice(f"The link asks for {asked}; the most allowed here is {high:,}, so it uses {high:,}.")


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str | _Refused:
    longest = max(map(len, choices), default=0)
    value = raw.lower() if len(raw) <= longest else ""
    if value in choices:
        return value
    return _Refused(_ignored(name, raw, f"choose one of {', '.join(choices)}."))


def _parse_learning_rate(name: str, raw: str, high: float) -> float | _Refused:
    value = float(raw) if len(raw) <= MAX_DECIMAL_CHARS and DECIMAL_PATTERN.fullmatch(raw) else math.nan
    if math.isfinite(value) and 0 < value <= high:
        return value
    return _Refused(_ignored(name, raw, f"use a number above 0 and at most {high:g}, like 0.001."))


def _parse_flag(name: str, raw: str) -> bool | _Refused:
    value = raw.lower() if len(raw) <= max(map(len, FLAG_VALUES)) else ""
    if value in FLAG_VALUES:
        return FLAG_VALUES[value]
    return _Refused(_ignored(name, raw, "use 1 or 0."))


# --- hidden layers -----------------------------------------------------------------------------------


def _parse_hidden_units(
    params: Mapping[str, Any], limits: ServerLimits, base_units: tuple[int, ...], notices: list[LinkNotice]
) -> tuple[int, ...] | None:
    """Hidden units from `units` (one number or a comma list) and `layers` (how many, for one number).

    Returns None when the link leaves the layers as they are (or asks for nothing usable). The result
    has at most `limits.hidden_layers` layers of at most `limits.units` units (a base spec's extra layers
    aside, which `clamp_to_limits` drops): both are checked before any tuple is built.
    """
    raw_layers = link_value(params, LAYERS_PARAM)
    raw_units = link_value(params, UNITS_PARAM)
    if raw_layers is None and raw_units is None:
        return None
    widths = None if raw_units is None else _parse_unit_list(raw_units, limits, notices)
    if widths is not None and len(widths) > 1:
        if raw_layers is not None and raw_layers != str(len(widths)):
            why = f"its units give each layer's width, so the model has {len(widths)} hidden layers."
            notices.append(_ignored(LAYERS_PARAM, raw_layers, why))
        return widths
    layers = None
    if raw_layers is not None:
        parsed = _parse_bounded_int(LAYERS_PARAM, raw_layers, 1, limits.hidden_layers, "{:,} hidden layers")
        layers = _take_number(parsed, notices)
    if layers is None and widths is None:
        return None
    width = widths[0] if widths else (base_units[0] if base_units else 1)
    return (width,) * (layers or len(base_units) or 1)


def _take_number(parsed: int | _Clamped | _Refused, notices: list[LinkNotice]) -> int | None:
    """The number a bounded parser gave (clamped if need be), recording its notice; None when refused."""
    if isinstance(parsed, _Refused | _Clamped):
        notices.append(parsed.notice)
    if isinstance(parsed, _Refused):
        return None
    return parsed.value if isinstance(parsed, _Clamped) else parsed


def _parse_unit_list(raw: str, limits: ServerLimits, notices: list[LinkNotice]) -> tuple[int, ...] | None:
    """Widths from `units`: one number or a comma list, at most `limits.hidden_layers` of them.

    A value longer than the longest legal list is refused at once; extra layers of a legal-length list
    are dropped and widths over `limits.units` are clamped, each with a notice.
    """
    digits = len(str(limits.units))
    longest = limits.hidden_layers * (digits + 1) - 1
    parts = raw.split(",", limits.hidden_layers) if len(raw) <= longest else []
    widths = [_whole_number(part, 1, limits.units) for part in parts[: limits.hidden_layers]]
    if not widths or None in widths:
        why = f"give whole numbers from 1 to {limits.units:,}, like 500 or 256,128."
        notices.append(_ignored(UNITS_PARAM, raw, why))
        return None
    if len(parts) > limits.hidden_layers:
        notices.append(
            LinkNotice(
                f"The link lists more than {limits.hidden_layers} hidden layers; the most allowed here is "
                f"{limits.hidden_layers}, so it keeps the first {limits.hidden_layers}."
            )
        )
    widest = max(width for width in widths if width is not None)
    if widest > limits.units:
        notices.append(_over_limit(f"{widest:,} units in a layer", limits.units))
    return tuple(min(width, limits.units) for width in widths if width is not None)


def _units_params(hidden_units: tuple[int, ...]) -> dict[str, str]:
    """`layers` + one `units` number when all layers match, else a comma list per layer."""
    if hidden_units and len(set(hidden_units)) == 1:
        return {LAYERS_PARAM: str(len(hidden_units)), UNITS_PARAM: str(hidden_units[0])}
    return {UNITS_PARAM: ",".join(str(units) for units in hidden_units)}


def _limit_notices(asked: ModelSpec, clamped: ModelSpec, limits: ServerLimits) -> list[LinkNotice]:
    """Notices, in our words, for what `lib.spec.clamp_to_limits` changed.

    That is a base spec over this server's limits, or a model over the parameter limit: the link's own
    values were brought within the limits before.
    """
    notices = []
    if clamped.hidden_units != asked.hidden_units:
        notices.append(
            LinkNotice(
                f"To fit this server's limits ({limits.hidden_layers} hidden layers, {limits.units:,} units per "
                f"layer, {limits.params:,} parameters), the model has {_describe_layers(clamped.hidden_units)}."
            )
        )
    for spec_field in (*spec_fields("int"), *spec_fields("rate")):
        value = getattr(clamped, spec_field.name)
        if value != getattr(asked, spec_field.name):
            shown = f"{value:g}" if isinstance(value, float) else f"{value:,}"
            notices.append(LinkNotice(f"To fit this server's limits, {spec_field.words} is {shown}."))
    # The other settings `clamp_to_limits` can reset, in the Build page's words.
    others = [
        spec_field.words
        for spec_field in (*spec_fields("choice"), *spec_fields("flag"))
        if getattr(clamped, spec_field.name) != getattr(asked, spec_field.name)
    ]
    if others:
        listed = _listing(tuple(others[:MAX_LISTED]), len(others) - len(others[:MAX_LISTED]))
        notices.append(
            LinkNotice(f"{listed[0].upper()}{listed[1:]} went back to this app's default{'s' * (len(others) > 1)}.")
        )
    return notices


def _describe_layers(hidden_units: tuple[int, ...]) -> str:
    """Hidden layers in words: "3 hidden layers of 256 units", "of 256 and 128 units" or "of 8 to 512 units"."""
    count = f"{len(hidden_units)} hidden layer{'s' if len(hidden_units) != 1 else ''}"
    widths = [f"{units:,}" for units in hidden_units]
    if len(set(hidden_units)) == 1:
        return f"{count} of {widths[0]} units"
    if len(hidden_units) > MAX_LISTED:
        return f"{count} of {min(hidden_units):,} to {max(hidden_units):,} units"
    return f"{count} of {', '.join(widths[:-1])} and {widths[-1]} units"


# --- devices -----------------------------------------------------------------------------------------


def _parse_devices(raw: str, available: tuple[str, ...], notices: list[LinkNotice]) -> tuple[str, ...]:
    """The link's devices that this server has, in the link's order, each once."""
    if len(raw) > MAX_DEVICES_CHARS:
        notices.append(_ignored("devices", raw, f"a link names at most {MAX_LINK_DEVICES} devices."))
        return ()
    names = [part.lower() for part in raw.split(",") if part]
    if not names:
        notices.append(_ignored("devices", raw, "it names no device; choose them on the Train page."))
        return ()
    malformed = [name for name in names if not DEVICE_PATTERN.fullmatch(name)]
    missing = [name for name in names if DEVICE_PATTERN.fullmatch(name) and name not in available]
    for bad, why in (
        (malformed, "device names look like cpu:0, gpu:0 or gpu:all."),
        (missing, f"this server has {', '.join(available) or 'no devices'}."),
    ):
        unique = list(dict.fromkeys(bad))
        if unique:
            pieces = tuple(quote_fragment(name) for name in unique[:MAX_LISTED])
            notices.append(LinkNotice(why, pieces, len(unique) - len(pieces)))
    return tuple(dict.fromkeys(name for name in names if name in available))


def _listing(pieces: tuple[str, ...], more: int) -> str:
    """Lists pieces in words: `a`, `a and b`, `a, b and c` or `a, b, c and 4 more`."""
    if more:
        return f"{', '.join(pieces)} and {more:,} more"
    if len(pieces) == 1:
        return pieces[0]
    return f"{', '.join(pieces[:-1])} and {pieces[-1]}"
