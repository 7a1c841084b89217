"""girl: MAML's fixed exploration noise, PSRO's restricted game solved (and R-PRD checked against
the LP on the matrices PSRO solves; girl_rprd driven by R-PRD), the pick-then-adapt protocol with
one test budget for every method, the reweighted-MAML control, held-out goals in the rare sector,
R-PRD's properties, the closed-form worst case, the navigation env against its gymnasium twin, bad
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
from bench.tasks.girl.data import TaskFamilyModule, build
from bench.tasks.girl.method import GiRLMethod
from bench.tasks.girl.psro import Population

RNG = np.random.default_rng(0)
RPRD_GAP = 0.05  # R-PRD's stated distance from equilibrium (fraction of the payoff range): rprd_near_lp


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def cpu(*overrides: str) -> dict:
    return resolve("girl", ["preset=cpu", *overrides])


class Recorder:
    """A navigation env that records each reset's episode count and every action taken."""

    def __init__(self, env) -> None:
        self.env, self.obs_dim, self.act_dim = env, env.obs_dim, env.act_dim
        self.resets: list[int] = []
        self.obs: list[torch.Tensor] = []
        self.actions: list[torch.Tensor] = []

    def reset(self, tasks, n):
        self.resets.append(n)
        self.obs.append(self.env.reset(tasks, n))
        return self.obs[-1]

    def step(self, a):
        self.actions.append(a)
        obs, r = self.env.step(a)
        self.obs.append(obs)
        return obs, r


def small_population(eps: float, solver: str = "lp", policies: int = 3, seed: int = 0) -> Population:
    c = cpu("optim.meta_steps=30", "optim.episodes=8", "optim.eval_episodes=8")
    fam = build(c["data"], c["optim"]["horizon"])
    m = {"eps": eps, "policies": policies, "warm_start": True, "meta": True, "solver": solver}
    pop = Population(fam.train, fam.p0, m, c["optim"], c["game"], seed)
    while not pop.done:
        pop.step()
    return pop


# --- fault 1: MAML's exploration noise does not collapse under meta-training ---------------------


def test_exploration_noise_stays_at_its_std_through_meta_training() -> None:
    c = cpu()
    o, fam = c["optim"], build(c["data"], c["optim"]["horizon"])
    gen = torch.Generator().manual_seed(0)
    learner = maml.Learner(fam.train, maml.init_policy(2, 2, o["hidden"], gen), o, True, gen)
    for _ in range(60):  # the old learned log-std fell from -1.0 to about -1.4 in 60 steps
        learner.step(fam.p0)
    assert len(learner.opt.param_groups[0]["params"]) == 4  # W1, b1, W2, b2: no log-std
    # The meta-trained policy's actions scatter around its mean with the configured std.
    rec = Recorder(fam.train)
    pol = maml.expand(learner.policy(), len(fam.p0))
    with torch.no_grad():
        maml.rollout(rec, pol, learner.std, torch.arange(len(fam.p0)), 100, 5, gen)
    noise = torch.stack([a - maml.mean_action(pol, x) for x, a in zip(rec.obs, rec.actions, strict=False)])
    assert noise.std().item() == pytest.approx(math.exp(o["log_std"]), rel=0.03)


# --- fault 2: PSRO's restricted game is solved, R-PRD is checked on the same matrices ------------


def test_psro_solves_each_restricted_game_and_r_prd_is_near_it() -> None:
    pop = small_population(0.6)
    p0 = pop.p0.double().numpy()
    for k, sol in enumerate(pop.solutions):
        m = pop.payoff()[: k + 1]
        assert prd.nash_conv(m, p0, 0.6, sol) < 1e-6  # the LP's solution is an equilibrium
        assert np.abs(sol.adversary - p0).sum() <= 0.6 + 1e-6
    assert np.abs(pop.adversary - p0).sum() > 0.3  # the adversary did move: the checks can fail
    assert len(pop.rprd_gaps) == 3 and max(pop.rprd_gaps) <= RPRD_GAP
    # With solver rprd, PSRO uses R-PRD's answer, which is within the stated gap as well.
    rp = small_population(0.6, solver="rprd")
    for k, sol in enumerate(rp.solutions):
        assert prd.nash_conv(rp.payoff()[: k + 1], p0, 0.6, sol) <= RPRD_GAP


def test_lp_agent_is_the_maximin_mixture() -> None:
    for _ in range(5):
        m = RNG.normal(size=(3, 6)) * 5 - 20
        p0 = RNG.dirichlet(np.ones(6))
        sol = prd.lp_minimax(m, p0, 0.5)
        value = (m @ sol.adversary).max()
        assert prd.worst_case(sol.agent @ m, p0, 0.5) == pytest.approx(value, abs=1e-7)
        assert abs(sol.agent.sum() - 1) < 1e-9 and sol.agent.min() >= 0


# --- fault 3: pick-then-adapt with the meta-training inner batch ---------------------------------


