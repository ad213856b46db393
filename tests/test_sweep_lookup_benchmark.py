"""Tests of benchmarks/sweep_lookup.py: its store of jobs, both lookups, and its table."""

from __future__ import annotations

import sys

from benchmarks import sweep_lookup
from lib.store import RunStore


def test_both_lookups_find_the_newest_finished_sweep(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    sweep_lookup.fill(store, 45, sweep_every=20)  # sweeps are jobs 0, 20 and 40

    assert sweep_lookup.decode_every_job(store) == store.latest_sweep_id() == f"{40:012x}"


def test_the_script_prints_one_row_per_store_size(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["sweep_lookup.py", "--jobs", "30", "60", "--repeats", "1"])
    sweep_lookup.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "x |" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| 30", "| 60"]
