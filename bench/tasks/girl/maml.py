"""MAML-RL, first order, with REINFORCE: the best-response oracle of GiRL, and the few-shot test.

A policy is a Gaussian tanh MLP held as a list of tensors ``[W1, b1, W2, b2]``; its exploration
noise is a fixed std (``optim.log_std``), neither adapted nor meta-learned. A *batch* of policies
carries a leading dimension ``T`` so that many (policy, task) pairs are rolled out together.

The inner step is one policy-gradient ascent step per task on ``optim.episodes`` episodes; the
meta-update applies the gradient of the adapted policies' returns to the shared initialization
(first-order MAML: the Hessian term is dropped), weighted by the task distribution, fed to Adam.

Why the std is fixed: with advantages normalised per task, the inner step moves the mean action by
about ``inner_lr * |adv| / std``, so the step grows as the std shrinks. The post-adaptation return
rewards a smaller std (less noise), and the cost of a smaller std (an inner step that overshoots)
reaches the initialization only through the second-order term that first-order MAML drops: a
learned log-std collapses (-1 to -2.2 in 400 steps here) and the meta-policy stops adapting.
Scaling the inner lr by std^2 would make the inner step a natural-gradient step, which MAML's
vanilla policy-gradient inner step is not; a fixed exploration std keeps MAML's update as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Params = list[torch.Tensor]


def init_policy(obs_dim: int, act_dim: int, hidden: int, gen: torch.Generator) -> Params:
    """[W1, b1, W2, b2] of a tanh MLP; small output layer so the start is near zero."""
    w1 = torch.randn(obs_dim, hidden, generator=gen) / obs_dim**0.5
    w2 = torch.randn(hidden, act_dim, generator=gen) * 0.01 / hidden**0.5
    return [w1, torch.zeros(hidden), w2, torch.zeros(act_dim)]


def expand(params: Params, t: int) -> Params:
    """The same policy ``t`` times, as a batch (leaf tensors, ready for per-task gradients)."""
    return [p.detach().expand(t, *p.shape).clone().requires_grad_(True) for p in params]


def stack(policies: list[Params], t: int) -> Params:
    """Policies ``P`` each repeated ``t`` times, as one batch of ``P * t`` (policy-major)."""
    return [torch.cat([pol[i].detach().expand(t, *pol[i].shape) for pol in policies]) for i in range(4)]


def mean_action(params: Params, obs: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2 = params
    h = torch.tanh(torch.baddbmm(b1[:, None], obs, w1))
    return torch.baddbmm(b2[:, None], h, w2)


@dataclass
class Batch:
    """Episodes of a policy batch: log-probs and rewards ``(T, n, H)``."""

    logp: torch.Tensor
    reward: torch.Tensor

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted episode returns ``(T, n)``."""
        return self.reward.sum(-1)


def rollout(
    env, params: Params, std: float, tasks: torch.Tensor, n: int, horizon: int, gen: torch.Generator
) -> Batch:
    """``n`` episodes of policy ``params[t]`` on task ``tasks[t]``, for every t at once. The
    log-probs keep only the part that depends on the parameters (the std is a constant)."""
    obs = env.reset(tasks, n)
    track = torch.is_grad_enabled() and params[0].requires_grad
    noise = torch.randn(horizon, *obs.shape[:2], env.act_dim, generator=gen) * std
    logps, rewards = [], []
    for t in range(horizon):
        mu = mean_action(params, obs)
        act = mu.detach() + noise[t]
        if track:
            logps.append(-0.5 * ((act - mu) / std).pow(2).sum(-1))
        obs, r = env.step(act)
        rewards.append(r)
    logp = torch.stack(logps, -1) if track else torch.zeros(0)
    return Batch(logp, torch.stack(rewards, -1))


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
        self.std = float(torch.tensor(o["log_std"]).exp())
        self.params = [p.clone().requires_grad_(True) for p in params]
        self.opt = torch.optim.Adam(self.params, lr=o["meta_lr"])
        self.episodes = 0

    def step(self, weights: torch.Tensor) -> torch.Tensor:
        """One meta-update on all tasks, weighted by the task distribution ``weights``."""
        o, k = self.o, len(weights)
        tasks = torch.arange(k)
        batch = expand(self.params, k)
        if self.meta:
            pre = rollout(self.env, batch, self.std, tasks, o["episodes"], o["horizon"], self.gen)
            batch = adapt(batch, pre, o["inner_lr"])
            n = o["episodes"]
        else:
            n = 2 * o["episodes"]
        post = rollout(self.env, batch, self.std, tasks, n, o["horizon"], self.gen)
        self.episodes += 2 * k * o["episodes"]
        objective = (surrogate(post) * weights.float()).sum()
        grads = torch.autograd.grad(objective, batch)
        self.opt.zero_grad()
        for p, g in zip(self.params, grads, strict=True):
            p.grad = -g.sum(0)  # ascent on the weighted return; adapted copies share the init
        self.opt.step()
        return -(post.returns.mean(1) * weights.float()).sum().detach()

    def policy(self) -> Params:
        return [p.detach().clone() for p in self.params]


@dataclass
class FewShot:
    """Per (policy, repeat, task) results of the few-shot protocol, shaped ``(P, R, T)``: ``pre``
    the mean return of the policy's pick episodes, ``post`` its adapted return."""

    pre: torch.Tensor
    post: torch.Tensor

    def picked(self) -> torch.Tensor:
        """Per-task adapted return ``(T,)`` of the policy each repeat picks by its pick episodes
        (the deployed rule: no evaluation data), averaged over repeats."""
        return self.post.gather(0, self.pre.argmax(0, keepdim=True))[0].mean(0)

    def oracle(self) -> torch.Tensor:
        """Per-task best adapted return (a diagnostic: it peeks at the evaluation episodes)."""
        return self.post.max(0).values.mean(0)


def few_shot(
    env,
    policies: list[Params],
    tasks: torch.Tensor,
    pick: int,
    adapt_n: int,
    episodes: int,
    repeats: int,
    o: dict,
    gen: torch.Generator,
) -> FewShot:
    """Pick-then-adapt, the test protocol: on each task, every policy of the population runs
    ``pick`` episodes as it is (skipped for one policy), then one policy-gradient step on
    ``adapt_n`` fresh episodes adapts it, and its adapted return is measured on ``episodes`` more.
    All policies are adapted so that the oracle pick can be reported too; the deployed agent adapts
    only the one its pick episodes chose, so its cost per task is ``P * pick + adapt_n`` episodes
    (``adapt_n`` for one policy)."""
    n_pol, t = len(policies), tasks.repeat(repeats)
    batch = [p.requires_grad_(True) for p in stack(policies, len(t))]
    tt, std = t.repeat(n_pol), float(torch.tensor(o["log_std"]).exp())
    with torch.no_grad():
        if n_pol > 1:
            pre = rollout(env, batch, std, tt, pick, o["horizon"], gen).returns.mean(1)
        else:
            pre = torch.zeros(len(tt))
    b = rollout(env, batch, std, tt, adapt_n, o["horizon"], gen)
    adapted = adapt(batch, b, o["inner_lr"])
    with torch.no_grad():
        post = rollout(env, adapted, std, tt, episodes, o["horizon"], gen).returns.mean(1)
    shape = (n_pol, repeats, len(tasks))
    return FewShot(pre.reshape(shape), post.reshape(shape))
