from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
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


def kill_when_started(pattern: str, stop: threading.Event) -> None:
    while not stop.is_set():
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        if found:
            os.kill(int(found[0]), signal.SIGKILL)
            return
        time.sleep(0.1)


def test_sweep_survives_a_killed_worker_and_resumes(runs_dir: Path) -> None:
    stop = threading.Event()
    killer = threading.Thread(target=kill_when_started, args=("method=mobilenetv2 seed=1", stop))
    killer.start()
    try:
        assert sweep("emo", ["preset=smoke"], "mobilenetv2", "0,1,2,3", None, 2, False) == 1
    finally:
        stop.set()
        killer.join()
    first = {r["seed"]: r for _, r in records.find([runs_dir])}
    assert sorted(first) == [0, 1, 2, 3]
    assert first[1]["status"] == "failed" and "signal 9" in first[1]["error"]
    assert all(first[s]["status"] == "ok" for s in (0, 2, 3))

    assert sweep("emo", ["preset=smoke"], "mobilenetv2", "0,1,2,3", None, 2, False) == 0
    second = {r["seed"]: r for _, r in records.find([runs_dir])}
    assert second[1]["status"] == "ok"
    assert all(second[s]["finished"] == first[s]["finished"] for s in (0, 2, 3)), "done runs rerun"
