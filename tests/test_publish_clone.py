"""A fresh clone's smoke sweep, published as the README says, leaves leaderboards/ unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_fresh_clone_smoke_bench_leaves_leaderboards_unchanged(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "PYTHONPATH": str(clone), "BENCH_RUNS": str(tmp_path / "runs")}
    make = ["make", "-C", str(clone), f"VENV={venv}", "-o", f"{venv}/.installed", "bench"]
    args = ["TASK=emo", "PRESET=smoke", "METHOD=mobilenetv2", "SEEDS=0"]
    out = subprocess.run([*make, *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert list((tmp_path / "runs").glob("emo/**/record.json")), "the smoke run wrote its record"
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "leaderboards"], cwd=clone, capture_output=True, text=True
    )
    assert status.stdout == "", status.stdout
