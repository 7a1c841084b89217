"""getup: the official reward (its tolerances, the upright term's centre-of-mass switch), the
episode length and gate as official, fallen starts (prone and supine, at rest, low head), strength
scaling, the curriculum's rules (decrease, floor, stall undo-and-freeze below full strength only),
the time warp, stage 3 as official (residual PD targets, standing phase, early termination,
terminals in the replay, its own discount, its training returns logged), the PD servos in control
units, the official action duration, action bound and temperature loss, the heading-free 3-D
observation, from scratch trained at the strength the seed's curriculum reached, success and
strategy counting, the 3-D humanoid of the paper preset on the real asset, presets that set only
keys the code reads, and bad configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.getup import fallen
from bench.tasks.getup.curriculum import Curriculum
from bench.tasks.getup.data import GetUpData
from bench.tasks.getup.env import GetUpEnv, tolerance
from bench.tasks.getup.evaluate import stood, strategies
from bench.tasks.getup.method import GetUpMethod
from bench.tasks.getup.model import Actor, Agent, Replay
from bench.tasks.getup.tracking import Reference, Tracking, evaluate_tracking

pytest.importorskip("mujoco")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))


def data(preset: str = "smoke", *over: str) -> dict:
    return resolve("getup", [f"preset={preset}", *over])["data"]


def test_tolerance_is_one_inside_and_falls_off_outside() -> None:
    assert tolerance(2.0, 1.0, np.inf, 0.5) == 1.0
    assert tolerance(0.5, 1.0, np.inf, 0.5) == pytest.approx(0.1)  # value at the margin
    assert tolerance(0.75, 1.0, np.inf, 0.5) > tolerance(0.5, 1.0, np.inf, 0.5)
    assert tolerance(-0.9, 0.9, np.inf, 1.9, "linear", 0.0) == pytest.approx(1 - 1.8 / 1.9)
    assert tolerance(-1.0, 0.9, np.inf, 1.9, "linear", 0.0) == 0.0
    # dm_control's long tail and quadratic, as the official reward uses them
    assert tolerance(1.0, 1.55, np.inf, 1.55 / 4, "long_tail", 0.2) == pytest.approx(
        1 / (4 * (0.55 / 0.3875) ** 2 + 1)
    )
    assert tolerance(1.55 - 1.55 / 4, 1.55, np.inf, 1.55 / 4, "long_tail", 0.2) == pytest.approx(0.2)
    assert tolerance(0.9 + 0.19, 0.0, 0.9, 0.38, "quadratic", 0.0) == pytest.approx(0.75)
    assert tolerance(0.9 + 0.38, 0.0, 0.9, 0.38, "quadratic", 0.0) == 0.0
    assert tolerance(0.5, 0.0, 0.9, 0.38, "quadratic", 0.0) == 1.0


def test_the_standing_term_is_the_official_long_tail_not_a_vanishing_gaussian() -> None:
    # The case: head at 0.5 m, stand height 1.55 m (dm_control's humanoid)
    assert tolerance(0.5, 1.55, np.inf, 1.55 / 4, "long_tail", 0.2) == pytest.approx(0.035, abs=0.005)
    assert tolerance(0.5, 1.55, np.inf, 1.55 / 4, "gaussian", 0.1) < 1e-6


@pytest.mark.parametrize("preset", ["cpu", "paper"])
def test_episodes_and_the_gate_are_the_official_ones(preset: str) -> None:
    cfg = resolve("getup", [f"preset={preset}"])
    assert cfg["optim"]["horizon"] == cfg["eval"]["steps"] == 250  # official _done: 250 steps
    # the official threshold 60 of a maximum return of 250 (reward <= 1 per step): 24%
    assert cfg["curriculum"]["threshold"] / cfg["optim"]["horizon"] == pytest.approx(0.24)
    assert cfg["curriculum"]["gate"] == ("mean" if preset == "cpu" else "min")
    assert cfg["optim"]["gamma"] == 0.97


def test_reward_is_the_official_product_and_upright_counts_only_with_the_com_up() -> None:
    d = data("cpu")
    r, h = d["reward"], d["stand_height"]
    env = GetUpEnv(d)
    pool = fallen.build_pool(d, 4, 0)
    for q, v in zip(pool["qpos"], pool["qvel"], strict=True):
        env.set_state(q, v)
        assert env.com_height() < r["upright_com"]  # lying: the upright term is 1 whatever the torso
        env.mj.mj_subtreeVel(env.model, env.data)
        still = tolerance(env.data.subtree_linvel[1][:1], -0.3, 0.3, 1.2).mean()
        gap = abs(env.data.xpos[env.feet[0]][0] - env.data.xpos[env.feet[1]][0])
        close = max(0.0, 1 - (max(0.0, gap - 0.9) / 0.38) ** 2)
        standing = 1 / (4 * ((h - env.head_height()) / (h / 4)) ** 2 + 1)
        assert env.reward() == pytest.approx(standing * still * close)
    # standing but bent forward: the centre of mass is up, so the upright term counts
    q = env.model.qpos0.copy()
    q[2] = 1.2  # torso pitched ~70 degrees
    env.set_state(q, np.zeros(env.model.nv))
    assert env.com_height() > r["upright_com"]
    up = env.upright()
    expected = max(0.0, 1 - (0.9 - up) / 1.9) * tolerance(
        env.head_height(), h, np.inf, h / 4, "long_tail", 0.2
    )
    assert up < 0.9 and env.reward() == pytest.approx(expected)


@pytest.mark.parametrize("character", ["walker", "humanoid"])
def test_standing_pays_one_and_fallen_starts_lie_still_both_ways(character: str) -> None:
    d = data("paper" if character == "humanoid" else "cpu")
    env = GetUpEnv(d)
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 1.0)
    assert env.head_height() > d["stand_height"] and env.reward() == pytest.approx(1.0)
    pool = fallen.build_pool(d, 8, 0)
    assert pool["prone"].any() and (~pool["prone"]).any()
    for q, v in zip(pool["qpos"], pool["qvel"], strict=True):
        env.set_state(q, v)
        # long tail: at most 1 / (4 x 1.6^2 + 1) = 0.089 with the head below 0.6 x stand height
        assert env.head_height() < 0.6 * d["stand_height"] and env.reward() < 0.09
        assert np.abs(v).max() < 2.0  # 2 s of zero action: at rest, or nearly
    obs, r = env.step(np.zeros(env.act_dim))
    assert obs.shape == (env.obs_dim,) and np.isfinite(obs).all() and 0 <= r <= 1


def test_strength_scales_the_torques_and_is_observed() -> None:
    env = GetUpEnv(data())
    pool = fallen.build_pool(data(), 1, 0)
    for s in (1.0, 0.5):
        obs = env.reset(pool["qpos"][0], pool["qvel"][0], s)
        assert obs[-1] == pytest.approx(s)
        env.step(np.ones(env.act_dim))
        assert np.allclose(env.data.ctrl, s * env.ctrl_max)


def test_pd_servos_hold_the_standing_pose_and_weaken_with_strength() -> None:
    d = data()
    env = GetUpEnv(d, "pd")
    pose = env.model.qpos0[env.act_q]  # pd mode: the action is the target angles
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 1.0)
    for _ in range(30):
        env.step(pose)
    assert env.head_height() > d["stand_height"]
    assert np.allclose(env.data.ctrl, pose)
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 0.5)
    env.step(pose + 3.0)  # far targets: the force saturates at the scaled cap
    assert np.abs(env.data.actuator_force).max() <= 0.5 * env.force_max.max() + 1e-9
    assert np.abs(env.data.actuator_force).max() >= 0.5 * env.force_max.max() - 1e-6


def test_curriculum_lowers_to_the_floor_and_stall_undoes_and_freezes_below_full_strength() -> None:
    c = Curriculum(1.0, 0.8, 10.0, 0.95, 100, 1000, 1.5)
    c.update(11.0, 50)
    assert c.strength == pytest.approx(0.95) and c.active
    for t in range(60, 200, 10):
        c.update(11.0, t)
    assert c.strength == pytest.approx(0.8) and not c.active  # max(floor, 0.95 s)
    c = Curriculum(1.0, 0.5, 10.0, 0.95, 100, 1000, 1.5)
    c.update(11.0, 10)
    c.update(11.0, 20)  # 0.9025; last gap 10 steps
    assert c.update(5.0, 110) and c.strength == pytest.approx(0.9025)  # 90 steps < stall_min
    assert not c.update(5.0, 121)  # 101 > max(100, 1.5 * 10): undo one step and freeze
    assert c.stalled and c.strength == pytest.approx(0.95)
    c.update(100.0, 200)
    assert c.strength == pytest.approx(0.95)
    # At full strength the official rule never freezes (nothing to undo): it keeps testing.
    c = Curriculum(1.0, 0.5, 10.0, 0.95, 100, 1000, 1.5)
    for t in range(100, 5000, 100):
        assert c.update(5.0, t)
    assert c.strength == 1.0 and c.active and not c.stalled
    assert c.update(11.0, 5000) and c.strength == pytest.approx(0.95)  # and still decreases later
    assert c.update(5.0, 6000) and c.active  # 1000 steps: not past min(stall_max, 1.5 x 5000)
    assert not c.update(5.0, 6001) and c.stalled and c.strength == pytest.approx(1.0)  # undone
    rng = np.random.default_rng(0)
    draws = [Curriculum(0.9, 0.6, 0, 0.95, 1, 1, 1).sample(rng, 0.5) for _ in range(200)]
    assert min(draws) == 0.6 and max(draws) == 1.0


def test_time_warp_slows_the_motion_by_kappa() -> None:
    dt = 0.016
    t = np.arange(50) * dt
    motion = np.stack([np.sin(3 * t), t**2], 1)
    ref = Reference({"qpos": motion, "qvel": np.stack([3 * np.cos(3 * t), 2 * t], 1)}, dt)
    w = ref.warped(0.25, dt)
    assert len(w["qpos"]) == 4 * (len(motion) - 1) + 1
    assert np.allclose(w["qpos"][::4], motion, atol=1e-9) and np.allclose(w["qpos"][-1], motion[-1])
    assert np.allclose(w["qvel"][::4, 1], 0.25 * 2 * t, atol=1e-3)  # velocities slowed too


def standing_track(n: int = 20, com_shift: float = 0.0) -> Tracking:
    """A reference that holds the standing pose (its centre of mass shifted up by ``com_shift``),
    tracked at full strength."""
    cfg = resolve("getup", ["preset=smoke"])
    env = GetUpEnv(cfg["data"], "pd")
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 1.0)
    frames = {
        "qpos": np.repeat(env.model.qpos0[None], n, 0),
        "qvel": np.zeros((n, env.model.nv)),
        "com": np.full((n, 1), env.com_height() + com_shift),
        "ori": np.repeat(env.orientation()[None], n, 0),
    }
    t = cfg["tracking"]
    return Tracking(env, [Reference(frames, env.dt)], t, cfg["data"]["pd"], t["stand_com"])


def test_stage3_is_residual_on_the_reference_then_stands_for_the_official_steps() -> None:
    track = standing_track()
    obs = track.start(track.refs[0], 0.5, 0)
    assert obs.shape == (track.obs_dim,) and track.length == 39  # 19 frame gaps, twice as slow
    a = np.full(track.env.act_dim, 0.5)
    track.step(a)  # the PD target is the reference pose plus the residual
    assert np.allclose(track.env.data.ctrl, track.ref["qpos"][0][track.joints] + 0.5 * track.t["residual"])
    track.start(track.refs[0], 0.5, 0)
    steps, end, rewards = 0, False, []
    while not end:
        _, r, terminal, end = track.step(np.zeros(track.env.act_dim))
        steps, rewards = steps + 1, rewards + [r]
    assert not terminal and steps == track.length + track.t["stand_steps"]
    assert min(rewards[: track.length]) > 0.6 and min(rewards[track.length :]) > 0.3
    kd = -track.env.model.actuator_biasprm[:, 2] / track.env.gear
    assert np.allclose(kd, track.pd["kd_stand"])  # damping doubles in the standing phase


def test_stage3_ends_early_when_the_com_leaves_the_reference_and_success_can_fail() -> None:
    track = standing_track()
    ok = evaluate_tracking(track, lambda obs: np.zeros(track.env.act_dim), [0.2, 0.8], 1.3)
    assert ok["track_success_k0p2"] == 1.0 and ok["track_success_k0p8"] == 1.0
    assert ok["track_err_k0p2"] < 0.1
    limp = np.full(track.env.act_dim, -1.0)
    high = standing_track(60, com_shift=0.3)
    high.start(high.refs[0], 0.8, 0)  # the reference's com 0.3 m up: within com_tol, then not
    _, _, terminal, _ = high.step(np.zeros(high.env.act_dim))
    assert not terminal
    high.ref["com"] += high.t["com_tol"]
    _, _, terminal, end = high.step(np.zeros(high.env.act_dim))
    assert terminal and end and high.k < high.length  # ended while tracking
    bad = evaluate_tracking(track, lambda obs: limp, [0.8], 1.3)
    assert bad["track_success_k0p8"] == 0.0 and bad["track_err_k0p8"] > 5 * ok["track_err_k0p8"]
    track.reset(np.random.default_rng(0))
    assert 0.2 <= track.kappa <= 0.8


def test_replay_marks_terminals_so_sac_does_not_bootstrap_through_them() -> None:
    replay = Replay(3, 2, 4)
    replay.add(np.zeros(3), np.zeros(2), 1.0, np.ones(3))
    replay.add(np.zeros(3), np.zeros(2), 1.0, np.ones(3), terminal=True)
    *_, terminal = replay.sample(64, torch.Generator().manual_seed(0))
    assert set(terminal.tolist()) == {0.0, 1.0}


def test_success_needs_the_head_held_and_strategies_cluster() -> None:
    head = np.array([0.2, 0.5, 1.4, 1.4, 0.3, 1.4, 1.4, 1.4, 1.4])
    assert stood(head, 1.3, 3) == 5 and stood(head, 1.3, 2) == 2 and stood(head, 1.3, 5) is None
    a, b = np.linspace(0, 1, 20), np.linspace(1, 0, 20)
    feats = [a, a + 0.01, b, b - 0.01, a + 0.02]
    assert strategies(feats, 0.15) == 2 and strategies(feats[:1], 0.15) == 1


def started(cfg: dict) -> GetUpMethod:
    method = GetUpMethod(cfg, **cfg["methods"][cfg["method"]])
    data = GetUpData(cfg)
    data.setup("fit")
    torch.manual_seed(cfg["seed"])  # the networks' initialisation, as the run seeds it
    method.setup(data)
    return method


def finish(method: GetUpMethod) -> dict[str, float]:
    while not method.step():
        pass
    return method.results()


def test_a_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    cfg = resolve("getup", ["preset=smoke", "method=weak_from_scratch"])
    whole = finish(started(cfg))
    part = started(cfg)
    for _ in range(3):  # 150 steps: SAC updating (from 64), in the middle of an episode (40 steps)
        assert not part.step()
    assert part.updates > 0 and part.obs is not None
    part.save(tmp_path / "loop.ckpt")
    resumed = started(cfg)
    resumed.restore(tmp_path / "loop.ckpt")
    assert resumed.t == 150
    assert finish(resumed) == whole


def test_a_run_continuing_a_cached_stage1_ends_as_the_run_that_built_it() -> None:
    """A staged run reading stage 1 from the cache (with its generators' states) goes on as the
    run that trained stage 1 itself did: a result does not depend on which method ran first."""
    cfg = resolve("getup", ["preset=smoke", "method=staged", "methods.staged.phases=[strong,curriculum]"])
    built = finish(started(cfg))
    reused = started(cfg)
    assert reused.phase == 1  # stage 1 came from the cache
    assert finish(reused) == built


def test_each_seed_trains_on_its_own_falls_and_tests_on_the_same() -> None:
    (train0, test0), (train1, test1) = (fallen.pools(data(), seed) for seed in (0, 1))
    assert not np.array_equal(train0["qpos"], train1["qpos"])
    assert np.array_equal(test0["qpos"], test1["qpos"])


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (["data.character=robot"], "data.character"),
        (["data.source=mocap"], "data.source"),
        (["curriculum.floor=1.5"], "curriculum.floor"),
        (["optim.batch_size=100000"], "batch_size"),
        (["curriculum.gate=median"], "curriculum.gate"),
        (["optim.update_every=0"], "update_every"),
    ],
)
def test_bad_configs_raise_one_clear_error(bench_run, over: list[str], match: str) -> None:
    from bench.run import execute

    with pytest.raises(BenchError, match=match):
        execute("getup", ["preset=smoke", "method=staged", *over], force=True)


@pytest.mark.parametrize("preset", ["cpu", "paper"])
def test_an_action_lasts_the_official_0p025_s(preset: str) -> None:
    env = GetUpEnv(data(preset))
    assert env.dt == pytest.approx(0.025)  # dm_control's control step, as the official code


def test_the_policy_bounds_the_action_by_the_strength_with_its_density() -> None:
    """The official actor's tanh x power, and the log-density of the scaled action."""
    torch.manual_seed(0)
    bounded, free = Actor(4, 3, [8], (-5.0, 2.0), True), Actor(4, 3, [8], (-5.0, 2.0), False)
    free.load_state_dict(bounded.state_dict())
    obs = torch.randn(64, 4)
    obs[:, -1] = 0.5
    a, logp = bounded(obs, torch.Generator().manual_seed(1))
    a1, logp1 = free(obs, torch.Generator().manual_seed(1))
    assert a.abs().max() <= 0.5 and torch.allclose(a, 0.5 * a1)
    assert torch.allclose(logp, logp1 - 3 * np.log(0.5))
    env = GetUpEnv(data())
    pool = fallen.build_pool(data(), 1, 0)
    env.reset(pool["qpos"][0], pool["qvel"][0], 0.5)
    assert np.abs(env.random_action(np.random.default_rng(0))).max() <= 0.5  # the official warm-up


def test_the_temperature_loss_is_the_official_one_on_alpha() -> None:
    """SAC.py: alpha_loss = (alpha * (-log_pi - target_entropy).detach()).mean(), alpha = exp(log
    alpha): its gradient in log alpha is alpha x the entropy gap (a loss on log alpha: the gap)."""
    agent = Agent(4, 3, {"hidden": [8], "log_std": [-5.0, 2.0], "init_alpha": 0.1}, True)
    logp = torch.tensor([1.0, -2.0, 0.5])
    agent.temperature_loss(logp).backward()
    gap = float((-logp - agent.target_entropy).mean())
    assert float(agent.log_alpha.grad) == pytest.approx(0.1 * gap)


def test_stage3_uses_its_own_discount_and_logs_its_training_episodes(monkeypatch) -> None:
    cfg = resolve("getup", ["preset=smoke", "method=staged", "tracking.gamma=0.5"])
    gammas = []
    original = GetUpMethod.sac_update

    def spy(self, agent, replay, opts, gamma):
        gammas.append((agent is self.agent, gamma))
        return original(self, agent, replay, opts, gamma)

    monkeypatch.setattr(GetUpMethod, "sac_update", spy)
    out = finish(started(cfg))
    assert {g for main, g in gammas if main} == {cfg["optim"]["gamma"]}
    assert {g for main, g in gammas if not main} == {0.5}
    assert out["track_episodes"] >= 1 and out["track_length_first"] >= 1
    assert {"track_return_first", "track_return_last", "track_length_last"} <= out.keys()


def test_from_scratch_trains_at_the_strength_the_seeds_curriculum_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """weak_from_scratch reads the seed's curriculum end from the staged run (or reaches it first
    when no staged run has): the same strength, the same result either way, and a fresh agent."""
    over = ["preset=smoke", "curriculum.decay=0.8"]
    staged_cfg = resolve("getup", [*over, "method=staged", "methods.staged.phases=[strong,curriculum]"])
    staged = finish(started(staged_cfg))
    scratch = started(resolve("getup", [*over, "method=weak_from_scratch"]))
    assert scratch.phase == 2 and scratch.t == 0  # straight to the scratch phase, from nothing
    assert scratch.updates == 0 and len(scratch.replay) == 0 and "stage1_success" not in scratch.info
    assert scratch.cur.strength == staged["strength"] < 1.0
    read = finish(scratch)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "empty"))
    alone = finish(started(resolve("getup", [*over, "method=weak_from_scratch"])))
    assert alone == read and read["strength"] == staged["strength"]


