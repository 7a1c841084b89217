"""The CLI as a user meets it: `bench list` is fast and torch-free; bad input is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_list_shows_tasks_methods_presets() -> None:
    out = bench("list")
    assert out.returncode == 0
    assert "emo" in out.stdout and "emo_1m" in out.stdout and "smoke" in out.stdout


def test_show_prints_claims_and_reported_numbers() -> None:
    out = bench("show", "emo")
    assert out.returncode == 0
    assert "emo1m_ge_mobilenetv2" in out.stdout and "71.5" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "emoo"], "unknown task 'emoo': did you mean emo?"),
        (["run", "emo", "method=emo_3m"], "unknown method"),
        (["run", "emo", "preset=huge"], "unknown preset"),
        (["run", "emo", "optim"], "malformed override"),
        (["run", "emo", "optim.lrr=1"], "did you mean optim.lr"),
        (["show", "../etc"], "unknown task"),
        (["frobnicate"], "invalid choice"),
        (["sweep", "emo", "--seeds", "a,b"], "comma-separated integers"),
        (["sweep", "emo", "--wandb"], "could not create the W&B sweep"),  # no API key here
        (["publish", "nope"], "unknown task"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    out = bench(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_missing_debian_dataset_says_how_to_install(tmp_path: Path) -> None:
    out = bench("run", "emo", "preset=smoke", env={"BENCH_FASHION_MNIST": str(tmp_path)})
    assert out.returncode == 2 and "make install" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_missing_real_data_root_says_what_to_provide(tmp_path: Path) -> None:
    out = bench("run", "emo", "preset=smoke", "data.source=real", f"data.root={tmp_path}")
    assert out.returncode == 2 and "ImageFolder" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
