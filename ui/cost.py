"""Streamlit-side: "What it costs" on the Results page: each compared run's training time at a price per hour.

The server's prices (`lib.cost.load_prices`) are the starting values of one number input per kind of device
compared; what a user types is theirs alone (session state) and the caption says whose prices are in use.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from lib.cost import (
    MAX_PRICE_PER_HOUR,
    DevicePrices,
    PriceConfigError,
    cost_caption,
    cost_frame,
    load_prices,
)
from lib.parallel import device_kind
from ui.keys import Key, price_key


@st.cache_resource
def server_prices() -> DevicePrices | PriceConfigError:
    """The server's prices, read once per server process (or why its setting is not a price)."""
    try:
        return load_prices()
    except PriceConfigError as error:
        return error


def chosen_prices(server: DevicePrices, kinds: list[str]) -> DevicePrices:
    """One price input per kind compared; the prices with this user's changes."""
    prices = server
    columns = st.columns(len(kinds))
    for kind, column in zip(kinds, columns, strict=True):
        price = column.number_input(
            f"{kind.upper()} price per hour ({server.currency})",
            min_value=0.0,
            max_value=MAX_PRICE_PER_HOUR,
            value=float(server.per_hour.get(kind, 0.0)),
            step=0.05,
            format="%.2f",
            key=price_key(kind),
        )
        if price != server.per_hour.get(kind):
            prices = prices.with_price(kind, price)
    return prices


def draw_costs(compared: pd.DataFrame, names: Sequence[str]) -> None:
    """The compared runs' costs at the prices in force, with the cheapest named (`names`: the charts' names)."""
    server = server_prices()
    with st.container(border=True, key=Key.RESULTS_COSTS):
        st.markdown("**What it costs**")
        if isinstance(server, PriceConfigError):
            st.error(f"Costs cannot be shown: this server's price setting is wrong ({server}).")
            return
        kinds = sorted({device_kind(device) for device in compared["device"]})
        prices = chosen_prices(server, kinds)
        costs = cost_frame(compared, prices, names)
        st.dataframe(
            costs.rename(
                columns={
                    "series": "Run",
                    "device": "Device",
                    "total_s": "Training time (s)",
                    "price_per_hour": f"Price per hour ({prices.currency})",
                    "cost": f"Cost ({prices.currency})",
                    "times_cheapest": "x the cheapest",
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "Training time (s)": st.column_config.NumberColumn(format="%.2f"),
                f"Cost ({prices.currency})": st.column_config.NumberColumn(format="%.3g"),
                "x the cheapest": st.column_config.NumberColumn(format="%.1fx"),
            },
        )
        st.caption(cost_caption(costs, prices))
