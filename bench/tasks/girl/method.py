"""GiRL and its baselines as one loop method: each ``step`` is one meta-update of the PSRO loop
(``psro.Population``); ``results`` runs the few-shot test protocol (pick-then-adapt) on the
training tasks and the held-out ones.

The methods differ only in their ``methods.<name>`` section, which the run passes as keyword
arguments: eps (0 = the adversary stays at p0), the population size, warm starts, and whether the
oracle meta-learns (MAML) or not (multi-task).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError
from bench.method import LoopMethod
from bench.tasks.girl import maml, prd
from bench.tasks.girl.psro import Population


class GiRLMethod(LoopMethod):
    """PSRO with a first-order MAML oracle (eps > 0), or a baseline (see module doc). The family's
    tensors stay on the CPU: its rollouts are many tiny batched steps."""

    def __init__(self, cfg: dict, *, eps: float, policies: int, warm_start: bool, meta: bool) -> None:
        super().__init__(cfg)
        self.m = {"eps": eps, "policies": policies, "warm_start": warm_start, "meta": meta}
        o = cfg["optim"]
        if policies < 1 or o["meta_steps"] < policies:
            raise BenchError(f"optim.meta_steps={o['meta_steps']} must be >= policies={policies} >= 1")
        if not 0 <= eps <= 2:
            raise BenchError(f"eps={eps} must lie in [0, 2] (L1)")
        if cfg["eval"]["pick"] < 1:
            raise BenchError(f"eval.pick={cfg['eval']['pick']} must be >= 1 episode per policy")

    def setup(self, datamodule) -> None:
        # The batched tensors are tiny: a second intra-op thread only waits on the first, and on a
        # shared machine the threads' contention made runs 7x slower (docs/tasks/girl.md, Budget).
        torch.set_num_threads(self.cfg["optim"]["threads"])
        self.family = fam = datamodule.family
        o, g = self.cfg["optim"], self.cfg["game"]
        self.pop = Population(fam.train, fam.p0, self.m, o, g, self.cfg["seed"])

    def step(self) -> bool:
        self.loss = float(self.pop.step())
        return self.pop.done

    def results(self) -> dict[str, float]:
        """Pick-then-adapt with the population on the training tasks (nominal, uniform, rare and the
        worst case within eval.eps of p0) and the held-out ones; diagnostics: the last policy alone
        and the oracle pick."""
        e, o, fam = self.cfg["eval"], self.cfg["optim"], self.family
        gen = torch.Generator().manual_seed(self.cfg["seed"] + e["seed_offset"])
        p0 = fam.p0.double().numpy()
        pols = self.pop.policies
        res = maml.few_shot(
            fam.train, pols, torch.arange(len(p0)), e["pick"], o, e["episodes"], e["repeats"], gen
        )
        held = maml.few_shot(
            fam.heldout, pols, torch.arange(fam.n_heldout), e["pick"], o, e["episodes"], e["repeats"], gen
        )
        r = res.picked().double().numpy()
        last = res.post[-1].mean(0).double().numpy()
        oracle = res.oracle().double().numpy()
        pick_cost = e["pick"] * len(pols) if len(pols) > 1 else 0
        return {
            "worst": prd.worst_case(r, p0, e["eps"]),
            "nominal": float(r @ p0),
            "uniform": float(r.mean()),
            "rare": float(r[fam.rare].mean()),
            "heldout": float(held.picked().mean()),
            "last_worst": prd.worst_case(last, p0, e["eps"]),
            "oracle_worst": prd.worst_case(oracle, p0, e["eps"]),
            "adversary_shift": float(np.abs(self.pop.adversary - p0).sum()),
            "rprd_lp_gap": max(self.pop.rprd_gaps),
            "test_episodes": float(pick_cost + o["episodes"]),
        }

    def cost(self) -> dict:
        return {
            "params": sum(p.numel() for pol in self.pop.policies for p in pol),
            "train_episodes": self.pop.episodes,
        }
