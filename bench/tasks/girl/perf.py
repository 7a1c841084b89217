"""girl's figure: environment steps per second of the batched torch navigation tasks against a
gymnasium ``SyncVectorEnv`` of the same task, both stepping ``ENVS`` episodes with random actions
on one thread. Goal: >= 10x."""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.tasks.girl import envs

ENVS, HORIZON, MAX_STEP, CTRL = 1024, 20, 0.2, 0.05


def batched(steps: int, count: int = ENVS) -> float:
    goals = torch.randn(12, 2)
    env = envs.PointNav(goals, HORIZON, MAX_STEP, CTRL)
    tasks = torch.arange(count) % len(goals)
    env.reset(tasks, 1)
    actions = torch.randn(steps, count, 1, 2)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * count / (time.perf_counter() - t0)


def vector(steps: int, count: int = ENVS) -> float:
    import gymnasium as gym

    goals = np.random.default_rng(0).normal(size=(12, 2))
    fns = [lambda g=goals[i % 12]: envs.point_nav_gym(g, HORIZON, MAX_STEP, CTRL) for i in range(count)]
    vec = gym.vector.SyncVectorEnv(fns)
    vec.reset(seed=0)
    actions = np.random.default_rng(1).normal(size=(steps, count, 2)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        vec.step(a)
    return steps * count / (time.perf_counter() - t0)


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: 16 episodes, four steps (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    count, slow_steps, fast_steps = (16, 4, 4) if tiny else (ENVS, 40, 400)
    torch.set_num_threads(1)
    try:
        slow = vector(slow_steps, count)
    except ImportError:
        print("girl: gymnasium is not installed, no vector-env baseline (pip install gymnasium)")
        return
    fast = batched(fast_steps, count)
    print(
        f"girl navigation, {count} episodes, one thread: batched torch {fast:,.0f} steps/s, gymnasium "
        f"SyncVectorEnv {slow:,.0f} steps/s; ratio {fast / slow:.1f}x (goal >= 10x)"
    )


if __name__ == "__main__":
    main()
