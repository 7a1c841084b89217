"""W&B: every sweep spec's agent command parses as intended; logger=wandb runs offline."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

from bench.cli import _parser
from bench.config import CONFIGS_DIR, resolve
from bench.registry import tasks

SPECS = sorted((CONFIGS_DIR / "sweeps").glob("*.yaml"))


def agent_argvs(spec: dict, macro: str):
    """The argv a W&B agent builds for every grid point, using W&B's own functions."""
    params = spec["parameters"]
    axes = {k: v["values"] if "values" in v else [v["value"]] for k, v in params.items()}
    for combo in itertools.product(*axes.values()):
        point = dict(zip(axes, combo, strict=True))
        args = create_sweep_command_args({"args": {k: {"value": v} for k, v in point.items()}})
        command = [c for c in create_sweep_command(spec["command"]) if c != "${" + macro + "}"]
        yield point, command + args[macro]


def test_every_task_has_a_sweep_spec() -> None:
    assert {p.stem for p in SPECS} == set(tasks())


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
@pytest.mark.parametrize("macro", ["args_no_hyphens", "args"])
def test_agent_argv_resolves_to_the_intended_config(path: Path, macro: str) -> None:
    spec = yaml.safe_load(path.read_text())
    spec["command"] = [c.replace("args_no_hyphens", macro) for c in spec["command"]]
    assert spec["metric"]["name"] == tasks()[path.stem].primary
    for point, argv in agent_argvs(spec, macro):
        assert argv[:3] == ["bench", "run", path.stem]
        ns, extra = _parser().parse_known_args(argv[1:])
        cfg = resolve(ns.task, ns.overrides + extra)
        for key, value in point.items():
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == value, (key, argv)


def test_wandb_logger_runs_offline(bench_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    code, record = bench_run("emo", "preset=smoke", "method=mobilenetv2", "logger=wandb")
    assert code == 0 and record["status"] == "ok"
    assert list(tmp_path.glob("**/offline-run-*"))
