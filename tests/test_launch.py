"""Every command of docs/SCALING.md and of the README's scale section works as written; `make bench`
asks only for what the task reads; `make gpu-check` refuses cleanly without CUDA."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench import gpu_check
from bench import sweep as sweep_mod
from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent


def commands(path: Path, section: str | None = None) -> list[str]:
    """The shell commands of the ```sh blocks (continuations joined, comments dropped)."""
    text = path.read_text()
    if section:
        text = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


DOC = commands(ROOT / "docs" / "SCALING.md") + commands(ROOT / "README.md", "Sweeps and scale")


def bench_argv(line: str) -> list[str] | None:
    argv = shlex.split(line.split(">", 1)[0].rstrip("& "))
    return argv[argv.index("bench") + 1 :] if "bench" in argv else None


def make(*args: str, dry: bool = True, hold: bool = True) -> subprocess.CompletedProcess:
    """``make ARGS`` against a stand-in virtualenv: its install stamp is never remade (-o) and its
    ``bench`` and ``python`` only echo, so no test can install or run anything through make; only
    the registry's answer to what a task reads (``python -m bench.datasets.system``) is real."""
    venv = Path(tempfile.mkdtemp(prefix="venv-"))
    (venv / "bin").mkdir()
    registry = f'[ "$2" = bench.datasets.system ] && exec {shlex.quote(sys.executable)} "$@"\n'
    for tool, script in (("bench", ""), ("python", registry)):
        (venv / "bin" / tool).write_text(f'#!/bin/sh\n{script}echo "$0 $*"\n')
        (venv / "bin" / tool).chmod(0o755)
    (venv / ".installed").touch()
    os.utime(venv / ".installed", (0, 0))  # older than pyproject.toml: an install would be due
    hold_stamp = ["-o", f"{venv}/.installed"] if hold else []
    cmd = ["make", *(["-n"] if dry else ["-s"]), f"VENV={venv}", *hold_stamp, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)


def make_dry(*args: str) -> str:
    out = make(*args)
    assert out.returncode == 0, out.stderr
    assert "pip install" not in out.stdout, "the stand-in venv was about to be reinstalled"
    return out.stdout


@pytest.mark.parametrize("line", DOC, ids=range(len(DOC)))
def test_documented_command_works(line: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    argv = bench_argv(line)
    if line.startswith(("wandb login", "CUDA_VISIBLE_DEVICES=")) or "wandb agent" in line:
        assert "wandb agent" not in line or re.search(r"wandb agent [\w-]+/[\w-]+/SWEEP_ID", line)
        return  # W&B's own commands; the agent's command is the one `--wandb` prints (below)
    if line.startswith("make "):
        words = shlex.split(line)
        if words[1] == "gpu-check":
            assert "-m bench.gpu_check --out gpu-check.json" in make_dry("gpu-check")
            return
        dry = make_dry(*words[1:])
        assert "bench sweep" in dry and all(w.split("=")[1] in dry for w in words[2:] if "=" in w)
        return
    if line.startswith("python -m bench.gpu_check"):
        assert gpu_check.main(shlex.split(line)[3:]) in (0, 2)  # 2: no CUDA here (tested below)
        return
    assert argv, f"unrecognised documented command: {line}"
    if argv[0] == "run":
        from bench.run import locate

        locate(argv[1], argv[2:])  # resolves, or raises the one-line error the CLI would print
        return
    if argv[0] == "publish":
        return  # the merge flow is tests/test_leaderboard.py's
    assert argv[0] == "sweep", line
    if "--wandb" in argv:
        monkeypatch.setattr("wandb.sweep", lambda spec, entity=None, project=None: "SWEEP_ID")
        assert main(argv) == 0
        entity, project = argv[argv.index("--entity") + 1], argv[argv.index("--project") + 1]
        assert capsys.readouterr().out.strip() == f"wandb agent {entity}/{project}/SWEEP_ID"
        return
    if "--launcher" in argv:
        seen = {}

        class Job:
            job_id = "123_0"

        def fake_submit(task, runs, params, folder, force=False):
            seen.update(task=task, runs=runs, params=params)
            return [Job()] * len(runs)

        monkeypatch.setattr(sweep_mod, "submit", fake_submit)
        assert main(argv) == 0 and "submitted" in capsys.readouterr().out
        assert seen["runs"] and all(isinstance(v, (int, str)) for v in seen["params"].values())
        return
    # a local sweep: every run expanded and resolved (GPUs and data this machine lacks)
    assert main([*argv, "--print"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(ln.startswith(f"bench run {argv[1]} ") for ln in lines)


def test_gpu_check_refuses_without_cuda(capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: `make gpu-check` runs for real")
    assert gpu_check.main(["--out", "never.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU visible" in err[0]
    assert not Path("never.json").exists()


def test_gpu_check_figures_from_a_record() -> None:
    record = {
        "status": "ok",
        "error": None,
        "config": {"data": {"batch_size": 32}, "trainer": {"precision": "16-mixed"}},
        "cost": {"step_s": 0.25, "wall_s": 12.0, "peak_mem_mb": 900.0},
    }
    got = gpu_check.figures(record, 512.0, devices=2)
    assert got == {
        "pass": True,
        "status": "ok",
        "error": None,
        "steps_per_s": 4.0,
        "samples_per_s": 256.0,
        "peak_gpu_mb": 512.0,
        "precision": "16-mixed",
        "wall_s": 12.0,
    }
    failed = gpu_check.figures({**record, "status": "failed", "error": "OOM", "cost": {}}, None)
    assert failed["pass"] is False and failed["steps_per_s"] is None


def test_make_bench_installs_only_what_the_task_reads(tmp_path: Path) -> None:
    missing = f"BENCH_FASHION_MNIST={tmp_path / 'none'}"
    # a task that reads Fashion-MNIST, no root: one line saying what to install, before any run
    out = make("bench", "TASK=emo", "APT=", missing, dry=False)
    assert out.returncode != 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "apt-get install dataset-fashion-mnist" in lines[0], out.stdout
    # a task that does not: neither the dataset nor chromium is asked for
    dry = make_dry("bench", "TASK=getup", "APT=", missing)
    assert "dataset-fashion-mnist" not in dry and "chromium" not in dry and "bench sweep getup" in dry
    # an installed venv is used as it is, even when pyproject.toml is newer (no mmcv rebuild)
    for target in ("bench", "gpu-check"):
        out = make(target, "TASK=getup", hold=False)
        assert out.returncode == 0 and "pip install" not in out.stdout and "mmcv" not in out.stdout


def test_python_m_bench_gpu_check_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0 and "--steps" in out.stdout
