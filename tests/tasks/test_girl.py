"""girl: R-PRD's projection (simplex, eps-ball, eps = 0), agreement with scipy's LP minimax, the
closed-form worst case, the navigation env against its gymnasium twin, MAML's inner step, bad
configs, and a few HalfCheetah steps of the paper-preset env (skipped without MuJoCo)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.girl import envs, maml, prd
from bench.tasks.girl.data import build

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_ball_simplex_projection_is_feasible_and_exact_inside() -> None:
    p0 = np.array([0.4, 0.3, 0.2, 0.1])
    for _ in range(50):
        x = RNG.normal(size=4)
        q = prd.project_ball_simplex(x, p0, 0.3, 0.0, 10)
        assert abs(q.sum() - 1) < 1e-12 and q.min() >= 0 and np.abs(q - p0).sum() <= 0.3 + 1e-12
    inside = np.array([0.35, 0.35, 0.2, 0.1])  # already feasible: left where it is
    assert np.allclose(prd.project_ball_simplex(inside, p0, 0.3, 0.0, 10), inside)
    # The projection is the nearest feasible point: no random feasible point is closer.
    x = np.array([1.0, 0.0, 0.0, 0.0])
    q = prd.project_ball_simplex(x, p0, 0.3, 0.0, 200)
    for _ in range(200):
        r = prd.project_ball_simplex(RNG.dirichlet(np.ones(4)), p0, 0.3, 0.0, 10)
        assert np.linalg.norm(x - q) <= np.linalg.norm(x - r) + 1e-6


def test_r_prd_stays_in_ball_and_eps0_returns_p0() -> None:
    m = RNG.normal(size=(3, 6)) * 5 - 20
    p0 = RNG.dirichlet(np.ones(6) * 2)
    sol = prd.r_prd(m, p0, 0.2, 300, 0.05, 1e-3, 10)
    for q in (*sol.iterates, sol.adversary):
        assert abs(q.sum() - 1) < 1e-12 and q.min() >= 0 and np.abs(q - p0).sum() <= 0.2 + 1e-12
    assert np.abs(sol.adversary - p0).sum() > 0.1  # it did move: the check can fail
    zero = prd.r_prd(m, p0, 0.0, 300, 0.05, 1e-3, 10)
    assert max(np.abs(q - p0).max() for q in zero.iterates) < 1e-12


def test_r_prd_agrees_with_the_lp_minimax_on_small_games() -> None:
    for _ in range(3):
        m = RNG.normal(size=(3, 4)) * 10 - 20
        p0 = RNG.dirichlet(np.ones(4) * 3)
        value, _ = prd.lp_minimax(m, p0, 0.4)
        sol = prd.r_prd(m, p0, 0.4, 3000, 0.02, 1e-6, 10)
        assert abs((m @ sol.adversary).max() - value) / np.ptp(m) < 0.03
        assert abs(prd.worst_case(sol.agent @ m, p0, 0.4) - value) / np.ptp(m) < 0.03
        # The adversary at p0 (no game) is beaten by the minimax one whenever eps binds.
        assert (m @ p0).max() >= value - 1e-9


def test_worst_case_matches_the_lp_with_one_policy() -> None:
    for eps in (0.0, 0.1, 0.5, 2.0):
        r = RNG.normal(size=7)
        p0 = RNG.dirichlet(np.ones(7))
        assert prd.worst_case(r, p0, eps) == pytest.approx(prd.lp_minimax(r[None], p0, eps)[0], abs=1e-7)
    assert prd.worst_case(np.array([1.0, -1.0]), np.array([0.5, 0.5]), 2.0) == pytest.approx(-1.0)


def test_point_nav_matches_its_gymnasium_twin() -> None:
    pytest.importorskip("gymnasium")
    d = resolve("girl", ["preset=smoke"])["data"]
    goals, p0, held = envs.point_goals(d)
    assert len(goals) == d["near"] + d["far"] and len(held) == d["heldout"]
    assert p0.sum().item() == pytest.approx(1.0) and p0[-1] < p0[0]  # far goals are rare
    env = envs.PointNav(goals, 5, d["max_step"], d["ctrl_cost"])
    twin = envs.point_nav_gym(goals[10].numpy(), 5, d["max_step"], d["ctrl_cost"])
    env.reset(torch.tensor([10]), 1)
    twin.reset(seed=0)
    for a in torch.randn(5, 2):
        obs, r = env.step(a[None, None])
        o2, r2, _, trunc, _ = twin.step(a.numpy())
        assert np.allclose(obs[0, 0].numpy(), o2, atol=1e-6) and r[0, 0].item() == pytest.approx(r2, abs=1e-5)
    assert trunc


def test_inner_step_improves_a_task_return() -> None:
    d = resolve("girl", ["preset=cpu"])
    goals, _, _ = envs.point_goals(d["data"])
    env = envs.PointNav(goals, 20, d["data"]["max_step"], d["data"]["ctrl_cost"])
    gen = torch.Generator().manual_seed(0)
    pol = maml.init_policy(2, 2, 16, -1.0, gen)
    tasks = torch.arange(len(goals))
    batch = maml.expand(pol, len(tasks))
    before = maml.rollout(env, batch, tasks, 200, 20, gen)
    adapted = maml.adapt(batch, before, 0.05)
    after = maml.rollout(env, adapted, tasks, 200, 20, gen)
    assert after.returns.mean() > before.returns.mean() + 0.5


def test_bad_configs_are_one_clear_error(bench_run, capsys) -> None:
    code, _ = bench_run("girl", "method=girl", "preset=smoke", "data.source=atari")
    assert code == 2 and "data.source" in capsys.readouterr().err
    code, _ = bench_run("girl", "method=girl", "preset=smoke", "optim.meta_steps=2")
    assert code == 2 and "meta_steps" in capsys.readouterr().err
    with pytest.raises(BenchError, match="floor"):
        prd.project_simplex(np.ones(4), floor=0.5)


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs gymnasium[mujoco]")
def test_halfcheetah_env_steps_with_the_velocity_reward() -> None:
    d = resolve("girl", ["preset=paper"])
    fam = build(d["data"], 3)
    obs = fam.train.reset(torch.tensor([0, 5]), 2)
    assert obs.shape == (2, 2, fam.train.obs_dim)
    a = torch.zeros(2, 2, fam.train.act_dim)
    obs, r = fam.train.step(a)
    # With zero action the cheetah barely moves: reward ~ -|v_goal| (0.5 and -1.0).
    assert obs.shape == (2, 2, 17) and torch.allclose(r[:, 0], torch.tensor([-0.5, -1.0]), atol=0.3)


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs gymnasium[mujoco]")
def test_paper_preset_runs_girl_on_halfcheetah_end_to_end(bench_run) -> None:
    """The paper preset's whole pipeline (PSRO rounds, MAML oracle, R-PRD, few-shot test) on the
    MuJoCo family, shrunk to a few steps: a record with finite returns and the run claims."""
    tiny = ["optim.horizon=5", "optim.meta_steps=8", "optim.episodes=2", "optim.adapt_budget=8"]
    tiny += ["optim.eval_episodes=2", "game.steps=10", "eval.episodes=2", "eval.repeats=1"]
    tiny += ["checks.steps=200"]
    code, record = bench_run("girl", "method=girl", "preset=paper", "logger=none", *tiny)
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert record["config"]["data"]["source"] == "cheetah"
    assert all(math.isfinite(v) for v in record["metrics"].values())
    assert {"rprd_in_ball", "rprd_eps0_is_p0"} <= set(record["claims"])
