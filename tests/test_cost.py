"""lib.cost: prices per hour per kind of device, each compared run's cost, and the cheapest."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.cost import (
    EXAMPLE_PRICES,
    MAX_PRICE_PER_HOUR,
    DevicePrices,
    PriceConfigError,
    check_price,
    cost_caption,
    cost_frame,
    format_cost,
    load_prices,
    run_cost,
)

PRICES = DevicePrices({"cpu": 0.36, "gpu": 3.6}, "USD", "server")


def runs(*rows: tuple[str, float | None, int]) -> pd.DataFrame:
    """Stored-run rows of one model on several devices: (device, total_s, replicas)."""
    return pd.DataFrame(
        {
            "id": list(range(1, len(rows) + 1)),
            "device": [device for device, _, _ in rows],
            "total_s": [total for _, total, _ in rows],
            "result": [{"replicas": replicas} for _, _, replicas in rows],
            "dataset": "fashion_mnist",
            "hidden_units": [[500] * 5] * len(rows),
            "batch_size": 32,
            "synthetic": False,
            "preset": "fashion-seed",
        }
    )


def test_without_settings_the_example_prices_are_used_and_said_to_be_examples():
    prices = load_prices({})

    assert prices.per_hour == EXAMPLE_PRICES and prices.source == "example" and prices.currency == "USD"


def test_the_servers_settings_win_and_a_bad_one_names_its_variable():
    prices = load_prices({"GPUX_PRICE_GPU_PER_HOUR": " 1.2 ", "GPUX_PRICE_CURRENCY": "EUR"})
    assert prices.per_hour["gpu"] == 1.2 and prices.per_hour["cpu"] == EXAMPLE_PRICES["cpu"]
    assert prices.source == "server" and prices.currency == "EUR"

    with pytest.raises(PriceConfigError, match="GPUX_PRICE_CPU_PER_HOUR: The CPU price per hour must be a number"):
        load_prices({"GPUX_PRICE_CPU_PER_HOUR": "cheap"})


@pytest.mark.parametrize("value", ["-1", "nan", "inf", str(MAX_PRICE_PER_HOUR * 2), None, "1e400"])
def test_a_price_out_of_range_is_refused(value):
    with pytest.raises(PriceConfigError):
        check_price(value, "gpu")


def test_a_data_parallel_run_pays_for_every_gpu_it_held():
    assert PRICES.for_device("gpu:all", replicas=4) == pytest.approx(14.4)
    assert PRICES.for_device("GPU:0") == 3.6 and PRICES.for_device("tpu:0") is None


def test_each_run_costs_its_training_time_at_its_price_relative_to_the_cheapest():
    costs = cost_frame(runs(("cpu:0", 100.0, 1), ("gpu:0", 20.0, 1), ("gpu:all", 8.0, 2), ("cpu:0", None, 1)), PRICES)

    assert list(costs["device"]) == ["cpu:0", "gpu:0", "gpu:all"]  # the run without a time is left out
    assert list(costs["cost"]) == pytest.approx([0.01, 0.02, 0.016])
    assert list(costs["times_cheapest"]) == pytest.approx([1.0, 2.0, 1.6])


def test_the_caption_names_the_cheapest_and_the_dearest_and_where_prices_come_from():
    prices = PRICES.with_price("gpu", 0.36)  # a cheap GPU: now it wins on cost too
    costs = cost_frame(runs(("cpu:0", 100.0, 1), ("gpu:0", 20.0, 1)), prices)

    caption = cost_caption(costs, prices)

    assert caption.startswith("Cheapest: gpu:0, 0.002 USD for its training. Dearest: cpu:0, 5.0x that.")
    assert "your prices" in caption and prices.source == "yours"


def test_a_kind_without_a_price_has_no_cost_and_no_ratio():
    costs = cost_frame(runs(("cpu:0", 100.0, 1), ("gpu:0", 20.0, 1)), DevicePrices({"cpu": 0.36}))

    assert math.isnan(costs["cost"].iloc[1]) and math.isnan(costs["times_cheapest"].iloc[1])
    assert format_cost(costs["cost"].iloc[1], "USD") == "—"


@given(st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=MAX_PRICE_PER_HOUR))
def test_cost_is_linear_in_time_and_price(seconds, price):
    assert run_cost(seconds, price) == pytest.approx(seconds * price / 3600.0)
    assert run_cost(None, price) is None and run_cost(seconds, None) is None
