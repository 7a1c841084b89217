"""MAML-RL, first order, with REINFORCE: the best-response oracle of GiRL, and the few-shot test.

A policy is a Gaussian MLP held as a list of tensors; a *batch* of policies carries a leading task
dimension ``T`` so that the per-task adapted policies of one meta-step are rolled out together.
The inner step is one policy-gradient ascent step per task; the meta-update applies the gradient
of the adapted policies' returns to the shared initialization (first-order MAML: the Hessian
term is dropped), weighted by the task distribution and fed to Adam.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Params = list[torch.Tensor]


def init_policy(obs_dim: int, act_dim: int, hidden: int, log_std: float, gen: torch.Generator) -> Params:
    """[W1, b1, W2, b2, log_std] of a tanh MLP; small output layer so the start is near zero."""
    w1 = torch.randn(obs_dim, hidden, generator=gen) / obs_dim**0.5
    w2 = torch.randn(hidden, act_dim, generator=gen) * 0.01 / hidden**0.5
    return [w1, torch.zeros(hidden), w2, torch.zeros(act_dim), torch.full((act_dim,), log_std)]


def expand(params: Params, t: int) -> Params:
    """The same policy ``t`` times, as a batch (leaf tensors, ready for per-task gradients)."""
    return [p.detach().expand(t, *p.shape).clone().requires_grad_(True) for p in params]


def mean_action(params: Params, obs: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2, _ = params
    h = torch.tanh(obs @ w1 + b1[:, None])
    return h @ w2 + b2[:, None]


@dataclass
class Batch:
    """Episodes of a policy batch: log-probs and rewards ``(T, n, H)``."""

    logp: torch.Tensor
    reward: torch.Tensor

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted episode returns ``(T, n)``."""
        return self.reward.sum(-1)


def rollout(env, params: Params, tasks: torch.Tensor, n: int, horizon: int, gen: torch.Generator) -> Batch:
    """``n`` episodes of policy ``params[t]`` on task ``tasks[t]``, for every t at once."""
    obs = env.reset(tasks, n)
    std = params[4].exp()[:, None, :]
    logps, rewards = [], []
    for _ in range(horizon):
        mu = mean_action(params, obs)
        noise = torch.randn(mu.shape, generator=gen)
        act = (mu + std * noise).detach()
        logps.append((-0.5 * ((act - mu) / std) ** 2 - std.log()).sum(-1))
        obs, r = env.step(act)
        rewards.append(r)
    return Batch(torch.stack(logps, -1), torch.stack(rewards, -1))


def surrogate(batch: Batch) -> torch.Tensor:
    """Per-task REINFORCE surrogate ``(T,)`` whose gradient estimates the return's: reward-to-go
    minus its mean over the task's episodes (a per-step baseline), normalised per task."""
    rtg = batch.reward.flip(-1).cumsum(-1).flip(-1)
    adv = rtg - rtg.mean(1, keepdim=True)
    adv = adv / (adv.flatten(1).std(1)[:, None, None] + 1e-8)
    return (batch.logp * adv).sum(-1).mean(-1)


def adapt(params: Params, batch: Batch, lr: float) -> Params:
    """One policy-gradient ascent step per task (first order: the result is detached)."""
    grads = torch.autograd.grad(surrogate(batch).sum(), params)
    return [(p + lr * g).detach().requires_grad_(True) for p, g in zip(params, grads, strict=True)]


class Learner:
    """One policy trained by first-order MAML (``meta=True``) or plain multi-task policy gradient
    (``meta=False``: no inner step, twice the episodes per step so the sample count matches)."""

    def __init__(self, env, params: Params, o: dict, meta: bool, gen: torch.Generator) -> None:
        self.env, self.o, self.meta, self.gen = env, o, meta, gen
        self.params = [p.clone().requires_grad_(True) for p in params]
        self.opt = torch.optim.Adam(self.params, lr=o["meta_lr"])
        self.episodes = 0

    def step(self, weights: torch.Tensor) -> torch.Tensor:
        """One meta-update on all tasks, weighted by the task distribution ``weights``."""
        o, k = self.o, len(weights)
        tasks = torch.arange(k)
        batch = expand(self.params, k)
        if self.meta:
            pre = rollout(self.env, batch, tasks, o["episodes"], o["horizon"], self.gen)
            batch = adapt(batch, pre, o["inner_lr"])
            n = o["episodes"]
        else:
            n = 2 * o["episodes"]
        post = rollout(self.env, batch, tasks, n, o["horizon"], self.gen)
        self.episodes += 2 * k * o["episodes"]
        objective = (surrogate(post) * weights.float()).sum()
        grads = torch.autograd.grad(objective, batch)
        self.opt.zero_grad()
        for p, g in zip(self.params, grads, strict=True):
            p.grad = -g.sum(0)  # ascent on the weighted return; adapted copies share the init
        self.opt.step()
        with torch.no_grad():
            self.params[4].clamp_(o["min_log_std"], o["max_log_std"])
        return -(post.returns.mean(1) * weights.float()).sum().detach()

    def policy(self) -> Params:
        return [p.detach().clone() for p in self.params]


def few_shot(
    env,
    policies: list[Params],
    tasks: torch.Tensor,
    budget: int,
    episodes: int,
    o: dict,
    gen: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The few-shot test protocol with ``len(policies)`` policies and ``budget`` adaptation
    episodes per task in all (split evenly, so GiRL's population and MAML spend the same): each
    policy adapts with its share, then its adapted return is measured on ``episodes`` fresh ones.

    Returns per-task ``(P, T)`` tensors: ``pre`` (mean return of the adaptation episodes, all a
    deployed agent has seen) and ``post`` (the adapted policy's return), both averaged over
    ``o['repeats']`` independent adaptations."""
    share = budget // len(policies)
    t = tasks.repeat(o["repeats"])
    pre, post = [], []
    for pol in policies:
        batch = expand(pol, len(t))
        b = rollout(env, batch, t, share, o["horizon"], gen)
        adapted = adapt(batch, b, o["inner_lr"])
        with torch.no_grad():
            r = rollout(env, adapted, t, episodes, o["horizon"], gen).returns.mean(1)
        pre.append(b.returns.mean(1).detach().reshape(o["repeats"], -1))
        post.append(r.reshape(o["repeats"], -1))
    return {"pre": torch.stack(pre), "post": torch.stack(post)}
