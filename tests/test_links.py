"""Tests of shareable links: spec and run settings to query parameters and back, bounded parsing and notices."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.limits import LIMIT_ENV_VARS, ServerLimits
from lib.links import (
    FRAGMENT_CHARS,
    KNOWN_PARAMS,
    MAX_NOTICE_CHARS,
    MAX_NOTICES,
    PRESENTER_PARAM,
    UNKNOWN_SETTING_PROBLEM,
    LinkNotice,
    RunSettings,
    escape_markdown,
    fit_to_limits,
    fold_notices,
    limit_problems,
    markdown_code,
    presenter_from_query_params,
    preset_from_query_params,
    quote_fragment,
    read_link,
    refused_spec_problems,
    run_settings_from_query_params,
    spec_from_query_params,
    spec_to_query_params,
)
from lib.presets import PRESETS
from lib.spec import ModelSpec, SpecError, count_params, validate_spec

LIMITS = ServerLimits()
PRESET_SPECS = {name: preset.spec for name, preset in PRESETS.items()}
INTERNAL_NAMES = ("hidden_units", "batch_size", "steps_per_execution", "learning_rate", *LIMIT_ENV_VARS.values())


def only_notice(notices: list[LinkNotice]) -> LinkNotice:
    assert len(notices) == 1, [notice.text for notice in notices]
    return notices[0]


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(),
        ModelSpec(
            dataset="cifar10",
            hidden_units=(256, 128, 64),
            hidden_activation="tanh",
            output_activation="sigmoid",
            optimizer="sgd",
            learning_rate=0.05,
            label_encoding="one_hot",
            batch_size=128,
            epochs=3,
            seed=7,
            steps_per_execution=16,
            jit_compile=True,
            precision="mixed_bfloat16",
            device_resident=True,
        ),
        ModelSpec(learning_rate=1e-05, seed=2**32 - 1, hidden_units=(4096,)),
    ],
)
def test_spec_round_trips_through_query_params(spec):
    params = spec_to_query_params(spec)
    assert all(isinstance(value, str) for value in params.values())
    parsed, notices = spec_from_query_params(params, LIMITS)
    assert parsed == spec
    assert notices == []


def test_equal_layers_are_written_as_layers_and_units():
    params = spec_to_query_params(ModelSpec(hidden_units=(500,) * 5))
    assert params["layers"] == "5" and params["units"] == "500"
    assert spec_to_query_params(ModelSpec(hidden_units=(64, 32)))["units"] == "64,32"
    assert "layers" not in spec_to_query_params(ModelSpec(hidden_units=(64, 32)))


def test_run_settings_preset_and_job_are_written_and_read_back():
    settings = RunSettings(devices=("cpu:0", "gpu:0"), sample_limit=500, job_id="0123456789ab")
    params = spec_to_query_params(ModelSpec(), settings, "fashion-seed")
    assert params["devices"] == "cpu:0,gpu:0"
    assert params["samples"] == "500"
    assert params["preset"] == "fashion-seed"
    assert params["job"] == "0123456789ab"
    assert run_settings_from_query_params(params, LIMITS, ["cpu:0", "gpu:0"]) == (settings, [])
    assert "job" not in spec_to_query_params(ModelSpec(), RunSettings(devices=("cpu:0",)))


def test_every_written_name_is_a_known_parameter():
    settings = RunSettings(("cpu:0",), 5, "0" * 12, target_accuracy=0.85, repeats=3, sweep_batches=(32, 64))
    written = set(spec_to_query_params(ModelSpec(hidden_units=(3, 2)), settings, "fashion-seed"))
    written |= set(spec_to_query_params(ModelSpec()))
    assert written == set(KNOWN_PARAMS)


@pytest.mark.parametrize(
    ("value", "on"), [("1", True), ("true", True), ("ON", True), ("0", False), ("off", False), (["0", "1"], True)]
)
def test_presenter_link_turns_the_view_on_or_off(value, on):
    assert presenter_from_query_params({PRESENTER_PARAM: value, "layers": "2"}) == (on, [])


@pytest.mark.parametrize("value", ["yes", "2", "", " 1", "1" * 10_000, "**b**"])
def test_presenter_link_value_it_cannot_use_leaves_the_view_off_with_a_notice(value):
    on, notices = presenter_from_query_params({PRESENTER_PARAM: value})
    assert on is False
    assert [notice.ignored for notice in notices] == [(f"presenter={quote_fragment(value)}",)]
    assert "use 1 or 0" in notices[0].text


def test_presenter_parameter_is_known_to_model_links():
    assert presenter_from_query_params({}) == (False, [])
    assert spec_from_query_params({PRESENTER_PARAM: "1"}, LIMITS)[1] == []  # no "does not know" notice


def test_partial_link_keeps_the_base_spec_for_missing_fields():
    base = ModelSpec(optimizer="sgd", learning_rate=0.01)
    parsed, notices = spec_from_query_params({"layers": "2", "units": "64", "epochs": "3"}, LIMITS, base=base)
    assert parsed.hidden_units == (64, 64)
    assert parsed.epochs == 3
    assert parsed.optimizer == "sgd" and parsed.learning_rate == 0.01
    assert notices == []


def test_layers_alone_repeats_the_base_width_and_units_alone_keeps_the_base_depth():
    parsed, _ = spec_from_query_params({"layers": "2"}, LIMITS, base=ModelSpec(hidden_units=(300, 100)))
    assert parsed.hidden_units == (300, 300)
    parsed, _ = spec_from_query_params({"units": "64"}, LIMITS, base=ModelSpec(hidden_units=(300, 100, 7)))
    assert parsed.hidden_units == (64, 64, 64)


def test_repeated_parameters_use_the_last_value():
    parsed, notices = spec_from_query_params({"epochs": ["2", "4"]}, LIMITS)
    assert parsed.epochs == 4 and notices == []


@pytest.mark.parametrize(
    ("params", "piece", "why"),
    [
        ({"act": "swish"}, "act=swish", "choose one of relu, tanh"),
        ({"opt": "lbfgs"}, "opt=lbfgs", "choose one of sgd"),
        ({"dataset": "imagenet"}, "dataset=imagenet", "fashion_mnist"),
        ({"epochs": "many"}, "epochs=many", "whole number from 1 to 50"),
        ({"batch": "0"}, "batch=0", "whole number from 1 to 8,192"),
        ({"seed": "-1"}, "seed=-1", "whole number from 0 to 4,294,967,295"),
        ({"lr": "nan"}, "lr=nan", "above 0"),
        ({"lr": "inf"}, "lr=inf", "above 0"),
        ({"lr": "-1"}, "lr=-1", "above 0"),
        ({"lr": "5"}, "lr=5", "at most 1"),
        ({"lr": "1e-999"}, "lr=1e-999", "above 0"),
        ({"lr": "１"}, "lr=１", "above 0"),
        ({"jit": "maybe"}, "jit=maybe", "use 1 or 0"),
        ({"resident": "perhaps"}, "resident=perhaps", "use 1 or 0"),
        ({"units": "64,abc"}, "units=64,abc", "whole numbers from 1 to 4,096"),
        ({"units": "64,,32"}, "units=64,,32", "whole numbers"),
        ({"units": ""}, "units=", "whole numbers"),
        ({"layers": "-3"}, "layers=-3", "whole number from 1 to 8"),
        ({"colour": "red"}, "colour", "does not know this setting"),
    ],
)
def test_invalid_values_are_ignored_with_a_notice(params, piece, why):
    parsed, notices = spec_from_query_params(params, LIMITS)
    assert parsed == ModelSpec()
    notice = only_notice(notices)
    assert notice.ignored == (piece,)
    assert why in notice.message


@pytest.mark.parametrize(
    "raw", ["٣", "۳", "３", "1_000", "+5", "-5", " 5", "5 ", "5.0", "5e0", "0x5", "²", "5\n", "", "five"]
)
def test_whole_numbers_are_ascii_digits_only(raw):
    parsed, notices = spec_from_query_params({"epochs": raw}, LIMITS)
    assert parsed.epochs == ModelSpec().epochs
    assert only_notice(notices) == LinkNotice("use a whole number from 1 to 50.", (f"epochs={quote_fragment(raw)}",))


@pytest.mark.parametrize("raw", ["1000000000000000000000000000000", "9" * 4300, "100000000", "1000", "10"])
def test_a_number_longer_than_any_legal_one_is_refused_before_it_is_read(raw):
    # 10**30 once raised OverflowError building `(width,) * layers`; 100000000 built a 100-million-item tuple.
    parsed, notices = spec_from_query_params({"layers": raw, "units": "32"}, LIMITS)
    assert parsed.hidden_units == (32,) * len(ModelSpec().hidden_units)
    notice = only_notice(notices)
    assert notice.ignored == (f"layers={quote_fragment(raw)}",)
    assert len(notice.ignored[0]) <= 2 * FRAGMENT_CHARS + 3


def test_a_legal_length_number_over_the_limit_is_clamped_with_a_notice():
    parsed, notices = spec_from_query_params({"epochs": "60", "layers": "9", "units": "32"}, LIMITS)
    assert parsed.epochs == 50 and parsed.hidden_units == (32,) * 8
    texts = [notice.text for notice in notices]
    assert texts == [
        "The link asks for 60 epochs; the most allowed here is 50, so it uses 50.",
        "The link asks for 9 hidden layers; the most allowed here is 8, so it uses 8.",
    ]


def test_units_over_the_limit_are_clamped_not_ignored():
    parsed, notices = spec_from_query_params({"units": "5000", "layers": "1"}, LIMITS)
    assert parsed.hidden_units == (4096,)
    assert only_notice(notices).text == (
        "The link asks for 5,000 units in a layer; the most allowed here is 4,096, so it uses 4,096."
    )


def test_layers_next_to_a_unit_list_is_ignored_with_the_reason():
    parsed, notices = spec_from_query_params({"units": "3000,1000", "layers": "5"}, LIMITS)
    assert parsed.hidden_units == (3000, 1000)
    notice = only_notice(notices)
    assert notice.ignored == ("layers=5",)
    assert notice.message == "its units give each layer's width, so the model has 2 hidden layers."
    assert spec_from_query_params({"units": "3000,1000", "layers": "2"}, LIMITS) == (parsed, [])


def test_unit_lists_are_bounded_before_they_are_split():
    limits = ServerLimits(hidden_layers=3, units=256)
    parsed, notices = spec_from_query_params({"units": "8,8,8,8,8"}, limits)
    assert parsed.hidden_units == (8, 8, 8)
    assert "keeps the first 3" in only_notice(notices).message
    too_long = ",".join(["8"] * 10_000)
    parsed, notices = spec_from_query_params({"units": too_long}, limits)
    assert parsed.hidden_units == (256, 256, 256)  # the base's 5 x 500, fitted to the limits
    assert notices[0].ignored == (f"units={quote_fragment(too_long)}",)


def test_values_beyond_limits_are_clamped_with_notices_in_the_users_words():
    limits = ServerLimits(hidden_layers=3, units=256, epochs=4, batch_size=64)
    params = {"layers": "9", "units": "999", "epochs": "9", "batch": "99"}
    parsed, notices = spec_from_query_params(params, limits)
    assert parsed.hidden_units == (256, 256, 256)
    assert parsed.epochs == 4
    assert parsed.batch_size == 64
    assert len(notices) == 4
    for notice in notices:
        assert not any(name in notice.text for name in INTERNAL_NAMES)
        assert notice.text.count(". ") + notice.text.count("; ") <= 2


def test_parameter_limit_narrows_layers_with_a_readable_notice():
    limits = ServerLimits(params=100_000)
    parsed, notices = spec_from_query_params({"layers": "2", "units": "1000"}, limits)
    assert count_params(parsed) <= 100_000
    notice = only_notice(notices)
    assert "100,000 parameters" in notice.text and "the model has 2 hidden layers of" in notice.text
    assert not any(name in notice.text for name in INTERNAL_NAMES)


def test_a_base_spec_over_the_limits_is_fitted_with_a_notice():
    spec, notices = spec_from_query_params({}, ServerLimits(hidden_layers=3, units=256))
    assert spec.hidden_units == (256, 256, 256)
    assert "the model has 3 hidden layers of 256 units" in only_notice(notices).text


def test_fit_to_limits_words_each_change_for_a_person():
    spec = ModelSpec(hidden_units=(500, 300, 100, 50), epochs=80, batch_size=1024)
    fitted, notices = fit_to_limits(spec, ServerLimits(hidden_layers=3, epochs=10, batch_size=256))
    assert fitted == spec.with_changes(hidden_units=(500, 300, 100), epochs=10, batch_size=256)
    assert [notice.text for notice in notices] == [
        "To fit this server's limits (3 hidden layers, 4,096 units per layer, 20,000,000 parameters), "
        "the model has 3 hidden layers of 500, 300 and 100 units.",
        "To fit this server's limits, the batch size is 256.",
        "To fit this server's limits, the number of epochs is 10.",
    ]
    assert fit_to_limits(ModelSpec(), LIMITS) == (ModelSpec(), [])


def test_settings_reset_to_defaults_are_named_in_the_build_pages_words():
    odd = ModelSpec().with_changes(optimizer="lion", precision="fp8", hidden_activation="gelu2", jit_compile="yes")
    _, notices = fit_to_limits(odd, LIMITS)
    text = only_notice(notices).text
    assert text == "The hidden activation, the optimizer, the precision and 1 more went back to this app's defaults."
    assert not any(name in text for name in (*INTERNAL_NAMES, "hidden_activation", "jit_compile", "precision:"))


def test_steps_per_execution_over_the_limit_is_named_as_the_build_page_names_it():
    _, notices = fit_to_limits(ModelSpec().with_changes(steps_per_execution=2**40), LIMITS)
    assert only_notice(notices).text == f"To fit this server's limits, steps per execution is {2**31 - 1:,}."


def test_limit_problems_say_what_passes_a_limit_in_plain_words():
    limits = ServerLimits(hidden_layers=3, units=256, epochs=4, batch_size=64)
    spec = ModelSpec(hidden_units=(512,) * 5, epochs=9, batch_size=128)
    assert limit_problems(spec, limits) == [
        "5 hidden layers: this server's limit is 3.",
        "512 units in a layer: this server's limit is 256.",
        "9 epochs: this server's limit is 4.",
        "A batch size of 128: this server's limit is 64.",
    ]
    assert limit_problems(ModelSpec(), LIMITS) == []


def test_limit_problems_for_too_many_parameters_say_which_layers_would_fit():
    spec, limits = ModelSpec(hidden_units=(256,)), ServerLimits(params=100_000)
    (problem,) = limit_problems(spec, limits)
    assert problem.startswith("203,530 parameters: this server's limit is 100,000. Use fewer or smaller hidden layers")
    fitted, _ = fit_to_limits(spec, limits)
    assert problem.endswith(f"1 hidden layer of {fitted.hidden_units[0]} units would fit.")
    assert count_params(fitted) <= 100_000
    assert not any(name in problem for name in INTERNAL_NAMES)


def test_a_refused_spec_is_explained_in_the_pages_words_never_validate_specs():
    over = ModelSpec(hidden_units=(512,))
    with pytest.raises(SpecError) as refused:
        validate_spec(over, ServerLimits(units=256))
    assert "hidden_units" in str(refused.value)  # validate_spec speaks to the command line
    assert refused_spec_problems(over, ServerLimits(units=256)) == ["512 units in a layer: this server's limit is 256."]
    unknown = ModelSpec(optimizer="lion")  # within every limit, but no widget offers it
    assert refused_spec_problems(unknown, LIMITS) == [UNKNOWN_SETTING_PROBLEM]
    assert not any(name in UNKNOWN_SETTING_PROBLEM for name in INTERNAL_NAMES)


def test_run_settings_filter_devices_and_clamp_samples():
    params = {"devices": "CPU:0,gpu:3,tpu:0,cpu:0", "samples": "70000"}
    settings, notices = run_settings_from_query_params(params, ServerLimits(samples=60_000), ["cpu:0"])
    assert settings == RunSettings(devices=("cpu:0",), sample_limit=60_000)
    assert [notice.ignored for notice in notices] == [("tpu:0",), ("gpu:3",), ()]
    assert notices[0].message == "device names look like cpu:0, gpu:0 or gpu:all."
    assert notices[1].message == "this server has cpu:0."
    assert "70,000 training samples" in notices[2].text and "60,000" in notices[2].text


def test_an_empty_device_list_gets_a_notice():
    for raw in ("", ",", ",,"):
        settings, notices = run_settings_from_query_params({"devices": raw}, LIMITS, ["cpu:0"])
        assert settings.devices == ()
        assert only_notice(notices).ignored == (f"devices={raw}",)


def test_many_bad_devices_fold_into_one_notice_and_a_long_list_is_refused():
    raw = ",".join(f"tpu:{index}" for index in range(10))
    settings, notices = run_settings_from_query_params({"devices": raw}, LIMITS, ["cpu:0"])
    notice = only_notice(notices)
    assert notice.ignored == ("tpu:0", "tpu:1", "tpu:2") and notice.more == 7
    assert notice.text.startswith("Ignored “tpu:0”, “tpu:1”, “tpu:2” and 7 more from the link")
    settings, notices = run_settings_from_query_params({"devices": "cpu:0," * 100}, LIMITS, ["cpu:0"])
    assert settings.devices == () and "at most 16 devices" in only_notice(notices).message


def test_data_parallel_device_survives_a_link_where_the_server_offers_it():
    params = {"devices": "gpu:0,GPU:ALL"}
    settings, notices = run_settings_from_query_params(params, ServerLimits(), ["cpu:0", "gpu:0", "gpu:1", "gpu:all"])
    assert settings.devices == ("gpu:0", "gpu:all")
    assert notices == []
    round_trip = spec_to_query_params(ModelSpec(), settings, None)
    assert round_trip["devices"] == "gpu:0,gpu:all"


def test_data_parallel_device_is_dropped_with_a_notice_on_a_one_gpu_server():
    settings, notices = run_settings_from_query_params(
        {"devices": "gpu:all,cpu:all"}, ServerLimits(), ["cpu:0", "gpu:0"]
    )
    assert settings.devices == ()
    notice = only_notice(notices)
    assert notice.ignored == ("gpu:all", "cpu:all")
    assert notice.message == "this server has cpu:0, gpu:0."


def test_device_names_with_other_digits_are_malformed():
    settings, notices = run_settings_from_query_params({"devices": "gpu:٣,cpu:0\n"}, LIMITS, ["cpu:0"])
    assert settings.devices == ()
    assert only_notice(notices).ignored == ("gpu:٣", "cpu:0\ufffd")


def test_run_settings_ignore_bad_sample_limit():
    settings, notices = run_settings_from_query_params({"samples": "lots"}, LIMITS, ["cpu:0"])
    assert settings.sample_limit is None
    assert only_notice(notices).ignored == ("samples=lots",)
    assert run_settings_from_query_params({}, LIMITS, ["cpu:0"]) == (RunSettings(), [])


@pytest.mark.parametrize("raw", ["0123456789AB", "0123456789a", "0123456789abc", "0123456789ag", "", "١٢٣٤٥٦٧٨٩٠١٢"])
def test_a_job_id_is_twelve_lowercase_hex_digits(raw):
    settings, notices = run_settings_from_query_params({"job": raw}, LIMITS, ["cpu:0"])
    assert settings.job_id is None
    notice = only_notice(notices)
    assert notice.ignored == (f"job={raw}",) and "12 characters" in notice.message
    settings, notices = run_settings_from_query_params({"job": "00ff00ff00ff"}, LIMITS, ["cpu:0"])
    assert settings.job_id == "00ff00ff00ff" and notices == []


def test_preset_from_query_params():
    names = ("fashion-seed", "cifar10-seed")
    assert preset_from_query_params({"preset": "fashion-seed"}, names) == ("fashion-seed", [])
    assert preset_from_query_params({}, names) == (None, [])
    name, notices = preset_from_query_params({"preset": "mnist"}, names)
    assert name is None
    assert only_notice(notices) == LinkNotice("choose one of fashion-seed, cifar10-seed.", ("preset=mnist",))


def test_unknown_names_fold_into_one_notice_quoting_a_few():
    params = {f"p{index}": "1" for index in range(1000)} | {"epochs": "3"}
    parsed, notices = spec_from_query_params(params, LIMITS)
    assert parsed.epochs == 3
    notice = only_notice(notices)
    assert notice.ignored == ("p0", "p1", "p2") and notice.more == 997
    assert notice.message == "this app does not know these settings."


def test_pieces_of_the_link_are_cut_short_and_kept_on_one_line():
    assert quote_fragment("x" * 5000) == "x" * FRAGMENT_CHARS + "…"
    assert quote_fragment("a\nb\u202ec\x00") == "a\ufffdb\ufffdc\ufffd"
    assert quote_fragment("\ud800") == "\ufffd"
    parsed, notices = spec_from_query_params({"dataset": "y" * 5000}, LIMITS)
    assert only_notice(notices).ignored == ("dataset=" + "y" * FRAGMENT_CHARS + "…",)
    assert len(notices[0].text) < 200


def test_fold_notices_keeps_the_count_bounded():
    ignored = [LinkNotice("bad.", (f"p{index}=x",)) for index in range(10)]
    changed = [LinkNotice(f"changed {index}.") for index in range(10)]
    folded = fold_notices(changed + ignored)
    assert len(folded) == MAX_NOTICES
    assert folded[-1] == LinkNotice("this app cannot use these values.", ("p0=x", "p1=x", "p2=x"), 7)
    assert folded[-2].message == "6 more settings were changed to fit this server's limits."
    assert fold_notices(changed[:3]) == changed[:3]


def test_read_link_takes_everything_from_the_link_within_the_limits():
    params = {"preset": "cifar10-seed", "layers": "2", "devices": "cpu:0", "samples": "300", "job": "abcdefabcdef"}
    link = read_link(params, LIMITS, ["cpu:0"], PRESET_SPECS, "fashion-seed")
    assert link.preset == "cifar10-seed"
    assert link.spec == PRESETS["cifar10-seed"].spec.with_changes(hidden_units=(3000, 3000))
    assert link.settings == RunSettings(devices=("cpu:0",), sample_limit=300, job_id="abcdefabcdef")
    assert link.notices == ()
    hostile = {name: "[x](https://example.com)" for name in KNOWN_PARAMS} | {"**b**": "$x$"}
    link = read_link(hostile, LIMITS, ["cpu:0"], PRESET_SPECS, "fashion-seed")
    validate_spec(link.spec, LIMITS)
    assert link.spec == PRESETS["fashion-seed"].spec
    assert len(link.notices) <= MAX_NOTICES


# --- rendering -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["plain", "a`b", "`start", "end`", "``x``", " both ", "   ", "", "a\nb", "$x$ **b**"])
def test_markdown_code_wraps_any_text_in_one_code_span(text):
    span = markdown_code(text)
    fence = re.match(r"`+", span).group()
    inner = span[len(fence) : -len(fence)]
    assert span.endswith(fence) and f"{fence}" not in inner
    assert "`" * (len(fence) + 1) not in span and "\n" not in span
    # CommonMark strips one space from each side only when both are there and the content is not all spaces.
    shown = inner[1:-1] if inner.startswith(" ") and inner.endswith(" ") and inner.strip(" ") else inner
    assert shown == (" ".join(text.splitlines()) or " ")


def test_escape_markdown_escapes_every_ascii_punctuation_character():
    punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    escaped = escape_markdown(f"a{punctuation}b\nc")
    assert escaped == "a" + "".join(f"\\{char}" for char in punctuation) + "b c"


def test_notice_markdown_shows_the_links_pieces_as_code_only():
    notice = LinkNotice("choose one of relu, tanh.", ("act=**b**", "`x`"), 2)
    assert notice.markdown() == "Ignored `act=**b**`, `` `x` `` and 2 more from the link: choose one of relu\\, tanh\\."
    assert notice.text == "Ignored “act=**b**”, “`x`” and 2 more from the link: choose one of relu, tanh."
    assert LinkNotice("The link asks for 60 epochs.").markdown() == "The link asks for 60 epochs\\."


# --- time to accuracy, repeats and a sweep's batch sizes -----------------------------------------------


@given(
    target=st.one_of(st.none(), st.integers(500, 9_900).map(lambda basis_points: basis_points / 10_000)),
    repeats=st.integers(1, LIMITS.repeats),
    batches=st.one_of(
        st.just(()),
        st.sets(st.integers(1, LIMITS.batch_size), min_size=2, max_size=6).map(lambda sizes: tuple(sorted(sizes))),
    ),
)
def test_target_repeats_and_sweep_batches_are_written_and_read_back(target, repeats, batches):
    settings = RunSettings(target_accuracy=target, repeats=repeats, sweep_batches=batches)
    params = spec_to_query_params(ModelSpec(), settings)
    assert ("repeats" in params) == (repeats > 1) and ("batches" in params) == bool(batches)
    assert run_settings_from_query_params(params, LIMITS, ["cpu:0"]) == (settings, [])


@pytest.mark.parametrize(
    "raw", ["85", "0.999", "1", "0.01", "-0.5", "0.8.5", "0,85", "nan", "0.85 ", "\u0660.85", "0." + "5" * 90]
)
def test_a_target_outside_the_offered_range_or_not_a_plain_fraction_is_ignored_with_a_notice(raw):
    settings, notices = run_settings_from_query_params({"target": raw}, LIMITS, ["cpu:0"])
    assert settings.target_accuracy is None
    assert len(notices) == 1 and "like 0.85" in notices[0].message
    assert len(notices[0].text) <= MAX_NOTICE_CHARS


def test_repeats_over_the_server_limit_are_clamped_and_nonsense_is_ignored():
    settings, notices = run_settings_from_query_params({"repeats": "9"}, ServerLimits(repeats=5), ["cpu:0"])
    assert settings.repeats == 5 and "the most allowed here is 5" in notices[0].message
    settings, notices = run_settings_from_query_params({"repeats": "0"}, LIMITS, ["cpu:0"])
    assert settings.repeats == 1 and notices


@pytest.mark.parametrize(
    ("raw", "expected", "notice"),
    [
        ("2048,32,128", (32, 128, 2048), ""),
        ("32,32,64", (32, 64), "listed twice"),
        ("32,8000,64", (32, 64), "over 4,096"),
        ("32", (), "give 2 to 6"),
        ("1,2,3,4,5,6,7", (), "give 2 to 6"),
        ("32,abc", (), "give 2 to 6"),
        ("32,99999", (), "give 2 to 6"),
        ("32," * 5_000, (), "give 2 to 6"),
    ],
)
def test_a_links_sweep_batch_sizes_are_bounded_sorted_and_said_when_changed(raw, expected, notice):
    settings, notices = run_settings_from_query_params({"batches": raw}, ServerLimits(batch_size=4_096), ["cpu:0"])
    assert settings.sweep_batches == expected
    assert notice in " ".join(item.text for item in notices) if notice else notices == []
