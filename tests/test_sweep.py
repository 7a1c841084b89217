from __future__ import annotations

from pathlib import Path

import pytest

from bench import records
from bench.errors import BenchError
from bench.sweep import expand, sweep


def test_expand_is_the_spec_grid_narrowed_by_the_cli() -> None:
    runs = expand("emo", ["preset=smoke"])
    assert len(runs) == 6 * 3 and ["preset=smoke", "logger=csv", "method=emo_1m", "seed=0"] in runs
    assert expand("emo", ["preset=smoke", "optim.lr=0.1"], methods="emo_5m", seeds="7") == [
        ["preset=smoke", "logger=csv", "method=emo_5m", "seed=7", "optim.lr=0.1"]
    ]


def test_bad_sweep_is_refused_before_any_run() -> None:
    with pytest.raises(BenchError, match="unknown method"):
        expand("emo", [], methods="emo_1m,nope")
    with pytest.raises(BenchError, match="did you mean optim.lr"):
        expand("emo", ["optim.lrr=1"])


def test_local_sweep_writes_one_record_per_run(runs_dir: Path) -> None:
    assert sweep("emo", ["preset=smoke"], "mobilenetv2", "0,1", None, 2, False) == 0
    found = [rec for _, rec in records.find([runs_dir])]
    assert sorted(r["seed"] for r in found) == [0, 1] and all(r["status"] == "ok" for r in found)
