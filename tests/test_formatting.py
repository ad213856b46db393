"""People-facing number formats: durations, byte counts, metric prefixes."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lib.formatting import DASH, format_bytes, format_count, format_seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4123, "0.412 s"),
        (4.2, "4.20 s"),
        (12.34, "12.3 s"),
        (245.0, "4 min 05 s"),
        (3720.0, "1 h 02 min"),
        (None, DASH),
        (math.nan, DASH),
        (math.inf, DASH),
        (pd.NA, DASH),
    ],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_format_bytes_uses_binary_units():
    assert format_bytes(None) == "unknown"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(int(15.6 * 2**30)) == "15.6 GiB"


def test_format_count_uses_metric_prefixes():
    assert format_count(999) == "999"
    assert format_count(1234) == "1.23 k"
    assert format_count(3.1e9, "FLOP") == "3.10 GFLOP"