def test_pd_gains_are_in_control_units_of_each_motors_range() -> None:
    """The official PD: kp 1 control unit per rad, a unit the motor's full control (dm_control: gear x
    1); gymnasium's humanoid has a control range of 0.4, so a unit is 0.4 x gear of torque."""
    d = data("paper")
    env = GetUpEnv(d, "pd")
    base = GetUpEnv(d)
    gear, ctrl = base.model.actuator_gear[:, 0], base.ctrl_max
    assert np.allclose(ctrl, 0.4)
    assert np.allclose(env.model.actuator_gainprm[:, 0], d["pd"]["kp"] * gear * ctrl)
    assert np.allclose(env.model.actuator_biasprm[:, 2], -d["pd"]["kd"] * gear * ctrl)
    assert np.allclose(env.force_max, gear * ctrl)


def test_the_3d_observation_is_free_of_the_heading() -> None:
    """dm_control's humanoid observes the torso's vertical and the extremities in its frame, not the
    root quaternion: turning the character about the vertical leaves the observation alone."""
    d = data("paper")
    env = GetUpEnv(d)
    pool = fallen.build_pool(d, 1, 0)
    q, v = pool["qpos"][0].copy(), np.zeros(env.model.nv)
    obs = env.reset(q, v, 1.0)
    turn = fallen.axis_quat(2, 1.0)
    q[3:7] = fallen.quat_mul(turn, q[3:7])
    q[:2] += 3.0
    turned = env.reset(q, v, 1.0)
    assert np.allclose(obs, turned, atol=1e-5)
    assert len(env.extremities()) == 12


