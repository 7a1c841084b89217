"""SAC's networks (squashed-Gaussian actor, twin Q critics with target copies, learned
temperature) and the replay buffer, which lives in the method (preallocated tensors)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def mlp(inp: int, out: int, hidden: list[int]) -> nn.Sequential:
    layers, d = [], inp
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, out))


class Actor(nn.Module):
    """tanh(N(mu, sigma)), times the strength (the observation's last entry) when ``bounded``: the
    official actor's ``tanh x power``, with the log-density of the scaled action (- |A| log power).
    The noise is drawn from the caller's CPU generator, so a run's draws are the same on any device;
    no generator: the mean action."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: list[int], log_std: tuple[float, float], bounded: bool
    ) -> None:
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, hidden)
        self.lo, self.hi = log_std
        self.bounded = bounded

    def forward(
        self, obs: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.net(obs).chunk(2, -1)
        log_std = self.lo + 0.5 * (self.hi - self.lo) * (torch.tanh(log_std) + 1)
        std = log_std.exp()
        u = mu if gen is None else mu + std * torch.randn(mu.shape, generator=gen).to(mu.device)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)  # tanh Jacobian
        if self.bounded:
            power = obs[..., -1:]
            a, logp = a * power, logp - a.shape[-1] * power.squeeze(-1).log()
        return a, logp


class Critic(nn.Module):
    """Two Q networks; ``forward`` returns both."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.q1, self.q2 = mlp(obs_dim + act_dim, 1, hidden), mlp(obs_dim + act_dim, 1, hidden)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, act], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class Agent(nn.Module):
    """SAC's learnable parts; ``target`` is the Polyak-averaged critic copy. ``bounded``: the
    actor scales its action by the observed strength (stages 1 and 2; stage 3 runs at full)."""

    def __init__(self, obs_dim: int, act_dim: int, m: dict, bounded: bool) -> None:
        super().__init__()
        self.actor = Actor(obs_dim, act_dim, m["hidden"], tuple(m["log_std"]), bounded)
        self.critic = Critic(obs_dim, act_dim, m["hidden"])
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(m["init_alpha"])))
        self.target_entropy = -float(act_dim)

    def temperature_loss(self, logp: torch.Tensor) -> torch.Tensor:
        """The official loss (SAC.py): alpha itself times the entropy gap, so log alpha moves by
        alpha x the gap per unit lr."""
        return (self.log_alpha.exp() * (-logp - self.target_entropy).detach()).mean()

    @torch.no_grad()
    def act(self, obs, gen: torch.Generator | None = None):
        """The action (numpy) for one observation: sampled with ``gen``, the mean without."""
        a, _ = self.actor(torch.as_tensor(obs, device=self.log_alpha.device)[None], gen)
        return a[0].cpu().numpy()


class Replay(nn.Module):
    """A ring buffer of (obs, action, reward, next obs, terminal) as module buffers, so it is saved
    and restored with the agent (stage 2 continues from stage 1's experience). Time-limit ends are
    not terminal (SAC bootstraps through them); stage 3's early terminations are."""

    def __init__(self, obs_dim: int, act_dim: int, size: int) -> None:
        super().__init__()
        self.register_buffer("obs", torch.zeros(size, obs_dim))
        self.register_buffer("act", torch.zeros(size, act_dim))
        self.register_buffer("rew", torch.zeros(size))
        self.register_buffer("nxt", torch.zeros(size, obs_dim))
        self.register_buffer("terminal", torch.zeros(size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.size = size

    def add(self, obs, act, rew: float, nxt, terminal: bool = False) -> None:
        i = int(self.count) % self.size
        self.obs[i], self.act[i], self.rew[i], self.nxt[i] = (
            torch.as_tensor(obs),
            torch.as_tensor(act),
            rew,
            torch.as_tensor(nxt),
        )
        self.terminal[i] = float(terminal)
        self.count += 1

    def __len__(self) -> int:
        return min(int(self.count), self.size)

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(len(self), (n,), generator=gen).to(self.obs.device)
        return self.obs[idx], self.act[idx], self.rew[idx], self.nxt[idx], self.terminal[idx]