def test_test_protocol_adapts_with_the_training_inner_batch() -> None:
    c = cpu()
    o, e, fam = c["optim"], c["eval"], build(c["data"], c["optim"]["horizon"])
    gen = torch.Generator().manual_seed(0)
    pols = [maml.init_policy(2, 2, o["hidden"], gen) for _ in range(4)]
    rec = Recorder(fam.train)
    maml.Learner(rec, pols[0], o, True, gen).step(fam.p0)
    inner = rec.resets[0]
    rec.resets.clear()
    res = maml.few_shot(rec, pols, torch.arange(len(fam.p0)), e["pick"], inner, 7, 2, o, gen)
    assert rec.resets == [e["pick"], inner, 7]  # pick, adapt, measure
    assert inner == o["episodes"] and res.post.shape == (4, 2, len(fam.p0))
    rec.resets.clear()
    maml.few_shot(rec, pols[:1], torch.arange(len(fam.p0)), e["pick"], 11, 7, 2, o, gen)
    assert rec.resets == [11, 7]  # one policy: nothing to pick


@pytest.mark.parametrize("name", ["girl", "maml", "maml_bestof", "multitask"])
def test_every_method_spends_the_same_test_episodes_per_task(name: str) -> None:
    """eval.budget episodes per task for every method: a population picks with P x eval.pick and
    adapts the pick on the rest, the meta-training inner batch; one policy adapts on them all."""
    cfg = resolve("girl", ["preset=smoke", f"method={name}"])
    e, o = cfg["eval"], cfg["optim"]
    method = started(cfg)
    while not method.step():
        pass
    rec = Recorder(method.family.train)
    method.family.train = rec
    res = method.results()
    spent = rec.resets[:-1]  # episodes per (policy, task); the last reset measures the adapted policy
    policies = cfg["methods"][name]["policies"]
    assert res["test_episodes"] == e["budget"] and rec.resets[-1] == e["episodes"]
    if policies > 1:  # each of P policies runs the pick, the picked one adapts on the inner batch
        assert spent == [e["pick"], o["episodes"]] and policies * e["pick"] + o["episodes"] == e["budget"]
    else:
        assert spent == [e["budget"]]


def test_pick_keeps_the_policy_whose_pick_episodes_did_best() -> None:
    post = torch.tensor([[[1.0, 5.0]], [[3.0, 2.0]]])  # (P=2, R=1, T=2)
    pre = torch.tensor([[[0.0, 9.0]], [[1.0, -9.0]]])
    few = maml.FewShot(pre, post)
    assert few.picked().tolist() == [3.0, 5.0] and few.oracle().tolist() == [3.0, 5.0]
    few = maml.FewShot(-pre, post)
    assert few.picked().tolist() == [1.0, 2.0]


# --- the controls and the held-out goals ---------------------------------------------------------


def test_reweighted_maml_trains_on_a_fixed_shift_of_p0_toward_the_rare_goals() -> None:
    cfg = resolve("girl", ["preset=smoke", "method=maml_reweighted"])
    method = started(cfg)
    fam, eps = method.family, cfg["methods"]["maml_reweighted"]["eps"]
    p0, q = fam.p0.double().numpy(), method.pop.adversary.copy()
    rare = fam.rare.numpy()
    assert np.abs(q - p0).sum() == pytest.approx(eps) and q.sum() == pytest.approx(1.0)
    assert q[rare].sum() == pytest.approx(p0[rare].sum() + eps / 2)  # the mass went to the rare goals
    assert np.allclose(q[rare], q[rare][0])  # spread evenly
    seen = []
    learner_step = method.pop.learner.step
    method.pop.learner.step = lambda w: seen.append(w.numpy().copy()) or learner_step(w)
    while not method.step():
        pass
    assert seen and all(np.allclose(w, q) for w in seen)  # every meta-step, no game moved it
    assert method.results()["adversary_shift"] == pytest.approx(eps)


def test_girl_rprd_solves_its_restricted_games_with_r_prd() -> None:
    def solutions(name: str) -> list:
        method = started(resolve("girl", ["preset=smoke", f"method={name}"]))
        while not method.step():
            pass
        return method.pop.solutions

    assert all(sol.iterates for sol in solutions("girl_rprd"))  # R-PRD's answers carry iterates
    assert not any(sol.iterates for sol in solutions("girl"))  # the LP's do not


def test_heldout_goals_include_the_rare_sector() -> None:
    d = cpu()["data"]
    goals, p0, held, held_p0 = envs.point_goals(d)
    fam = build(d, 20)
    far = held[fam.heldout_rare]
    assert len(far) == d["heldout_far"] >= 1
    angles = torch.atan2(far[:, 1], far[:, 0])
    rare_angles = torch.atan2(goals[fam.rare][:, 1], goals[fam.rare][:, 0])
    assert rare_angles.min() < angles.min() and angles.max() < rare_angles.max()  # between rare goals
    assert torch.cdist(far, goals).min() > 0.3  # not a training goal
    assert held_p0[fam.heldout_rare][0] / held_p0.max() == pytest.approx(d["far_weight"])


# --- R-PRD's properties ------------------------------------------------------------------------


