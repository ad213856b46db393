"""Tests of benchmarks/hostile_links.py without a server: its links and its command line."""

from __future__ import annotations

import pytest

from benchmarks import hostile_links
from lib.limits import ServerLimits
from lib.links import KNOWN_PARAMS, read_link, spec_from_query_params
from lib.presets import PRESETS
from lib.spec import validate_spec

PRESET_SPECS = {name: preset.spec for name, preset in PRESETS.items()}


def test_hostile_links_are_the_same_for_a_seed_and_cover_every_parameter():
    links = hostile_links.hostile_links(200, seed=18)
    assert links == hostile_links.hostile_links(200, seed=18)
    assert links != hostile_links.hostile_links(200, seed=19)
    assert len(links) == 200 and all(1 <= len(link) <= 8 for link in links)
    assert set(KNOWN_PARAMS) <= {name for link in links for name in link}
    assert any(isinstance(value, list) for link in links for value in link.values())  # repeated parameters
    assert any(len(value) >= 5000 for link in links for value in link.values() if isinstance(value, str))
    for link in links:
        result = read_link(link, ServerLimits(), ["cpu:0"], PRESET_SPECS, "fashion-seed")
        validate_spec(result.spec, ServerLimits())
        assert result.notices


def test_normal_links_are_valid_and_give_no_notice():
    for link in hostile_links.normal_links(50, seed=18):
        assert spec_from_query_params(link, ServerLimits())[1] == []
        assert hostile_links.page_url("http://127.0.0.1:1/", link).startswith("http://127.0.0.1:1/build?dataset=")


def test_page_url_repeats_a_listed_parameter():
    assert hostile_links.page_url("http://h", {"epochs": ["1", "2"], "x": "[a](b)"}) == (
        "http://h/build?epochs=1&epochs=2&x=%5Ba%5D%28b%29"
    )


def test_command_line():
    args = hostile_links.parse_args(["--count", "60", "--json", "out.json"])
    assert (args.count, args.seed, args.url, str(args.json)) == (60, hostile_links.DEFAULT_SEED, None, "out.json")
    assert hostile_links.parse_args([]).count == hostile_links.DEFAULT_COUNT
    for bad in (["--count", "0"], ["--pid", "5"], ["--count", "many"]):
        with pytest.raises(SystemExit):
            hostile_links.parse_args(bad)


def test_summary_of_durations():
    assert hostile_links.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "p90": 3.0, "max": 3.0}
    assert hostile_links.summary([]) == {"median": None, "p90": None, "max": None}
