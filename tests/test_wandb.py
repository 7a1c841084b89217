"""W&B: the sweep spec generated for every task; an agent's runs, built and started by wandb's own
agent code, resolve to the intended configs and log them; read back with wandb's own reader. No
test needs (or minds) credentials: every W&B process here runs offline or has W&B's sweep creation
replaced."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import wandb
from wandb import wandb_agent

from bench import sweep as sweep_mod
from bench import tracking
from bench.cli import _parser, main
from bench.config import resolve
from bench.registry import tasks

WANDB = str(Path(sys.executable).parent / "wandb")


class Recorded:
    """Stands in for wandb's AgentProcess: keeps the command and environment the agent built."""

    def __init__(self, env=None, command=None, **kw) -> None:
        self.env, self.command = env, command


def agent_for(spec: dict, monkeypatch: pytest.MonkeyPatch, wandb_dir: Path) -> wandb_agent.Agent:
    """wandb's own Agent, given the spec's command as the W&B server would send it, in the
    environment ``wandb agent`` sets up (run_agent: the sweep id; the Agent: WANDB_DIR; per run:
    WANDB_RUN_ID and WANDB_SWEEP_PARAM_PATH, restored after the test)."""
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep1")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_RUN_ID", "unset")
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", "unset")
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id="sweep1")
    agent._sweep_command = spec.get("command") or wandb_agent.Agent.DEFAULT_SWEEP_COMMAND
    return agent


def points(spec: dict):
    axes = {k: v["values"] if "values" in v else [v["value"]] for k, v in spec["parameters"].items()}
    for combo in itertools.product(*axes.values()):
        yield dict(zip(axes, combo, strict=True))


def start(agent: wandb_agent.Agent, spec: dict, point: dict, run_id: str):
    """What the agent does on the server's ``run`` command: expand, set the env, start."""
    command = {"type": "run", "run_id": run_id, "program": spec["program"]}
    agent._command_run({**command, "args": {k: {"value": v} for k, v in point.items()}})
    return agent._run_processes[run_id]


