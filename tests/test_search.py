"""Searches beyond grids: W&B parameter specs (``values`` and distributions) checked in one line,
sent to W&B as written, and sampled locally by ``--search random`` (reproducible for a search
seed, within bounds, log-uniform where asked), each trial a normal run with its own record."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest
import yaml

from bench import provenance, records, registry
from bench.cli import _parser, main
from bench.config import resolve
from bench.errors import BenchError
from bench.sweep import Options, Search, axes, parameters, plan, points, sweep, wandb_spec
from bench.sweep.space import DISTRIBUTIONS, parse
from tests.toy_task import write_toy

LR = "optim.lr={distribution: log_uniform_values, min: 1e-4, max: 1e-2}"
NARROW = ["--preset", "smoke", "--methods", "emo_1m,mobilenetv2", "--seeds", "0,1"]


def draws(spec: dict, n: int = 2000, seed: int = 0) -> list:
    param, rng = parse("x", spec), random.Random(seed)
    return [param.sample(rng) for _ in range(n)]


def test_a_search_draws_the_same_trials_for_its_seed() -> None:
    over = ["preset=smoke", LR, "trainer.max_epochs={values: [1, 2, 3]}"]
    first = points("emo", over, "emo_1m", "0", Search("random", 5, seed=3))
    assert first == points("emo", over, "emo_1m", "0", Search("random", 5, seed=3))
    assert first != points("emo", over, "emo_1m", "0", Search("random", 5, seed=4))
    # the order on the command line changes nothing; more trials extend fewer
    assert first == points("emo", [over[0], over[2], over[1]], "emo_1m", "0", Search("random", 5, seed=3))
    assert first[:2] == points("emo", over, "emo_1m", "0", Search("random", 2, seed=3))
    assert {p["trainer.max_epochs"] for p in first} <= {1, 2, 3}


def test_each_trial_runs_on_every_method_and_seed() -> None:
    runs = plan("emo", ["preset=smoke", LR], "emo_1m,mobilenetv2", "0,1", Search("random", 3))
    assert len(runs) == 3 * 2 * 2
    for trial in range(3):
        block = runs[trial * 4 : trial * 4 + 4]
        assert len({r[-1] for r in block}) == 1, "one sampled lr per trial"
        assert [r[1:3] for r in block] == [
            ["method=emo_1m", "seed=0"],
            ["method=emo_1m", "seed=1"],
            ["method=mobilenetv2", "seed=0"],
            ["method=mobilenetv2", "seed=1"],
        ]
    # a trial equal to an earlier one is the same runs: drawn once
    assert len(plan("emo", ["optim.lr={values: [0.1]}"], "emo_1m", "0", Search("random", 4))) == 1


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    [
        ({"min": 2, "max": 5}, 2, 5),  # int_uniform, inferred
        ({"min": 0.5, "max": 1.5}, 0.5, 1.5),  # uniform, inferred
        ({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}, 1e-4, 1e-2),
        ({"distribution": "log_uniform", "min": -4, "max": 0}, math.exp(-4), 1),  # exponents
        ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 0.1}, 0.01, 0.1),
        ({"distribution": "beta", "a": 2, "b": 5}, 0, 1),
    ],
)
def test_draws_stay_within_bounds(spec: dict, low: float, high: float) -> None:
    values = draws(spec)
    assert all(low <= v <= high for v in values)
    assert max(values) - min(values) > 0.5 * (high - low), "draws spread over the range"
    if "distribution" not in spec and isinstance(spec["min"], int):
        assert all(isinstance(v, int) for v in values) and set(values) == {2, 3, 4, 5}


def test_quantized_and_categorical_draws() -> None:
    q = draws({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25})
    assert set(q) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert all(
        isinstance(v, int)
        for v in draws({"distribution": "q_log_uniform_values", "min": 1, "max": 64, "q": 1})
    )
    picked = draws({"values": ["a", "b"], "probabilities": [0.9, 0.1]}, n=4000)
    assert 0.85 < picked.count("a") / len(picked) < 0.95
    assert set(draws({"values": [1, 2, 3]})) == {1, 2, 3}


def test_log_uniform_is_uniform_in_the_log() -> None:
    """Each decade of [1e-4, 1e-2] holds half the draws (a uniform draw would put 9% in the lower
    one), and log10 of the draws is spread evenly over [-4, -2]."""
    values = draws({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}, n=8000)
    assert abs(sum(v < 1e-3 for v in values) / len(values) - 0.5) < 0.03
    logs = sorted(math.log10(v) for v in values)
    quartiles = [logs[len(logs) * k // 4] for k in (1, 2, 3)]
    assert quartiles == pytest.approx([-3.5, -3.0, -2.5], abs=0.05)


def wandb_spec_of(capsys, *argv: str) -> dict:
    assert main(["sweep", "emo", *argv, "--wandb-spec"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_the_wandb_spec_keeps_the_distribution(method: str, capsys) -> None:
    spec = wandb_spec_of(capsys, LR, "trainer.max_epochs={values: [1, 2]}", "--search", method, *NARROW)
    assert spec["method"] == method
    params = spec["parameters"]
    assert params["optim.lr"] == {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}
    assert params["trainer.max_epochs"] == {"values": [1, 2]}
    assert params["method"] == {"values": ["emo_1m", "mobilenetv2"]} and params["seed"] == {"values": [0, 1]}
    assert params["logger"] == {"value": "wandb"} and spec["metric"]["name"] == "test/acc"
    # a grid enumerates values; a distribution on W&B's grid is refused before the sweep exists
    assert wandb_spec_of(capsys, "trainer.max_epochs={values: [1, 2]}", *NARROW)["method"] == "grid"
    assert main(["sweep", "emo", LR, "--wandb", *NARROW]) == 2
    assert "is sampled, a grid takes values: or value:" in capsys.readouterr().err
    assert axes("emo", ["optim.lr={values: [0.1, 0.01]}"], "emo_1m", "0")["optim.lr"] == [0.1, 0.01]


def test_a_wandb_spec_file_is_read_as_written(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "method: bayes\nmetric: {name: test/loss, goal: minimize}\nrun_cap: 12\nparameters:\n"
        "  optim:\n    parameters:\n      lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}\n"
        "  method: {values: [emo_1m]}\n"
    )
    spec = wandb_spec_of(capsys, "--spec", str(path), "--preset", "smoke", "--seeds", "0")
    assert spec["method"] == "bayes" and spec["run_cap"] == 12
    assert spec["metric"] == {"name": "test/loss", "goal": "minimize"}
    assert spec["parameters"]["optim.lr"]["distribution"] == "log_uniform_values"
    assert spec["parameters"]["method"] == {"value": "emo_1m"}
    assert main(["sweep", "emo", "--spec", str(path), "--print"]) == 2  # bayes runs on W&B only
    assert "a bayes search runs on W&B" in capsys.readouterr().err


def test_a_wandb_agent_runs_a_drawn_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A point of W&B's random search, as wandb's own agent turns it into ``bench run`` argv,
    resolves to the drawn learning rate (drawn here by bench's sampler, tiny values included)."""
    from wandb import wandb_agent

    from tests.test_wandb import Recorded, agent_for, start

    monkeypatch.setattr(wandb_agent, "AgentProcess", Recorded)
    over = ["preset=smoke", "optim.lr={distribution: log_uniform_values, min: 1e-6, max: 1e-5}"]
    spec = wandb_spec("emo", parameters("emo", over, "emo_1m", "0"), "random")
    agent = agent_for(spec, monkeypatch, tmp_path)
    for i, drawn in enumerate(points("emo", over, "emo_1m", "0", Search("random", 3))):
        point = {"preset": "smoke", "method": "emo_1m", "seed": 0, "logger": "wandb", **drawn}
        ns, extra = _parser().parse_known_args(start(agent, spec, point, f"r{i}").command[1:])
        assert resolve(ns.task, ns.overrides + extra)["optim"]["lr"] == drawn["optim.lr"]


