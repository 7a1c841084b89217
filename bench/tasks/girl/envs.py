"""Task families behind one batched interface: ``reset(tasks, n)`` gives observations shaped
``(T, n, obs_dim)`` for ``n`` episodes of each task in ``tasks`` (indices into the family), and
``step(actions)`` gives ``(obs, reward)`` with reward ``(T, n)``.

- ``PointNav``: 2-D point navigation in pure torch (all episodes stepped as one tensor). The goal is
  not observed: the policy finds it by adapting. Reward ``-||pos - goal|| - ctrl |a|^2``.
- ``PointNavGym``: the same task as a ``gymnasium.Env``, for the vector-env speed comparison.
- ``CheetahVel``: gymnasium's MuJoCo HalfCheetah with the velocity-task reward
  ``-|v - v_goal| - ctrl |a|^2``; negative goals are the backward ("direction") tasks.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError


def point_goals(d: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train goals, their nominal distribution p0, held-out goals, theirs) of the navigation
    family: ``near`` common goals at radius ``near_radius``, spread evenly over an arc of
    ``near_arc`` radians around the angle ``near_angle`` (2 pi: a full ring), and ``far`` rare ones
    (weight ``far_weight`` relative to a common one) at ``far_radius``, side by side ``far_spread``
    radians apart around ``far_angle``, so that one policy can learn to serve them all. Held out:
    ``heldout`` common goals at ``heldout_radius`` on the common arc, between the training ones,
    and ``heldout_far`` rare ones at ``heldout_far_radius`` in the rare sector, between the rare
    training goals; weighted as the training goals of their kind."""
    near, far, k, kf = d["near"], d["far"], d["heldout"], d["heldout_far"]
    if near < 1 or far < 0 or k < 0 or kf < 0 or k + kf < 1:
        raise BenchError(
            f"data.near={near} must be >= 1, data.far={far}, data.heldout={k} and "
            f"data.heldout_far={kf} >= 0 with at least one held-out goal"
        )

    def arc(n: int, centre: float, spacing: float) -> torch.Tensor:
        return centre + (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * spacing

    def at(angles: torch.Tensor, radius: float) -> torch.Tensor:
        return radius * torch.stack([angles.cos(), angles.sin()], 1)

    def weights(n_common: int, n_rare: int) -> torch.Tensor:
        w = torch.cat([torch.ones(n_common), torch.full((n_rare,), float(d["far_weight"]))]).double()
        return w / w.sum()

    common = arc(near, d["near_angle"], d["near_arc"] / near)
    rare = arc(far, d["far_angle"], d["far_spread"])
    goals = torch.cat([at(common, d["near_radius"]), at(rare, d["far_radius"])])
    held = torch.cat(
        [
            at(arc(k, d["near_angle"], d["near_arc"] / max(k, 1)), d["heldout_radius"]),
            at(arc(kf, d["far_angle"], d["far_spread"]), d["heldout_far_radius"]),
        ]
    )
    return goals.float(), weights(near, far), held.float(), weights(k, kf)


class PointNav:
    """Batched 2-D navigation to one of ``goals``, start at the origin, actions clipped per axis."""

    obs_dim, act_dim = 2, 2

    def __init__(self, goals: torch.Tensor, horizon: int, max_step: float, ctrl: float) -> None:
        self.goals, self.horizon, self.max_step, self.ctrl = goals, horizon, max_step, ctrl

    def reset(self, tasks: torch.Tensor, n: int) -> torch.Tensor:
        self.goal = self.goals[tasks][:, None, :]
        self.pos = torch.zeros(len(tasks), n, 2)
        return self.pos

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = action.clamp(-self.max_step, self.max_step)
        self.pos = self.pos + a
        reward = -(self.pos - self.goal).norm(dim=-1) - self.ctrl * a.pow(2).sum(-1)
        return self.pos, reward


def point_nav_gym(goal: np.ndarray, horizon: int, max_step: float, ctrl: float):
    """One navigation episode as a ``gymnasium.Env`` (imported lazily: gymnasium is optional)."""
    import gymnasium as gym

    class PointNavGym(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        action_space = gym.spaces.Box(-max_step, max_step, (2,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.pos, self.t = np.zeros(2, np.float32), 0
            return self.pos.copy(), {}

        def step(self, action):
            a = np.clip(action, -max_step, max_step)
            self.pos = self.pos + a
            self.t += 1
            reward = -float(np.linalg.norm(self.pos - goal)) - ctrl * float(a @ a)
            return self.pos.copy(), reward, False, self.t >= horizon, {}

    return PointNavGym()


def require_mujoco():
    """gymnasium with MuJoCo, or one clear error saying how to get it."""
    try:
        import gymnasium as gym
        import mujoco  # noqa: F401
    except ImportError:
        raise BenchError("data.source=cheetah needs MuJoCo: pip install 'gymnasium[mujoco]'") from None
    return gym


class CheetahVel:
    """HalfCheetah velocity tasks on gymnasium, one MuJoCo env per episode of the batch."""

    def __init__(self, goals: torch.Tensor, horizon: int, ctrl: float, env_id: str) -> None:
        self.goals, self.horizon, self.ctrl, self.env_id = goals, horizon, ctrl, env_id
        self.envs: list = []
        probe = require_mujoco().make(env_id)
        self.obs_dim = probe.observation_space.shape[0]
        self.act_dim = probe.action_space.shape[0]
        probe.close()

    def reset(self, tasks: torch.Tensor, n: int) -> torch.Tensor:
        self.shape, count = (len(tasks), n), len(tasks) * n
        while len(self.envs) < count:
            self.envs.append(require_mujoco().make(self.env_id))
        self.v_goal = self.goals[tasks][:, None].expand(self.shape).reshape(-1).numpy()
        seeds = np.random.randint(0, 2**31 - 1, count)
        obs = [e.reset(seed=int(s))[0] for e, s in zip(self.envs[:count], seeds, strict=True)]
        return torch.as_tensor(np.stack(obs), dtype=torch.float32).reshape(*self.shape, -1)

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = action.clamp(-1.0, 1.0).reshape(-1, self.act_dim).numpy()
        obs, vel = [], []
        for e, ai in zip(self.envs, a, strict=False):
            o, _, _, _, info = e.step(ai)
            obs.append(o)
            vel.append(info["x_velocity"])
        reward = -np.abs(np.asarray(vel) - self.v_goal) - self.ctrl * (a**2).sum(-1)
        obs_t = torch.as_tensor(np.stack(obs), dtype=torch.float32).reshape(*self.shape, -1)
        return obs_t, torch.as_tensor(reward, dtype=torch.float32).reshape(self.shape)