def _leaves(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in tree.items():
        path = f"{prefix}{k}"
        out |= _leaves(v, f"{path}.") if isinstance(v, dict) else {path}
    return out


class Reads(dict):
    """A config whose every subscript records its full dotted key path in ``seen``."""

    path, seen = "", set()

    @classmethod
    def wrap(cls, tree: dict, seen: set[str], path: str = "") -> Reads:
        out = cls(
            {k: cls.wrap(v, seen, f"{path}{k}.") if isinstance(v, dict) else v for k, v in tree.items()}
        )
        out.path, out.seen = path, seen
        return out

    def __getitem__(self, key):
        self.seen.add(f"{self.path}{key}")
        return super().__getitem__(key)


TASK_SECTIONS = ("data", "model", "optim", "strength_std", "steps", "curriculum", "tracking", "eval")


def _task_leaves(preset: str) -> set[str]:
    import yaml

    from bench.registry import configs

    own = yaml.safe_load((configs("getup") / f"{preset}.yaml").read_text())
    return _leaves({k: v for k, v in own.items() if k in TASK_SECTIONS})


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_a_preset_sets_only_keys_of_the_cpu_preset(preset: str) -> None:
    """Every task key a preset file sets is a cpu key, by its full dotted path."""
    assert _task_leaves(preset) <= _task_leaves("cpu"), sorted(_task_leaves(preset) - _task_leaves("cpu"))


def test_every_cpu_key_is_read_by_its_full_path() -> None:
    """Runs of every phase and method read every task key of the cpu preset, each by its own
    dotted path (``curriculum.test_states`` is not read because ``data.test_states`` is)."""
    seen: set[str] = set()
    for m in ("staged", "weak_from_scratch", "scratch_at_60"):
        cfg = resolve("getup", ["preset=smoke", f"method={m}"])
        finish(started(Reads.wrap(cfg, seen)))
    unread = sorted(_task_leaves("cpu") - seen)
    assert not unread, unread


def test_the_curriculum_has_no_gate_on_its_last_step() -> None:
    """A pass on stage 2's last step would lower the strength with no training at it: every gate
    comes before the end, and the strength ends at the one the last gate left (every gate passes)."""
    cfg = resolve("getup", ["preset=smoke", "method=staged", "methods.staged.phases=[strong,curriculum]"])
    method = started(cfg)
    out = finish(method)
    end = cfg["steps"]["stage1"] + cfg["steps"]["stage2"]
    assert end % cfg["curriculum"]["interval"] == 0
    steps = [t for t, _, _ in method.cur.history]
    assert steps and max(steps) < end
    assert out["strength"] == pytest.approx(cfg["curriculum"]["decay"] ** len(steps))


def test_scratch_at_a_fixed_strength_sees_the_from_scratch_stream_at_its_own_strength(monkeypatch) -> None:
    """scratch_at_60 is weak_from_scratch's fresh agent (same weights, same generators, same
    episodes) at a fixed 0.6 instead of the seed's curriculum end, and is scored at 0.6."""
    staged = ["preset=smoke", "method=staged", "methods.staged.phases=[strong,curriculum]"]
    finish(started(resolve("getup", staged)))
    starts: list[tuple[bytes, float]] = []
    original = GetUpEnv.reset

    def spy(self, qpos, qvel, strength):
        starts.append((qpos.tobytes(), strength))
        return original(self, qpos, qvel, strength)

    monkeypatch.setattr(GetUpEnv, "reset", spy)
    runs = {}
    for name in ("weak_from_scratch", "scratch_at_60"):
        method = started(resolve("getup", ["preset=smoke", f"method={name}"]))
        assert method.phases[method.phase] == "scratch" and method.t == 0
        init = {k: v.clone() for k, v in method.agent.state_dict().items()}
        starts.clear()
        assert method.step() is False
        runs[name] = (method, init, list(starts))
    (weak, w_init, w_starts), (fixed, f_init, f_starts) = runs["weak_from_scratch"], runs["scratch_at_60"]
    assert all(torch.equal(v, f_init[k]) for k, v in w_init.items())
    assert [q for q, _ in w_starts] == [q for q, _ in f_starts]
    assert fixed.cur.strength == 0.6 and min(s for _, s in f_starts) >= 0.6
    assert weak.cur.strength > 0.6
    assert finish(fixed)["strength"] == 0.6


def test_a_fixed_strength_is_only_for_a_from_scratch_method() -> None:
    cfg = resolve("getup", ["preset=smoke", "method=staged"])
    with pytest.raises(BenchError, match="strength"):
        GetUpMethod(cfg, phases=["strong", "curriculum"], strength=0.6)