MALFORMED = [
    ("{distribution: log_uniform_values, min: 1e-4}", "missing max"),
    ("{distribution: log_uniform_valuez, min: 1e-4, max: 1e-2}", "did you mean log_uniform_values"),
    ("{distribution: gamma, min: 1, max: 2}", "unknown distribution 'gamma'"),
    ("{distribution: uniform, min: 0.1, max: 0.01}", "min 0.1 is above max 0.01"),
    ("{distribution: log_uniform_values, min: 0, max: 1}", "min must be > 0"),
    ("{min: 1e-4, max: 1e-2, step: 2}", "not step"),
    ("{distribution: int_uniform, min: 0.5, max: 2}", "integer min and max"),
    ("{distribution: uniform, min: low, max: 1}", "min must be a finite number"),
    ("{values: []}", "non-empty list"),
    ("{values: [0.1, 0.2], probabilities: [0.5]}", "probabilities"),
    ("{distribution: normal, sigma: -1}", "sigma must be >= 0"),
    ("{mu: 0.1}", "give value, values"),
    ("{}", "a spec is a mapping"),
]


@pytest.mark.parametrize(("spec", "says"), MALFORMED)
@pytest.mark.parametrize("where", ["--wandb", "--print"])
def test_a_malformed_spec_is_one_line_naming_the_parameter(spec: str, says: str, where: str, capsys) -> None:
    search = ["--search", "random"] + (["--trials", "2"] if where == "--print" else [])
    assert main(["sweep", "emo", f"optim.lr={spec}", *search, where]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("bench: error: parameter optim.lr: ") and says in line, line


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--search", "bayes", "--print"], "a bayes search runs on W&B"),
        (["--search", "random", "--print"], "--trials N"),
        (["--trials", "3", "--print"], "--trials is for a local --search random"),
        (["--search", "random", "--trials", "0", "--print"], "positive integer"),
        (["--search", "tpe", "--print"], "invalid choice: 'tpe'"),
        (["seed={distribution: int_uniform, min: 0, max: 9}", "--search", "random", "--trials", "2"], "grid"),
    ],
)
def test_a_search_that_cannot_run_is_one_line(argv: list[str], says: str, capsys) -> None:
    assert main(["sweep", "emo", LR, *argv]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert says in line, line


def test_every_wandb_distribution_samples() -> None:
    bounds = {"min": 1, "max": 2}
    for dist, (required, _) in DISTRIBUTIONS.items():
        spec = {"distribution": dist, **{k: bounds[k] for k in required if k in bounds}}
        spec |= {"value": 1} if "value" in required else {}
        spec |= {"values": [1, 2], "probabilities": [0.5, 0.5]} if "values" in required else {}
        assert all(isinstance(v, (int, float)) for v in draws(spec, n=20)), dist
    with pytest.raises(BenchError, match="parameter x: "):
        parse("x", ["not", "a", "mapping"])


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy task (tests/toy/) under ``BENCH_TASK_PATH``; nothing it imports outlives the test."""
    folder = write_toy(tmp_path / "tasks")
    monkeypatch.setenv("BENCH_TASK_PATH", str(folder.parent))
    monkeypatch.setattr(sys, "path", list(sys.path))
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()
    yield folder
    for module in [m for m in sys.modules if m.split(".")[0] == "toy"]:
        del sys.modules[module]
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()


def test_a_random_search_on_the_toy_task_runs_each_trial(toy: Path, runs_dir: Path, capsys) -> None:
    """One trial of the fitted line's learning rate, then two: each trial a normal ``bench run``
    with its own record and config hash, its lr the drawn one; the rerun skips the first."""
    over = ["preset=smoke", "methods.fit.lr={distribution: log_uniform_values, min: 0.01, max: 0.5}"]
    assert sweep("toy", over, "fit", "0", Options(), Search("random", 1, seed=7)) == 0
    assert sweep("toy", over, "fit", "0", Options(), Search("random", 2, seed=7)) == 0
    out = capsys.readouterr().out
    assert out.count("ok (record exists)") == 1 and "2 ok, 0 not ok" in out
    found = [r for _, r in records.find([runs_dir])]
    assert len(found) == 2 and all(r["status"] == "ok" for r in found)
    assert len({r["config_hash"] for r in found}) == 2
    drawn = [p["methods.fit.lr"] for p in points("toy", over, "fit", "0", Search("random", 2, seed=7))]
    assert sorted(r["config"]["methods"]["fit"]["lr"] for r in found) == sorted(drawn)
    assert all(0.01 <= lr <= 0.5 for lr in drawn)
