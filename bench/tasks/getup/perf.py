"""getup's figure: simulation steps per second of the get-up environment (random actions, reward
and observation included, one thread) against gymnasium's HumanoidStandup-v5 in the same run."""

from __future__ import annotations

import time

import numpy as np

from bench.config import resolve
from bench.tasks.getup.env import GetUpEnv

STEPS = 2000


def ours(preset: str, steps: int = STEPS) -> tuple[float, float]:
    """(env steps/s, seconds of simulated time per wall second) of the preset's character."""
    d = resolve("getup", [f"preset={preset}"])["data"]
    env, rng = GetUpEnv(d), np.random.default_rng(0)
    env.reset(env.model.qpos0, np.zeros(env.model.nv), 1.0)
    actions = rng.uniform(-1, 1, (steps, env.act_dim))
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    rate = steps / (time.perf_counter() - t0)
    return rate, rate * env.dt


def gymnasium_standup(steps: int = STEPS) -> tuple[float, float]:
    import gymnasium as gym

    env = gym.make("HumanoidStandup-v5")
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-0.4, 0.4, (steps, env.action_space.shape[0]))
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    rate = steps / (time.perf_counter() - t0)
    return rate, rate * env.unwrapped.dt


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: twenty steps (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    import torch

    steps = 20 if tiny else STEPS
    torch.set_num_threads(1)
    base, base_sim = gymnasium_standup(steps)
    for preset, name in (("paper", "3-D humanoid (paper)"), ("cpu", "planar walker (cpu)")):
        rate, sim = ours(preset, steps)
        print(
            f"getup {name}: {rate:,.0f} env steps/s ({sim:.1f} sim s/s) vs gymnasium HumanoidStandup-v5 "
            f"{base:,.0f} steps/s ({base_sim:.1f} sim s/s); ratio {rate / base:.2f}x steps, "
            f"{sim / base_sim:.2f}x sim time"
        )


if __name__ == "__main__":
    main()
