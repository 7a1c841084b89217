"""The PSRO loop of GiRL: the agent's population against an adversary choosing the task
distribution within eps of the nominal one.

A round trains a best response by MAML against the adversary's current distribution, adds it to
the population, measures its row of the payoff matrix (adapted return on every task, the few-shot
protocol with one policy), and solves the restricted game by R-PRD; the adversary's averaged
strategy is the next round's training distribution and R-PRD's start in the next round.
MAML is the case of one round with eps = 0; MAML best-of-P is P rounds with eps = 0 and every
best response trained from a fresh initialization.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.tasks.girl import maml, prd


class Population:
    """State of one method's run: learner in training, population, payoff rows, adversary."""

    def __init__(self, env, p0: torch.Tensor, m: dict, o: dict, g: dict, seed: int) -> None:
        self.env, self.p0, self.m, self.o, self.g = env, p0, m, o, g
        self.gen = torch.Generator().manual_seed(seed)
        self.adversary = p0.double().numpy().copy()
        self.agent: np.ndarray | None = None
        self.policies: list[maml.Params] = []
        self.rows: list[np.ndarray] = []
        self.solutions: list[prd.Solution] = []
        self.steps_per_round = max(1, o["meta_steps"] // m["policies"])
        self.step_in_round = 0
        self.episodes = 0
        self.learner = self._new_learner(None)

    def _new_learner(self, warm: maml.Params | None) -> maml.Learner:
        init = warm or maml.init_policy(
            self.env.obs_dim, self.env.act_dim, self.o["hidden"], self.o["init_log_std"], self.gen
        )
        return maml.Learner(self.env, init, self.o, self.m["meta"], self.gen)

    @property
    def done(self) -> bool:
        return len(self.policies) == self.m["policies"]

    def step(self) -> torch.Tensor:
        """One meta-update of the current best response; closes the round when it is due."""
        loss = self.learner.step(torch.as_tensor(self.adversary))
        self.step_in_round += 1
        if self.step_in_round == self.steps_per_round:
            self._close_round()
        return loss

    def payoff(self) -> np.ndarray:
        return np.stack(self.rows)

    def _close_round(self) -> None:
        self.episodes += self.learner.episodes
        pol = self.learner.policy()
        self.policies.append(pol)
        k = len(self.p0)
        res = maml.few_shot(
            self.env,
            [pol],
            torch.arange(k),
            self.o["adapt_budget"],
            self.o["eval_episodes"],
            self.o,
            self.gen,
        )
        self.episodes += k * self.o["repeats"] * (self.o["adapt_budget"] + self.o["eval_episodes"])
        self.rows.append(res["post"][0].mean(0).double().numpy())
        g = self.g
        agent0 = None if self.agent is None else np.r_[self.agent, g["floor"]] / (1 + g["floor"])
        sol = prd.r_prd(
            self.payoff(),
            self.p0.double().numpy(),
            self.m["eps"],
            g["steps"],
            g["dt"],
            g["floor"],
            g["dykstra"],
            agent0=agent0,
            adversary0=self.adversary,
        )
        self.solutions.append(sol)
        self.agent, self.adversary = sol.agent, sol.adversary
        self.step_in_round = 0
        if not self.done:
            self.learner = self._new_learner(pol if self.m["warm_start"] else None)
