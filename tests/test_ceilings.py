"""Tests of the matrix-product ceilings (lib.ceilings): FLOP/s arithmetic, size choice, real small products."""

from __future__ import annotations

import pytest

from lib import ceilings
from lib.ceilings import Ceiling, CeilingError


def fake_timer(seconds_per_flop: dict[str, float]):
    """A timer whose product takes a fixed time per FLOP for each precision, and records its calls."""
    calls = []

    def timer_for(backend, device):
        def time_products(n, precision, count):
            calls.append((n, precision, count))
            return [ceilings.matmul_flops(n) * seconds_per_flop[precision]] * count

        return time_products

    return timer_for, calls


def test_matmul_flops_counts_a_multiply_and_an_add_per_term():
    assert ceilings.matmul_flops(4096) == 2 * 4096**3
    assert ceilings.matmul_flops(8192) == pytest.approx(1.0995e12, rel=1e-4)


def test_flops_per_second_is_product_flops_over_median_time(monkeypatch):
    timer_for, calls = fake_timer({"float32 strict": 1 / 51e12, "tf32": 1 / 402e12, "bfloat16": 1 / 774e12})
    monkeypatch.setattr(ceilings, "_timer_for", timer_for)
    measured = ceilings.measure_ceilings("gpu:0", backend="jax")
    assert [c.precision for c in measured] == ["float32 strict", "tf32", "bfloat16"]
    assert [c.n for c in measured] == [8192, 8192, 8192]
    assert [c.flops_per_s for c in measured] == pytest.approx([51e12, 402e12, 774e12])
    assert measured[1].seconds == pytest.approx(2 * 8192**3 / 402e12)
    # Warm-up products are run but not timed into the median.
    assert calls[0] == (8192, "float32 strict", ceilings.WARMUP_PRODUCTS + ceilings.REPEATS["gpu"])


def test_cpu_measures_fp32_and_bf16_at_4096(monkeypatch):
    timer_for, calls = fake_timer({"float32 strict": 1 / 400e9, "bfloat16": 1 / 800e9})
    monkeypatch.setattr(ceilings, "_timer_for", timer_for)
    measured = ceilings.measure_ceilings("cpu:0", backend="tensorflow")
    assert [(c.precision, c.n, c.note) for c in measured] == [("float32 strict", 4096, ""), ("bfloat16", 4096, "")]
    assert measured[1].flops_per_s == pytest.approx(800e9)


def test_slow_cpu_bf16_is_measured_at_a_smaller_size(monkeypatch):
    # 1 GFLOP/s: a 4096 product would take 137 s, so n is halved until one fits the budget (5 s -> n=1024).
    timer_for, _ = fake_timer({"float32 strict": 1 / 400e9, "bfloat16": 1 / 1e9})
    monkeypatch.setattr(ceilings, "_timer_for", timer_for)
    bf16 = ceilings.measure_ceilings("cpu:0", backend="torch")[1]
    assert bf16.n == 1024
    assert ceilings.matmul_flops(bf16.n) / 1e9 <= ceilings.CPU_BF16_BUDGET_S
    assert "measured at n=1024" in bf16.note
    assert bf16.flops_per_s == pytest.approx(1e9)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_real_small_products_on_the_cpu(backend):
    measured = ceilings.measure_ceilings("cpu:0", 256, backend=backend, precisions=["float32 strict"], repeats=2)
    assert len(measured) == 1
    ceiling = measured[0]
    assert (ceiling.device, ceiling.precision, ceiling.n, ceiling.backend) == ("cpu:0", "float32 strict", 256, backend)
    assert ceiling.seconds > 0
    assert ceiling.flops_per_s == pytest.approx(2 * 256**3 / ceiling.seconds)


@pytest.mark.parametrize(
    ("device", "kwargs", "message"),
    [
        ("cpu:0", {"precisions": ["tf32"]}, "NVIDIA GPUs only"),
        ("cpu:0", {"precisions": ["float16"]}, "Unknown precision"),
        ("cpu:0", {"n": 64}, "too small"),
        ("tpu:0", {}, "not a normalised device name"),
        ("cpu:0", {"backend": "mxnet"}, "Unknown backend"),
    ],
)
def test_bad_requests_raise_with_the_fix(device, kwargs, message):
    with pytest.raises(CeilingError, match=message):
        ceilings.measure_ceilings(device, **kwargs)


def test_find_ceiling_returns_the_fastest_match():
    measured = [
        Ceiling("gpu:0", "tf32", 8192, 0.003, 380e12, backend="jax"),
        Ceiling("gpu:0", "tf32", 8192, 0.0027, 402e12, backend="torch"),
        Ceiling("gpu:1", "tf32", 8192, 0.001, 999e12),
    ]
    assert ceilings.find_ceiling(measured, "gpu:0", "tf32").backend == "torch"
    assert ceilings.find_ceiling(measured, "gpu:0", "bfloat16") is None


def test_ceiling_round_trips_through_plain_data():
    ceiling = Ceiling("cpu:0", "bfloat16", 1024, 0.5, 4.3e9, backend="torch", note="slow")
    assert Ceiling.from_dict({**ceiling.to_dict(), "unknown": 1}) == ceiling
