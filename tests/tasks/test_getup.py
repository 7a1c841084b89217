"""getup: the tolerance reward, fallen starts (prone and supine, at rest, low head), strength
scaling, the curriculum's rules (decrease, floor, stall undo-and-freeze), the time warp, the PD
servos, success and strategy counting, the 3-D humanoid of the paper preset on the real asset,
and bad configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.getup import fallen
from bench.tasks.getup.curriculum import Curriculum
from bench.tasks.getup.env import GetUpEnv, tolerance
from bench.tasks.getup.evaluate import stood, strategies
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
        assert env.head_height() < 0.6 * d["stand_height"] and env.reward() < 1e-3
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
    hold = 2 * (env.model.qpos0[env.act_q] - env.lo) / (env.hi - env.lo) - 1  # targets = pose
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 1.0)
    for _ in range(30):
        env.step(hold)
    assert env.head_height() > d["stand_height"]
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 0.5)
    env.step(-np.ones(env.act_dim))  # far targets: the force saturates at the scaled cap
    assert np.abs(env.data.actuator_force).max() <= 0.5 * env.force_max.max() + 1e-9


def test_curriculum_lowers_to_the_floor_and_stall_undoes_and_freezes() -> None:
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
    rng = np.random.default_rng(0)
    draws = [Curriculum(0.9, 0.6, 0, 0.95, 1, 1, 1).sample(rng, 0.5) for _ in range(200)]
    assert min(draws) == 0.6 and max(draws) == 1.0


def test_time_warp_slows_the_motion_by_kappa() -> None:
    dt = 0.016
    t = np.arange(50) * dt
    motion = np.stack([np.sin(3 * t), t**2], 1)
    ref = Reference(motion, dt)
    q, v = ref.warped(0.25, dt)
    assert len(q) == 4 * (len(motion) - 1) + 1
    assert np.allclose(q[::4], motion, atol=1e-9) and np.allclose(q[-1], motion[-1])
    assert np.allclose(v[::4, 1], 0.25 * 2 * t, atol=1e-3)  # velocities slowed too


def test_tracking_a_held_standing_pose_is_exact_and_succeeds_at_every_kappa() -> None:
    d = data()
    cfg = resolve("getup", ["preset=smoke"])
    env = GetUpEnv(d, "pd")
    still = np.repeat(env.model.qpos0[None], 30, 0)
    track = Tracking(env, [Reference(still, env.dt)], cfg["tracking"], 1.0)
    hold = 2 * (env.model.qpos0[env.act_q] - env.lo) / (env.hi - env.lo) - 1
    out = evaluate_tracking(track, lambda obs: hold, [0.2, 0.8], 1.3, 0.1)
    assert out["track_success_k0p2"] == 1.0 and out["track_success_k0p8"] == 1.0
    assert out["track_err_k0p2"] < 0.05
    limp = evaluate_tracking(track, lambda obs: -np.ones(env.act_dim), [0.5], 1.3, 0.1)
    assert limp["track_err_k0p5"] > 10 * out["track_err_k0p2"]  # the error can fail
    obs = track.reset(np.random.default_rng(0))
    assert obs.shape == (track.obs_dim,) and 0.2 <= track.kappa <= 0.8


def test_success_needs_the_head_held_and_strategies_cluster() -> None:
    head = np.array([0.2, 0.5, 1.4, 1.4, 0.3, 1.4, 1.4, 1.4, 1.4])
    assert stood(head, 1.3, 3) == 5 and stood(head, 1.3, 2) == 2 and stood(head, 1.3, 5) is None
    a, b = np.linspace(0, 1, 20), np.linspace(1, 0, 20)
    feats = [a, a + 0.01, b, b - 0.01, a + 0.02]
    assert strategies(feats, 0.15) == 2 and strategies(feats[:1], 0.15) == 1


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (["data.character=robot"], "data.character"),
        (["data.source=mocap"], "data.source"),
        (["curriculum.floor=1.5"], "curriculum.floor"),
        (["optim.batch_size=100000"], "batch_size"),
    ],
)
def test_bad_configs_raise_one_clear_error(bench_run, over: list[str], match: str) -> None:
    from bench.run import execute

    with pytest.raises(BenchError, match=match):
        execute("getup", ["preset=smoke", "method=staged", *over], force=True)