def test_r_prd_stays_in_the_ball_and_eps0_returns_p0_on_psro_matrices() -> None:
    pop = small_population(0.6, policies=2, seed=1)
    p0 = pop.p0.double().numpy()
    m = pop.payoff()
    for eps in (0.3, 0.6, 2.0):
        sol = prd.r_prd(m, p0, eps, 300, 1.0, 1e-4, 10)
        for q in (*sol.iterates, sol.adversary):
            assert abs(q.sum() - 1) < 1e-12 and q.min() >= 0 and np.abs(q - p0).sum() <= eps + 1e-12
    assert np.abs(sol.adversary - p0).sum() > 0.1  # it did move: the check can fail
    zero = prd.r_prd(m, p0, 0.0, 300, 1.0, 1e-4, 10)
    assert max(np.abs(q - p0).max() for q in (*zero.iterates, zero.adversary)) < 1e-12


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


def test_worst_case_matches_the_lp_with_one_policy() -> None:
    for eps in (0.0, 0.1, 0.5, 2.0):
        r = RNG.normal(size=7)
        p0 = RNG.dirichlet(np.ones(7))
        assert prd.worst_case(r, p0, eps) == pytest.approx(
            float(r @ prd.lp_minimax(r[None], p0, eps).adversary)
        )
    assert prd.worst_case(np.array([1.0, -1.0]), np.array([0.5, 0.5]), 2.0) == pytest.approx(-1.0)


# --- the family, the inner step, configs --------------------------------------------------------


def test_point_nav_matches_its_gymnasium_twin() -> None:
    pytest.importorskip("gymnasium")
    d = cpu()["data"]
    goals, p0, held, _ = envs.point_goals(d)
    assert len(goals) == d["near"] + d["far"] and len(held) == d["heldout"] + d["heldout_far"]
    assert p0.sum().item() == pytest.approx(1.0) and p0[-1] < p0[0]  # far goals are rare
    assert goals[-1].norm().item() == pytest.approx(d["far_radius"], rel=1e-5)
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
    c = cpu()
    fam = build(c["data"], 20)
    gen = torch.Generator().manual_seed(0)
    pol = maml.init_policy(2, 2, 16, gen)
    tasks = torch.arange(len(fam.p0))
    batch = maml.expand(pol, len(tasks))
    before = maml.rollout(fam.train, batch, 0.37, tasks, 200, 20, gen)
    adapted = maml.adapt(batch, before, 0.05)
    after = maml.rollout(fam.train, adapted, 0.37, tasks, 200, 20, gen)
    assert after.returns.mean() > before.returns.mean() + 0.5
    assert list(fam.rare) == [9, 10, 11]


def started(cfg: dict) -> GiRLMethod:
    method = GiRLMethod(cfg, **cfg["methods"][cfg["method"]])
    data = TaskFamilyModule(cfg)
    data.setup("fit")
    method.setup(data)
    return method


def finish(method: GiRLMethod) -> dict[str, float]:
    while not method.step():
        pass
    return method.results()


def test_a_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path) -> None:
    cfg = resolve("girl", ["preset=smoke", "method=girl"])
    whole = finish(started(cfg))
    part = started(cfg)
    for _ in range(3):  # into the second PSRO round (smoke: 8 meta-steps, 4 policies)
        assert not part.step()
    part.save(tmp_path / "loop.ckpt")
    resumed = started(cfg)
    resumed.restore(tmp_path / "loop.ckpt")
    assert len(resumed.pop.policies) == 1
    assert finish(resumed) == whole


def test_bad_configs_are_one_clear_error(bench_run, capsys) -> None:
    code, _ = bench_run("girl", "method=girl", "preset=smoke", "data.source=atari")
    assert code == 2 and "data.source" in capsys.readouterr().err
    code, _ = bench_run("girl", "method=girl", "preset=smoke", "optim.meta_steps=2")
    assert code == 2 and "meta_steps" in capsys.readouterr().err
    code, _ = bench_run("girl", "method=girl", "preset=smoke", "methods.girl.solver=nash")
    assert code == 2 and "solver" in capsys.readouterr().err
    code, _ = bench_run("girl", "method=girl", "preset=smoke", "eval.budget=5")
    assert code == 2 and "eval.budget" in capsys.readouterr().err
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
    """The paper preset's whole pipeline (PSRO rounds, MAML oracle, LP and R-PRD, pick-then-adapt)
    on the MuJoCo family, shrunk to a few steps: a record with finite returns."""
    tiny = ["optim.horizon=5", "optim.meta_steps=8", "optim.episodes=2", "optim.eval_episodes=2"]
    tiny += ["game.steps=20", "eval.episodes=2", "eval.repeats=1", "eval.budget=6"]
    code, record = bench_run("girl", "method=girl", "preset=paper", "logger=none", *tiny)
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert record["config"]["data"]["source"] == "cheetah"
    assert all(math.isfinite(v) for v in record["metrics"].values())
    assert record["metrics"]["test/test_episodes"] == 6  # 4 policies x 1 pick + 2 adapting
