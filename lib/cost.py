"""What a run costs: a price per hour per kind of device, times how long the run held it.

Max Woolf's CPU-vs-GPU benchmark showed cost per run from hourly prices, and found CPUs winning on cost for
small models; this module does the same with the runs stored here. Prices are a server setting
(`GPUX_PRICE_CPU_PER_HOUR`, `GPUX_PRICE_GPU_PER_HOUR`, in the currency of `GPUX_PRICE_CURRENCY`) that each
user may change on the Results page; without a setting the app uses `EXAMPLE_PRICES`, and says they are
examples. A "gpu:all" run holds every GPU it trained on: its price is the GPU price times its replicas.

Costs are of the training time the run measured (its epochs: what `total_s` counts), not of the machine's
idle hours, and are shown relative to the cheapest run compared.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from lib.comparison import run_names
from lib.formatting import DASH
from lib.parallel import device_kind

DEVICE_KINDS = ("cpu", "gpu")  # what a price is per: the part of a device name before ":"
PRICE_ENV = {kind: f"GPUX_PRICE_{kind.upper()}_PER_HOUR" for kind in DEVICE_KINDS}  # server settings
CURRENCY_ENV = "GPUX_PRICE_CURRENCY"
DEFAULT_CURRENCY = "USD"
# Examples until the server's owner or the user sets theirs: a cloud VM's few vCPUs, one data-centre GPU.
EXAMPLE_PRICES = {"cpu": 0.10, "gpu": 2.50}
MAX_PRICE_PER_HOUR = 1_000_000.0  # a larger price is a typo
MAX_CURRENCY_CHARS = 8  # "USD", "EUR", "credits"
COST_COLUMNS = ("series", "device", "total_s", "price_per_hour", "cost", "times_cheapest")


class PriceConfigError(ValueError):
    """A price setting is not a number from 0 to `MAX_PRICE_PER_HOUR`."""


@dataclass(frozen=True)
class DevicePrices:
    """Prices per hour of each kind of device, and where they came from."""

    per_hour: Mapping[str, float]  # device kind ("cpu", "gpu") -> price per hour
    currency: str = DEFAULT_CURRENCY
    source: str = "example"  # "example" (`EXAMPLE_PRICES`), "server" (its settings) or "yours" (changed here)

    def for_device(self, device: str, replicas: int = 1) -> float | None:
        """The price per hour of one run's devices: a kind's price, times the replicas of a data-parallel run.

        Args:
            device: A device name, "cpu:0", "gpu:all".
            replicas: Devices that trained together.

        Returns:
            The price, or None for a kind without one.
        """
        price = self.per_hour.get(device_kind(device))
        return None if price is None else price * max(int(replicas), 1)

    def to_dict(self) -> dict[str, Any]:
        """The prices as JSON-ready plain data: per_hour, currency, source."""
        return {"per_hour": dict(self.per_hour), "currency": self.currency, "source": self.source}

    def with_price(self, kind: str, price: float) -> DevicePrices:
        """The same prices with one kind's changed by the user (`source` "yours")."""
        return replace(self, per_hour={**self.per_hour, kind: check_price(price, kind)}, source="yours")


def check_price(value: Any, kind: str) -> float:
    """A price per hour as a float from 0 to `MAX_PRICE_PER_HOUR`.

    Raises:
        PriceConfigError: Not a finite number in range; the message names the kind and the bounds.
    """
    try:
        price = float(value)
    except (TypeError, ValueError):
        price = math.nan
    if not (math.isfinite(price) and 0 <= price <= MAX_PRICE_PER_HOUR):
        raise PriceConfigError(
            f"The {kind.upper()} price per hour must be a number from 0 to {MAX_PRICE_PER_HOUR:,.0f}, "
            f"not {str(value)[:24]!r}."
        )
    return price


def load_prices(environ: Mapping[str, str] | None = None) -> DevicePrices:
    """The server's prices: its settings where set, `EXAMPLE_PRICES` otherwise.

    Args:
        environ: The environment to read; `os.environ` when None.

    Raises:
        PriceConfigError: A setting is not a price (the server's owner fixes it; the message names it).
    """
    environ = os.environ if environ is None else environ
    set_here = {kind: environ[name] for kind, name in PRICE_ENV.items() if environ.get(name, "").strip()}
    prices = dict(EXAMPLE_PRICES)
    for kind, text in set_here.items():
        try:
            prices[kind] = check_price(text.strip(), kind)
        except PriceConfigError as error:
            raise PriceConfigError(f"{PRICE_ENV[kind]}: {error}") from error
    currency = environ.get(CURRENCY_ENV, "").strip()[:MAX_CURRENCY_CHARS] or DEFAULT_CURRENCY
    return DevicePrices(prices, currency, "server" if set_here else "example")


