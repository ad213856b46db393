"""Repeats: a job that trains each device N times (`JobRequest.repeats`), and the median and spread it shows.

MLPerf Training runs each result several times and drops the fastest and the slowest; a single timing hides
how much the next run would differ. Each repeat trains with its own seed (`lib.jobs.RunPoint.spec`), so the
spread includes the training's own variation as well as the machine's. With at least `TRIM_FROM` runs the
fastest and the slowest are dropped before the median and the range are taken, and the results say so.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lib.formatting import format_seconds

TRIM_FROM = 5  # with this many runs or more, the fastest and the slowest are dropped (as MLPerf does)
SPREAD_COLUMNS = ("job_id", "device", "runs", "kept", "median_s", "low_s", "high_s", "spread_pct", "trimmed")
REPEAT_POINT_COLUMNS = ("job_id", "device", "repeat", "total_s", "kept")


def repeated_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of repeated jobs, one row per run: job, device, repeat number, total time, kept.

    Args:
        runs: Stored runs (`RunStore.runs()` rows: job_id, device, status, total_s, result).

    Returns:
        Columns `REPEAT_POINT_COLUMNS`; `kept` is False for the fastest and the slowest run of a group of at
        least `TRIM_FROM`, which the median and the range leave out.
    """
    if runs.empty or "result" not in runs:
        return pd.DataFrame(columns=list(REPEAT_POINT_COLUMNS))
    frame = pd.DataFrame(
        {
            "job_id": runs["job_id"].astype(str).to_list(),
            "device": runs["device"].astype(str).to_list(),
            "repeat": runs["result"].map(_repeat).to_list(),
            "total_s": runs["total_s"].astype(float).to_list(),
            "done": (runs["status"] == "done").to_list(),
        }
    )
    frame = frame[frame["done"] & frame["total_s"].notna() & (frame["repeat"] > 0)].drop(columns="done")
    frame = frame.reset_index(drop=True)
    frame["kept"] = True
    for _, group in frame.groupby(["job_id", "device"], sort=False):
        for index in _trimmed_away(group["total_s"]):
            frame.loc[index, "kept"] = False
    return frame.loc[:, list(REPEAT_POINT_COLUMNS)]


def spread_frame(points: pd.DataFrame) -> pd.DataFrame:
    """Each repeated device's median training time and range, over its kept runs.

    Args:
        points: `repeated_runs` output.

    Returns:
        Columns `SPREAD_COLUMNS`, one row per (job, device) with at least two finished runs; `spread_pct` is
        (high - low) / median in percent.
    """
    rows = []
    for (job_id, device), group in points.groupby(["job_id", "device"], sort=False):
        if len(group) < 2:
            continue
        kept = group.loc[group["kept"], "total_s"]
        median = statistics.median(kept)
        rows.append(
            {
                "job_id": job_id,
                "device": device,
                "runs": len(group),
                "kept": len(kept),
                "median_s": median,
                "low_s": kept.min(),
                "high_s": kept.max(),
                "spread_pct": 100.0 * (kept.max() - kept.min()) / median if median > 0 else float("nan"),
                "trimmed": len(kept) < len(group),
            }
        )
    return pd.DataFrame(rows, columns=list(SPREAD_COLUMNS))


def spread_text(row: Mapping[str, Any]) -> str:
    """One device's repeats in words: "median 4.20 s over 5 runs (4.11-4.31 s, 4.8 %; fastest and slowest dropped)"."""
    dropped = "; fastest and slowest dropped" if row["trimmed"] else ""
    return (
        f"median {format_seconds(row['median_s'])} over {row['runs']} runs "
        f"({format_seconds(row['low_s'])}-{format_seconds(row['high_s'])}, {row['spread_pct']:.1f} %{dropped})"
    )


def spread_caption(spreads: pd.DataFrame) -> str:
    """The repeated devices' medians and ranges, the widest named; empty without repeats."""
    if spreads.empty:
        return ""
    parts = [f"{row['device']}: {spread_text(row)}" for _, row in spreads.iterrows()]
    widest = spreads.loc[spreads["spread_pct"].idxmax()]
    return (
        "; ".join(parts) + f". The widest spread is {widest['device']}'s: a single run of it could be "
        f"{widest['spread_pct']:.0f} % off another, so compare medians."
    )


def _repeat(result: Any) -> int:
    """A stored run's repeat number (0: its job did not repeat)."""
    repeat = result.get("repeat") if isinstance(result, Mapping) else None
    return repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 0 else 0


def _trimmed_away(times: pd.Series) -> Sequence[Any]:
    """The index labels of the fastest and the slowest run, when there are at least `TRIM_FROM`."""
    if len(times) < TRIM_FROM:
        return ()
    return (times.idxmin(), times.idxmax())
