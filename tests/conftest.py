"""Every test writes its runs under its own temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BENCH_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def bench_run(runs_dir: Path):
    """``bench run ARGS`` through the CLI; returns (exit code, the one record written)."""

    def run(*args: str) -> tuple[int, dict]:
        code = main(["run", *args])
        paths = sorted(runs_dir.glob("**/record.json"), key=lambda p: p.stat().st_mtime)
        return code, json.loads(paths[-1].read_text()) if paths else None

    return run