def run_cost(total_s: float | None, price_per_hour: float | None) -> float | None:
    """What `total_s` seconds of devices priced `price_per_hour` cost; None when either is unknown."""
    if total_s is None or price_per_hour is None or not math.isfinite(total_s):
        return None
    return total_s / 3600.0 * price_per_hour


def cost_frame(runs: pd.DataFrame, prices: DevicePrices, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Each compared run's cost, and how many times the cheapest run's it is.

    Args:
        runs: Compared runs as `RunStore.runs()` gives them (device, total_s, result), named by what differs
            (`lib.comparison.run_names`) as the charts name them.
        prices: The prices in force.
        names: Each run's name, when the caller has them (`lib.comparison.run_names` of `runs` otherwise).

    Returns:
        Columns `COST_COLUMNS`, one row per run with a training time; `times_cheapest` is 1 for the cheapest
        run and NaN where a cost is unknown (a kind without a price).
    """
    if runs.empty:
        return pd.DataFrame(columns=list(COST_COLUMNS))
    frame = pd.DataFrame(
        {
            "series": run_names(runs) if names is None else list(names),
            "device": runs["device"].astype(str).to_list(),
            "total_s": runs["total_s"].astype(float).to_list(),
            "replicas": [_replicas(result) for result in runs.get("result", pd.Series([None] * len(runs)))],
        }
    )
    frame = frame[frame["total_s"].notna()].reset_index(drop=True)
    frame["price_per_hour"] = [
        prices.for_device(device, replicas) for device, replicas in zip(frame["device"], frame["replicas"], strict=True)
    ]
    frame["cost"] = [
        run_cost(total, price) for total, price in zip(frame["total_s"], frame["price_per_hour"], strict=True)
    ]
    frame["cost"] = frame["cost"].astype(float)
    cheapest = frame["cost"][frame["cost"] > 0].min()
    frame["times_cheapest"] = frame["cost"] / cheapest if pd.notna(cheapest) else math.nan
    return frame.loc[:, list(COST_COLUMNS)]


def _replicas(result: Any) -> int:
    """Devices a stored run trained on together (its result's `replicas`; 1 when unknown)."""
    replicas = result.get("replicas") if isinstance(result, Mapping) else None
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas > 0 else 1


def format_cost(cost: float | None, currency: str) -> str:
    """A cost as people read it: "0.0042 USD" (three significant figures), a dash when unknown."""
    if cost is None or not math.isfinite(cost):
        return DASH
    return f"{cost:.3g} {currency}"


def cost_caption(costs: pd.DataFrame, prices: DevicePrices) -> str:
    """Which compared run is cheapest and how many times dearer the others are, and where the prices came from.

    Args:
        costs: `cost_frame` output.
        prices: The prices the costs used.
    """
    known = costs[costs["cost"].notna()]
    if known.empty:
        return "No compared run has a training time, so there is nothing to price."
    cheapest = known.loc[known["cost"].idxmin()]
    dearest = known.loc[known["cost"].idxmax()]
    text = f"Cheapest: {cheapest['series']}, {format_cost(cheapest['cost'], prices.currency)} for its training."
    if dearest["series"] != cheapest["series"] and dearest["times_cheapest"] > 1:
        text += f" Dearest: {dearest['series']}, {dearest['times_cheapest']:.1f}x that."
    return f"{text} {prices_text(prices)}"


def prices_text(prices: DevicePrices) -> str:
    """Where the prices come from, and what they are, in one sentence."""
    listed = ", ".join(f"{kind.upper()} {price:g} {prices.currency}/h" for kind, price in prices.per_hour.items())
    origin = {
        "example": "example prices (this server sets none; change them above)",
        "server": "this server's prices",
        "yours": "your prices",
    }[prices.source]
    return f"Priced at {listed}: {origin}; a run's cost is its training time at that price."
