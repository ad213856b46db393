"""Tests of lib.matmul (timed matrix products) and the "What is a GPU?" charts in lib.charts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from lib import matmul
from lib.ceilings import matmul_flops
from lib.charts import matmul_gflops_chart, matmul_time_chart
from lib.devices import DeviceNotFoundError
from lib.limits import ServerLimits
from lib.matmul import (
    DTYPES,
    DeviceOutOfMemoryError,
    MatmulDtypeError,
    MatmulSizeError,
    MatmulTiming,
    crossover_size,
    gflops_per_second,
    matmul_sizes,
    speedup_at_largest,
    sweep,
    time_matmul,
    validate_size,
)
from tests.conftest import REPO_ROOT

SMALL = ServerLimits(matmul_n=128)  # keeps every real product in these tests tiny


def timings_frame(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    """A frame shaped like `sweep` output from (device, n, seconds) triples."""
    return pd.DataFrame(
        [
            {
                "device": device,
                "n": n,
                "dtype": "float32",
                "seconds": seconds,
                "gflops_per_s": gflops_per_second(n, seconds),
                "repeats": 3,
            }
            for device, n, seconds in rows
        ]
    )


def test_time_matmul_on_cpu_is_positive_and_consistent():
    timing = time_matmul("CPU", 64, repeats=2, limits=SMALL)
    assert isinstance(timing, MatmulTiming)
    assert (timing.device, timing.n, timing.dtype, timing.repeats) == ("cpu:0", 64, "float32", 2)
    assert timing.seconds > 0
    assert timing.gflops_per_s == pytest.approx(2 * 64**3 / timing.seconds / 1e9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_offered_dtype_runs_on_cpu(dtype):
    timing = time_matmul("cpu:0", 16, repeats=1, dtype=dtype, limits=SMALL)
    assert timing.dtype == dtype
    assert timing.seconds > 0


def test_flops_arithmetic():
    assert matmul_flops(1000) == 2_000_000_000
    assert gflops_per_second(1000, 2.0) == pytest.approx(1.0)
    assert gflops_per_second(4096, 0.5) == pytest.approx(2 * 4096**3 / 0.5 / 1e9)


def test_sizes_are_powers_of_two_capped_by_the_limit():
    assert matmul_sizes(4096, limits=ServerLimits(matmul_n=1000)) == [16, 32, 64, 128, 256, 512]
    assert matmul_sizes(100, limits=ServerLimits(matmul_n=4096)) == [16, 32, 64]
    assert matmul_sizes(4096, min_n=1024, limits=ServerLimits(matmul_n=4096)) == [1024, 2048, 4096]
    assert matmul_sizes(4096, limits=ServerLimits(matmul_n=10)) == [8]
    assert matmul_sizes(0, limits=SMALL) == []


def test_sizes_default_to_the_environment_limit(monkeypatch):
    monkeypatch.setenv("GPUX_MAX_MATMUL_N", "256")
    assert matmul_sizes(10_000)[-1] == 256


def test_size_above_limit_is_refused_with_the_fix():
    with pytest.raises(MatmulSizeError, match=r"N=129 exceeds this server's limit of 128.*GPUX_MAX_MATMUL_N"):
        time_matmul("cpu", 129, limits=SMALL)


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "64"])
def test_non_positive_or_non_integer_sizes_are_refused(bad):
    with pytest.raises(MatmulSizeError, match="not a positive integer"):
        validate_size(bad, SMALL)


def test_unsupported_dtype_is_refused():
    with pytest.raises(MatmulDtypeError, match="choose one of float32"):
        time_matmul("cpu", 16, dtype="float64", limits=SMALL)


def test_absent_device_is_refused():
    with pytest.raises(DeviceNotFoundError, match="Present devices: cpu:0"):
        time_matmul("gpu:7", 16, limits=SMALL, available=["cpu:0"])


def test_out_of_memory_becomes_a_clear_error(monkeypatch):
    def exhausted(*args):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 68719476736 bytes.")

    monkeypatch.setattr(matmul, "_timed_products", exhausted)
    with pytest.raises(DeviceOutOfMemoryError, match="cpu:0 ran out of memory.*choose a smaller N"):
        time_matmul("cpu", 64, limits=SMALL)


def test_other_backend_errors_are_not_hidden(monkeypatch):
    def broken(*args):
        raise RuntimeError("cuBLAS failed")

    monkeypatch.setattr(matmul, "_timed_products", broken)
    with pytest.raises(RuntimeError, match="cuBLAS failed"):
        time_matmul("cpu", 64, limits=SMALL)


def test_sweep_is_tidy_and_reports_progress():
    seen = []
    df = sweep(["cpu"], [16, 32], repeats=1, limits=SMALL, on_timing=seen.append)
    assert list(df.columns) == ["device", "n", "dtype", "seconds", "gflops_per_s", "repeats"]
    assert df[["device", "n"]].to_dict("records") == [{"device": "cpu:0", "n": 16}, {"device": "cpu:0", "n": 32}]
    assert (df["seconds"] > 0).all()
    assert [timing.n for timing in seen] == [16, 32]


def test_sweep_checks_every_size_before_any_work():
    seen = []
    with pytest.raises(MatmulSizeError):
        sweep(["cpu"], [16, 256], repeats=1, limits=SMALL, on_timing=seen.append)
    assert seen == []


def test_crossover_is_where_the_gpu_stays_faster():
    df = timings_frame(
        [
            ("cpu:0", 16, 1e-5),
            ("gpu:0", 16, 5e-5),
            ("cpu:0", 64, 1e-4),
            ("gpu:0", 64, 6e-5),
            ("cpu:0", 256, 3e-3),
            ("gpu:0", 256, 1e-4),
        ]
    )
    assert crossover_size(df) == 64
    assert speedup_at_largest(df) == pytest.approx(30.0)


def test_crossover_ignores_a_noisy_early_win():
    df = timings_frame(
        [
            ("cpu:0", 16, 2e-5),
            ("gpu:0", 16, 1e-5),
            ("cpu:0", 32, 1e-5),
            ("gpu:0", 32, 5e-5),
            ("cpu:0", 64, 1e-3),
            ("gpu:0", 64, 1e-4),
        ]
    )
    assert crossover_size(df) == 64


def test_crossover_compares_the_fastest_of_each_kind():
    df = timings_frame(
        [
            ("cpu:0", 128, 1e-3),
            ("gpu:0", 128, 2e-3),
            ("gpu:1", 128, 5e-4),
        ]
    )
    assert crossover_size(df) == 128
    assert speedup_at_largest(df) == pytest.approx(2.0)


def test_no_crossover_when_gpu_never_wins_or_is_absent():
    never = timings_frame([("cpu:0", 16, 1e-5), ("gpu:0", 16, 1e-4), ("cpu:0", 32, 2e-5), ("gpu:0", 32, 1e-4)])
    assert crossover_size(never) is None
    cpu_only = timings_frame([("cpu:0", 16, 1e-5), ("cpu:0", 32, 2e-5)])
    assert crossover_size(cpu_only) is None
    assert speedup_at_largest(cpu_only) is None
    assert crossover_size(timings_frame([])) is None


def test_matmul_under_jax_backend_in_subprocess():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    command = [sys.executable, "-m", "tests.helpers.fresh_reports", "matmul"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    assert timing["device"] == "cpu:0"
    assert timing["seconds"] > 0


@pytest.mark.parametrize(
    ("build", "field", "title_word"),
    [(matmul_time_chart, "seconds", "(s"), (matmul_gflops_chart, "gflops_per_s", "GFLOP/s")],
)
def test_matmul_charts_are_log_log_lines_per_device(build, field, title_word):
    df = timings_frame([("cpu:0", 16, 1e-5), ("cpu:0", 32, 3e-5), ("gpu:0", 16, 5e-5), ("gpu:0", 32, 5e-5)])
    spec = build(df).to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["mark"]["point"] is True
    encoding = spec["encoding"]
    assert encoding["x"]["field"] == "n"
    assert encoding["x"]["scale"] == {"type": "log", "base": 2}
    assert "N" in encoding["x"]["title"]
    assert encoding["y"]["field"] == field
    assert encoding["y"]["scale"]["type"] == "log"
    assert title_word in encoding["y"]["title"]
    assert encoding["color"]["field"] == "device"
    assert encoding["color"]["scale"]["scheme"] == "tableau10"
    tooltip_fields = {tooltip["field"] for tooltip in encoding["tooltip"]}
    assert {"device", "n", "seconds", "gflops_per_s"} <= tooltip_fields
    values = next(iter(spec["datasets"].values()))
    assert len(values) == 4
