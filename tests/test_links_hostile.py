"""Property-based tests of link parsing against hostile links (hypothesis): thousands of generated query mappings.

Whatever a link holds (huge, negative, NaN or infinite numbers, other scripts' digits, repeated and very long
values, markdown, LaTeX, Streamlit directives and HTML, over every parameter name and random names), reading
it never raises, gives a spec within the server limits, and gives few, short notices in which nothing from the
link is markdown: the link's text appears only inside code spans.
"""

from __future__ import annotations

import re
import string
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.limits import ServerLimits
from lib.links import (
    JOB_ID_PATTERN,
    KNOWN_PARAMS,
    MAX_NOTICE_CHARS,
    MAX_NOTICES,
    read_link,
    run_settings_from_query_params,
    spec_from_query_params,
)
from lib.presets import PRESETS
from lib.spec import validate_spec

PRESET_SPECS = {name: preset.spec for name, preset in PRESETS.items()}
MARKDOWN_PAYLOADS = (
    "[x](https://example.com)",
    "**b**",
    "$x$",
    "$$x^2$$",
    ":red[t]",
    ":material/home:",
    ":smile:",
    "<b>bold</b>",
    "<script>alert(1)</script>",
    "`code`",
    "``` ```",
    "# heading",
    "- item",
    "a | b",
    "~~s~~",
    "_e_",
    "https://example.com",
    "www.example.com",
    "\\*",
    "&amp;",
    "![i](https://example.com/i.png)",
)
NUMBER_LOOKALIKES = (
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "1e-999",
    "٣",
    "۳",
    "３",
    "²",
    "1_000",
    "+5",
    "-5",
    " 5",
    "5 ",
    "5.0",
    "0x10",
    "0",
    "00000000000000000001",
    "",
    ",",
    "gpu:all",
    "cpu:0",
    "CPU:0,gpu:0",
    "0123456789ab",
    "fashion-seed",
)
PAYLOAD_TEXT = st.sampled_from(MARKDOWN_PAYLOADS)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.integers(min_value=0, max_value=10**5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(NUMBER_LOOKALIKES),
)
LONG_TEXT = st.builds(
    lambda piece, times: piece * times,
    st.sampled_from(("9", "1,", "x", "**", "[a](b)", "٣", "`")),
    st.integers(1, 6000),
)
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # includes surrogates
VALUES = st.one_of(
    NUMBERS,
    PAYLOAD_TEXT,
    LONG_TEXT,
    ANY_TEXT,
    st.lists(NUMBERS, min_size=1, max_size=12).map(",".join),
    st.lists(st.one_of(PAYLOAD_TEXT, NUMBERS), min_size=1, max_size=4).map(" ".join),
)
VALUE_OR_REPEATED = st.one_of(VALUES, st.lists(VALUES, max_size=3))
NAMES = st.one_of(st.sampled_from(KNOWN_PARAMS), PAYLOAD_TEXT, ANY_TEXT, LONG_TEXT)
LINKS = st.dictionaries(NAMES, VALUE_OR_REPEATED, max_size=30)
LIMITS = st.one_of(
    st.just(ServerLimits()),
    st.builds(
        ServerLimits,
        params=st.integers(10_000, 30_000_000),  # the smallest CIFAR-10 model has 3,093
        hidden_layers=st.integers(1, 12),
        units=st.integers(1, 5000),
        epochs=st.integers(1, 200),
        samples=st.integers(1, 100_000),
        batch_size=st.integers(1, 10_000),
    ),
)
DEVICE_LISTS = st.sampled_from(
    (["cpu:0"], ["cpu:0", "gpu:0"], ["cpu:0", *(f"gpu:{index}" for index in range(8)), "gpu:all"])
)
PROPERTY_SETTINGS = settings(
    max_examples=2500,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PUNCTUATION = re.escape(string.punctuation)
PUNCTUATION_CHAR = re.compile(rf"[{PUNCTUATION}]")
ESCAPE = re.compile(rf"\\[{PUNCTUATION}]")
BACKTICKS = re.compile(r"`+")
SKELETON = re.compile(r"^Ignored CODE(?:(?:, | and )CODE)*(?: and [0-9,]+ more)? from the link: ")


def code_spans_removed(markdown: str) -> tuple[str, list[str]]:
    """Splits markdown into its text outside code spans (each span becomes CODE) and the spans' contents.

    Code spans are found as CommonMark finds them: a run of backticks opens one, and the next run of the same
    length closes it; a run without a match is literal text. Escapes outside code spans are skipped over.
    """
    outside, spans, index = [], [], 0
    while index < len(markdown):
        if markdown[index] == "\\" and index + 1 < len(markdown):
            outside.append(markdown[index : index + 2])
            index += 2
            continue
        run = BACKTICKS.match(markdown, index)
        if run is None:
            outside.append(markdown[index])
            index += 1
            continue
        closing = next((m for m in BACKTICKS.finditer(markdown, run.end()) if len(m.group()) == len(run.group())), None)
        if closing is None:
            outside.append(run.group())
            index = run.end()
            continue
        spans.append(markdown[run.end() : closing.start()])
        outside.append("CODE")
        index = closing.end()
    return "".join(outside), spans


def assert_nothing_from_the_link_renders(markdown: str) -> None:
    """Outside code spans there is only our skeleton and fully escaped words: nothing markdown could act on."""
    outside, spans = code_spans_removed(markdown)
    assert "\n" not in markdown and all("\n" not in span for span in spans)
    words = SKELETON.sub("", outside)
    assert "CODE" not in words, markdown  # the link's pieces come only where the skeleton lists them
    unescaped = ESCAPE.sub("", words)
    assert not PUNCTUATION_CHAR.search(unescaped), markdown
    assert not re.search(r"https?|www", unescaped), markdown


@PROPERTY_SETTINGS
@given(params=LINKS, limits=LIMITS, devices=DEVICE_LISTS, preset=st.sampled_from(tuple(PRESET_SPECS)))
def test_any_link_gives_a_spec_within_the_limits_and_short_literal_notices(params, limits, devices, preset):
    link = read_link(params, limits, devices, PRESET_SPECS, preset)

    validate_spec(link.spec, limits)
    assert len(link.spec.hidden_units) <= limits.hidden_layers
    assert link.settings.sample_limit is None or 1 <= link.settings.sample_limit <= limits.samples
    assert set(link.settings.devices) <= set(devices)
    assert link.settings.job_id is None or JOB_ID_PATTERN.fullmatch(link.settings.job_id)
    assert link.preset is None or link.preset in PRESET_SPECS

    assert len(link.notices) <= MAX_NOTICES
    for notice in link.notices:
        assert len(notice.text) <= MAX_NOTICE_CHARS, notice.text
        assert_nothing_from_the_link_renders(notice.markdown())


@settings(PROPERTY_SETTINGS, max_examples=1000)
@given(
    name=st.sampled_from(KNOWN_PARAMS),
    payload=st.one_of(PAYLOAD_TEXT, LONG_TEXT),
    prefix=st.sampled_from(("", "5", "cpu:0,", "relu")),
)
def test_markdown_in_any_known_parameter_shows_only_as_code(name, payload, prefix):
    params = {name: prefix + payload}
    limits = ServerLimits()
    spec, spec_notices = spec_from_query_params(params, limits, base=PRESET_SPECS["fashion-seed"])
    settings_, settings_notices = run_settings_from_query_params(params, limits, ["cpu:0"])
    validate_spec(spec, limits)
    assert settings_.job_id is None and settings_.devices in ((), ("cpu:0",))
    for notice in spec_notices + settings_notices:
        assert_nothing_from_the_link_renders(notice.markdown())
        assert len(notice.text) <= MAX_NOTICE_CHARS


def test_the_code_span_finder_sees_markdown_as_commonmark_does():
    # The helper above is part of the property; check it on known cases.
    assert code_spans_removed("a `b` c") == ("a CODE c", ["b"])
    assert code_spans_removed("`` a`b `` and `c") == ("CODE and `c", [" a`b "])
    assert code_spans_removed("\\`x` y`") == ("\\`xCODE", [" y"])
    assert_nothing_from_the_link_renders("Ignored `**b**` from the link: use 1 or 0\\.")
    for rendered in ("Ignored **b** from the link: x", "x [a](https://e.com)", "Ignored `a` from the link: `b`"):
        try:
            assert_nothing_from_the_link_renders(rendered)
        except AssertionError:
            continue
        raise AssertionError(f"not caught: {rendered}")


def peak_bytes_reading(params: dict) -> int:
    """The most memory Python allocated at once while reading a link (the link itself excluded)."""
    tracemalloc.start()
    try:
        read_link(params, ServerLimits(), ["cpu:0"], PRESET_SPECS, "fashion-seed")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_link_costs_no_more_memory_than_a_normal_one():
    normal = {"layers": "2", "units": "64", "epochs": "3", "devices": "cpu:0", "samples": "300"}
    huge = {name: "9" * 1_000_000 for name in KNOWN_PARAMS} | {name: "1," * 500_000 for name in ("units", "devices")}
    huge |= {f"p{index}": "[x](https://example.com)" for index in range(10_000)}
    peak_bytes_reading(normal)  # imports and caches
    # ~22 MB of link; reading it allocates about what a normal link does (a few notices), never a copy of it.
    assert peak_bytes_reading(huge) < peak_bytes_reading(normal) + 64 * 1024
