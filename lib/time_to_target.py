"""Time to accuracy: how long a run took to reach a target test accuracy, as MLPerf Training scores it.

A job may set `JobRequest.target_accuracy`: each epoch then ends with an evaluation on the test samples
(its time counted in the epoch's), and a device stops once its test accuracy reaches the target
(`lib.engine.TargetStop`; the run keeps `held_out_accuracy`, `target_epoch` and `time_to_target_s`). This
module holds each dataset's default target and says what runs with a target show, in words and as a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lib.comparison import run_names
from lib.formatting import DASH, format_seconds

# The test accuracy the tutorial's models reach within their epochs (Fashion-MNIST: 5 x 500 relu, Adam,
# about 0.87 after 5 epochs; CIFAR-10: 3,000-1,000 relu, SGD 0.01, about 0.47 after 10): a target that
# a working run of the preset reaches, a few epochs in.
DEFAULT_TARGETS = {"fashion_mnist": 0.85, "cifar10": 0.45}
TARGET_COLUMNS = ("series", "device", "target", "reached", "epoch", "epochs_trained", "time_to_target_s", "text")


def default_target(dataset: str) -> float:
    """The target accuracy a run of `dataset` starts with (`DEFAULT_TARGETS`; 0.5 for a dataset without one)."""
    return DEFAULT_TARGETS.get(dataset, 0.5)


def target_text(result: Mapping[str, Any]) -> str:
    """One run's time to target in words: "38.2 s (epoch 3, test accuracy 85.6 %)", or that it was not reached.

    Args:
        result: A stored run's result (`DeviceRun.to_dict()`).

    Returns:
        The text; a dash for a run without a target.
    """
    target = result.get("target_accuracy")
    if target is None:
        return DASH
    seconds, epoch = result.get("time_to_target_s"), result.get("target_epoch")
    accuracies = result.get("held_out_accuracy") or []
    if seconds is None or epoch is None:
        trained = len(result.get("epoch_s") or [])
        best = max((a for a in accuracies if math.isfinite(a)), default=None)
        best_text = f", best {best:.1%}" if best is not None else ""
        return f"not reached in {trained} epoch{'s' if trained != 1 else ''}{best_text}"
    reached = accuracies[epoch - 1] if 0 < epoch <= len(accuracies) else None
    accuracy = f", test accuracy {reached:.1%}" if reached is not None else ""
    return f"{format_seconds(seconds)} (epoch {epoch}{accuracy})"


def target_frame(runs: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """The compared runs that had a target: each one's time to it, or that it was not reached.

    Args:
        runs: Stored runs (`RunStore.runs()` rows with `result`, `device`).
        names: Each run's name as the charts name it (`lib.comparison.run_names` of `runs` when None).

    Returns:
        Columns `TARGET_COLUMNS`, one row per run with a target, in the frame's order.
    """
    if runs.empty or "result" not in runs:
        return pd.DataFrame(columns=list(TARGET_COLUMNS))
    names = run_names(runs) if names is None else names
    rows = []
    for name, device, result in zip(names, runs["device"], runs["result"], strict=True):
        if not isinstance(result, Mapping) or result.get("target_accuracy") is None:
            continue
        rows.append(
            {
                "series": name,
                "device": str(device),
                "target": float(result["target_accuracy"]),
                "reached": result.get("time_to_target_s") is not None,
                "epoch": result.get("target_epoch"),
                "epochs_trained": len(result.get("epoch_s") or []),
                "time_to_target_s": result.get("time_to_target_s"),
                "text": target_text(result),
            }
        )
    return pd.DataFrame(rows, columns=list(TARGET_COLUMNS))


def target_caption(targets: pd.DataFrame) -> str:
    """Which run reached its target first, and which did not reach it at all.

    Args:
        targets: `target_frame` output.
    """
    if targets.empty:
        return ""
    reached = targets[targets["reached"]].sort_values("time_to_target_s")
    missed = targets[~targets["reached"]]
    parts = []
    if not reached.empty:
        first = reached.iloc[0]
        parts.append(
            f"First to {first['target']:.0%} test accuracy: {first['series']}, in {first['text']}; "
            "each epoch's time includes its evaluation on the test images."
        )
    if not missed.empty:
        names = ", ".join(f"{row.series} ({row.text})" for row in missed.itertuples())
        parts.append(f"Not reached: {names}.")
    return " ".join(parts)
