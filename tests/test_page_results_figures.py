"""AppTest of the Results page's figures beside the timings: what each run costs, and the energy it used."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib.device_run import DeviceRun
from lib.presets import PRESETS
from lib.store import RunStore
from tests.conftest import REPO_ROOT
from tests.test_page_results import open_results
from ui.cost import server_prices
from ui.keys import price_key

APP = str(REPO_ROOT / "streamlit_app.py")


def timed_run(device: str, epoch_s: list[float]) -> DeviceRun:
    run = DeviceRun(device, "jax", synthetic=False, num_train=6000)
    run.set_epoch_times(epoch_s)
    return run


def cost_caption(at: AppTest) -> str:
    return next(caption.value for caption in at.caption if caption.value.startswith("Cheapest:"))


def test_a_cpu_and_gpu_job_is_priced_at_the_example_prices_then_at_the_users(runs_db, monkeypatch):
    for name in ("GPUX_PRICE_CPU_PER_HOUR", "GPUX_PRICE_GPU_PER_HOUR", "GPUX_PRICE_CURRENCY"):
        monkeypatch.delenv(name, raising=False)
    server_prices.clear()  # read once per server process: this test's server starts now
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    store.record(seed, timed_run("cpu:0", [40.0, 30.0, 30.0]), preset="fashion-seed", job_id="job-a")  # 100 s
    store.record(seed, timed_run("gpu:0", [4.0, 3.0, 3.0]), preset="fashion-seed", job_id="job-a")  # 10 s

    at = open_results()
    # Example prices: CPU 0.10/h for 100 s = 0.00278; GPU 2.50/h for 10 s = 0.00694: the CPU is cheaper.
    assert cost_caption(at).startswith("Cheapest: cpu:0, 0.00278 USD for its training. Dearest: gpu:0, 2.5x that.")
    assert "example prices" in cost_caption(at)

    at.number_input(key=price_key("gpu")).set_value(0.5).run()
    assert not at.exception
    assert cost_caption(at).startswith("Cheapest: gpu:0, 0.00139 USD")
    assert "your prices" in cost_caption(at)


def test_a_wrong_price_setting_says_so_and_the_rest_of_the_page_stays(runs_db, monkeypatch):
    monkeypatch.setenv("GPUX_PRICE_GPU_PER_HOUR", "lots")
    server_prices.clear()
    RunStore().record(PRESETS["fashion-seed"].spec, timed_run("cpu:0", [2.0, 1.0]), job_id="job-b")

    at = open_results()

    assert any("GPUX_PRICE_GPU_PER_HOUR" in error.value for error in at.error)
    assert at.get("vega_lite_chart")
    server_prices.clear()


def test_energy_shows_each_runs_reading_and_says_which_were_not_measured(runs_db):
    store = RunStore()
    seed = PRESETS["fashion-seed"].spec
    gpu = timed_run("gpu:0", [4.0, 3.0, 3.0])
    gpu.set_energy(
        {
            "energy_method": "nvml energy counter",
            "energy_j": 1359.6,
            "energy_epoch_j": [700.0, 330.0, 329.6],
            "energy_above_idle_j": 63.9,
            "idle_w": 119.5,
            "energy_note": "Measured with the NVIDIA driver's total-energy counter of the GPU (NVML).",
        }
    )
    cpu = timed_run("cpu:0", [40.0, 30.0, 30.0])
    cpu.set_energy({"energy_method": "not measured", "energy_note": "not measured on this server: no RAPL here."})
    store.record(seed, cpu, preset="fashion-seed", job_id="job-e")
    store.record(seed, gpu, preset="fashion-seed", job_id="job-e")

    at = open_results()

    table = next(frame.value for frame in at.dataframe if "Energy (J)" in frame.value.columns)
    assert list(table["Device"]) == ["cpu:0", "gpu:0"]
    assert pd.isna(table["Energy (J)"][0]) and table["Energy (J)"][1] == 1359.6
    assert table["Per later epoch (J)"][1] == pytest.approx(329.8)
    assert table["How"][0] == "not measured on this server: no RAPL here."
    caption = next(caption.value for caption in at.caption if caption.value.startswith("Least energy"))
    assert caption == "Least energy: gpu:0, 1,360 J for its epochs (idle draw included). Not measured: cpu:0 (see How)."
