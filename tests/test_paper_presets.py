"""Every task's ``paper`` preset end to end on CPU, on its real-format fixture (the task's
``fixture``), with size overrides only (bench/paper_preset.py): the path a GPU user runs,
exercised here (and by ``make gpu-check`` on CUDA)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.config import read_preset
from bench.paper_preset import paper_args
from bench.registry import tasks


@pytest.mark.parametrize("task", sorted(tasks()))
def test_a_paper_preset_that_reads_data_has_a_fixture(task: str) -> None:
    data = read_preset(task, "paper").get("data") or {}
    assert tasks()[task].fixture or "root" not in data, f"{task}: data.root but no Task.fixture"


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(tasks()))
def test_paper_preset_runs_end_to_end(task: str, bench_run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    args = paper_args(task, tmp_path / "data")
    method = tasks()[task].methods[0].name
    code, record = bench_run(task, f"method={method}", *args)
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert record["preset"] == "paper"
    assert record["metrics"] and all(v is not None and math.isfinite(v) for v in record["metrics"].values())
