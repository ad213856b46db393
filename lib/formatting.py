"""Numbers as people read them: durations, byte counts and large counts with metric prefixes.

Every page, caption and CLI line formats these the same way through this module. It imports nothing
but the standard library, so any module may use it.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "—"  # what a missing value reads as


def format_seconds(seconds: Any) -> str:
    """Formats a duration for people: "0.412 s", "4.20 s", "12.3 s", "4 min 05 s", "1 h 02 min".

    Args:
        seconds: A number of seconds; None, NaN, infinity or pandas' NA reads as a dash.
    """
    value = _number_or_none(seconds)
    if value is None:
        return DASH
    if value < 1:
        return f"{value:.3f} s"
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours} h {rest // 60:02d} min"


def format_bytes(size: int | None) -> str:
    """Formats a byte count in binary units, e.g. "15.6 GiB"; "unknown" for None.

    Args:
        size: A number of bytes, or None.
    """
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_count(value: float, unit: str = "") -> str:
    """Formats a large number with a metric prefix: 1234 -> "1.23 k", 3.1e9 FLOP -> "3.10 GFLOP"."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}".rstrip()
    return f"{value:,.0f} {unit}".rstrip()


def _number_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):  # None, pandas NA, text
        return None
    return number if math.isfinite(number) else None