def cfg_value(cfg: dict, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("task", sorted(tasks()))
@pytest.mark.parametrize("macro", ["args_no_hyphens", "args"])
def test_agent_argv_resolves_to_the_intended_config(
    task: str, macro: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wandb_agent, "AgentProcess", Recorded)
    spec = sweep_mod.wandb_spec(task, sweep_mod.axes(task, [], seeds="0,1"))
    goal = "maximize" if tasks()[task].higher_is_better else "minimize"
    assert spec["metric"] == {"name": tasks()[task].primary, "goal": goal}
    assert spec["parameters"]["logger"] == {"value": "wandb"}, "an agent's runs log to W&B"
    spec["command"] = [c.replace("args_no_hyphens", macro) for c in spec["command"]]
    agent = agent_for(spec, monkeypatch, tmp_path)
    for i, point in enumerate(points(spec)):
        proc = start(agent, spec, point, f"run{i}")
        assert proc.command[:3] == ["bench", "run", task]
        assert proc.env["WANDB_RUN_ID"] == f"run{i}" and proc.env["WANDB_SWEEP_ID"] == "sweep1"
        ns, extra = _parser().parse_known_args(proc.command[1:])
        out = resolve(ns.task, ns.overrides + extra)
        cfg = out[1] if isinstance(out, tuple) else out
        for key, value in point.items():
            assert cfg_value(cfg, key) == value, (key, proc.command)


def wandb_file(run_dir: Path) -> Path:
    (found,) = run_dir.glob("**/offline-run-*/run-*.wandb")
    return found


def leet(*args: str) -> str:
    out = subprocess.run([WANDB, "leet", "inspect", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def inspect(run_dir: Path) -> dict:
    """The offline run as wandb's own reader (``wandb leet inspect --summary --json``) sees it:
    run id, project, state, config, summary."""
    return json.loads(leet("--summary", "--json", str(wandb_file(run_dir))))


def test_an_agent_run_logs_config_summary_and_record(runs_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The spec `bench sweep emo --wandb preset=smoke trainer.log_every_n_steps=1 --methods
    mobilenetv2 --seeds 0` registers, run as an agent runs it, offline; its config, summary
    metrics, curves and record read back."""
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # artifact staging
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_ENTITY", "team")
    monkeypatch.setenv("WANDB_PROJECT", "bench-emo")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    over = ["preset=smoke", "trainer.log_every_n_steps=1"]  # a curve point at every step
    spec = sweep_mod.wandb_spec("emo", sweep_mod.axes("emo", over, "mobilenetv2", "0"))
    (point,) = points(spec)
    proc = start(agent_for(spec, monkeypatch, tmp_path), spec, point, "abc123")
    assert proc.wait(timeout=600) == 0
    (path,) = runs_dir.glob("**/record.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["config"]["logger"] == "wandb"
    seen = inspect(path.parent)
    assert seen["run_id"] == "abc123" and seen["project"] == "bench-emo" and seen["state"] == "finished"
    assert seen["exit_code"] == 0
    config = seen["config"]  # the resolved run config (plus the sweep's own parameters)
    assert config["method"] == "mobilenetv2" and config["preset"] == "smoke" and config["seed"] == 0
    assert config["trainer"] == record["config"]["trainer"] and config["data"] == record["config"]["data"]
    summary = seen["summary"]
    assert summary["test/acc"] == pytest.approx(record["metrics"]["test/acc"])
    assert summary["primary/test/acc"] == pytest.approx(record["primary"]["value"])
    assert summary["status"] == "ok" and summary["config_hash"] == record["config_hash"]
    assert summary["cost/params"] == record["cost"]["params"] and summary["cost/wall_s"] > 0
    assert any(k.startswith("train/") for k in summary), "training curves"
    # record.json as an artifact of type record (the log's artifact record, read by wandb)
    logged = [json.loads(ln) for ln in leet("--json", str(wandb_file(path.parent))).splitlines()]
    (artifact,) = [r["artifact"] for r in logged if r.get("type") == "artifact"]
    assert artifact["type"] == "record" and artifact["name"].startswith("record-emo-mobilenetv2-")
    (entry,) = artifact["manifest"]["contents"]
    assert entry["path"] == "record.json" and int(entry["size"]) == path.stat().st_size


def test_wandb_sweep_honours_the_command_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    created = {}

    def fake_sweep(spec, entity=None, project=None):
        created.update(spec=spec, entity=entity, project=project)
        return "swp42"

    monkeypatch.setattr(wandb, "sweep", fake_sweep)
    argv = ["sweep", "emo", "--wandb", "--entity", "lab", "--project", "emo-paper", "preset=smoke"]
    code = main([*argv, "--methods", "emo_1m,mobilenetv2", "--seeds", "3,4", "optim.lr=0.1"])
    assert code == 0 and capsys.readouterr().out.strip() == "wandb agent lab/emo-paper/swp42"
    assert created["entity"] == "lab" and created["project"] == "emo-paper"
    params = created["spec"]["parameters"]
    assert params["preset"] == {"value": "smoke"} and params["logger"] == {"value": "wandb"}
    assert params["method"] == {"values": ["emo_1m", "mobilenetv2"]}
    assert params["seed"] == {"values": [3, 4]} and params["optim.lr"] == {"value": 0.1}
    assert created["spec"]["command"] == ["bench", "run", "emo", "${args_no_hyphens}"]


def test_tracking_mode_follows_wandb_mode_then_the_agent() -> None:
    assert tracking.mode({}) == "offline"
    assert tracking.mode({"WANDB_SWEEP_ID": "x"}) == "online"
    assert tracking.mode({"WANDB_SWEEP_ID": "x", "WANDB_MODE": "offline"}) == "offline"
