"""The PSRO loop of GiRL: the agent's population against an adversary choosing the task
distribution within eps of the nominal one.

A round trains a best response by MAML against the adversary's current distribution, adds it to
the population, measures its row of the payoff matrix (adapted return on every task: the few-shot
protocol with one policy), and solves the restricted game afresh; the adversary's equilibrium
strategy is the next round's training distribution. The method's ``solver``: ``lp`` solves the
eps-constrained game exactly (scipy's LP and its dual); ``rprd`` uses the paper's R-PRD (restarted
at uniform / p0, decaying step). Either way R-PRD is also run on every matrix PSRO solves, and its
distance from equilibrium is kept (``rprd_gaps``), so R-PRD is checked on the matrices PSRO uses.
MAML is the case of one round with eps = 0; MAML best-of-P is P rounds with eps = 0 and every
best response trained from a fresh initialization. With a ``fixed`` distribution there is no
game: every round trains on it (MAML on a reweighted distribution, the control of the game).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError
from bench.tasks.girl import maml, prd


class Population:
    """State of one method's run: learner in training, population, payoff rows, adversary."""

    def __init__(
        self, env, p0: torch.Tensor, m: dict, o: dict, g: dict, seed: int, fixed: np.ndarray | None = None
    ) -> None:
        if m["solver"] not in ("lp", "rprd"):
            raise BenchError(f"solver={m['solver']!r}: choose lp or rprd")
        self.env, self.p0, self.m, self.o, self.g = env, p0, m, o, g
        self.gen = torch.Generator().manual_seed(seed)
        self.fixed = fixed is not None
        self.adversary = (p0.double().numpy() if fixed is None else fixed).copy()
        self.policies: list[maml.Params] = []
        self.rows: list[np.ndarray] = []
        self.solutions: list[prd.Solution] = []
        self.rprd_gaps: list[float] = []
        self.steps_per_round = max(1, o["meta_steps"] // m["policies"])
        self.step_in_round = 0
        self.episodes = 0
        self.learner = self._new_learner(None)

    def _new_learner(self, warm: maml.Params | None) -> maml.Learner:
        init = warm or maml.init_policy(self.env.obs_dim, self.env.act_dim, self.o["hidden"], self.gen)
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

    def solve(self, payoff: np.ndarray) -> tuple[prd.Solution, float]:
        """The restricted game's solution by the method's ``solver``, and R-PRD's distance from
        equilibrium on this matrix (``prd.nash_conv``, in units of the payoff range)."""
        g, p0, eps = self.g, self.p0.double().numpy(), self.m["eps"]
        rprd = prd.r_prd(payoff, p0, eps, g["steps"], g["dt"], g["floor"], g["dykstra"])
        sol = prd.lp_minimax(payoff, p0, eps) if self.m["solver"] == "lp" else rprd
        return sol, prd.nash_conv(payoff, p0, eps, rprd)

    def _close_round(self) -> None:
        self.episodes += self.learner.episodes
        pol = self.learner.policy()
        self.policies.append(pol)
        k, o = len(self.p0), self.o
        res = maml.few_shot(
            self.env, [pol], torch.arange(k), 0, o["episodes"], o["eval_episodes"], o["repeats"], o, self.gen
        )
        self.episodes += k * o["repeats"] * (o["episodes"] + o["eval_episodes"])
        self.rows.append(res.post[0].mean(0).double().numpy())
        sol, gap = self.solve(self.payoff())
        self.solutions.append(sol)
        self.rprd_gaps.append(gap)
        if not self.fixed:
            self.adversary = sol.adversary
        self.step_in_round = 0
        if not self.done:
            self.learner = self._new_learner(pol if self.m["warm_start"] else None)
