"""GiRL and its baselines as one loop method: each ``step`` is one meta-update of the PSRO loop
(``psro.Population``); ``results`` runs the few-shot test protocol (pick-then-adapt) on the
training tasks and the held-out ones.

The methods differ only in their ``methods.<name>`` section, which the run passes as keyword
arguments: eps (0 = the adversary stays at p0), the population size, warm starts, whether the
oracle meta-learns (MAML) or not (multi-task), the restricted game's solver (the exact LP or the
paper's R-PRD), and ``fixed_shift``: no game, training on p0 shifted by eps toward the rare tasks
(the control that isolates the game from the reweighting).

Every method spends the same ``eval.budget`` test episodes per task: a population spends
``P * eval.pick`` of them choosing a policy and adapts it on the rest (the meta-training inner
batch); a single policy adapts on all of them.
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

    def __init__(
        self,
        cfg: dict,
        *,
        eps: float,
        policies: int,
        warm_start: bool,
        meta: bool,
        solver: str = "lp",
        fixed_shift: bool = False,
    ) -> None:
        super().__init__(cfg)
        self.m = {"eps": eps, "policies": policies, "warm_start": warm_start, "meta": meta, "solver": solver}
        self.fixed_shift = fixed_shift
        o, e = cfg["optim"], cfg["eval"]
        if policies < 1 or o["meta_steps"] < policies:
            raise BenchError(f"optim.meta_steps={o['meta_steps']} must be >= policies={policies} >= 1")
        if not 0 <= eps <= 2:
            raise BenchError(f"eps={eps} must lie in [0, 2] (L1)")
        if e["pick"] < 1:
            raise BenchError(f"eval.pick={e['pick']} must be >= 1 episode per policy")
        self.pick_cost = e["pick"] * policies if policies > 1 else 0
        self.adapt_n = e["budget"] - self.pick_cost
        if self.adapt_n < 2:
            raise BenchError(
                f"eval.budget={e['budget']} leaves {self.adapt_n} adaptation episodes after the "
                f"pick ({policies} policies x eval.pick={e['pick']}): raise it"
            )

    def setup(self, datamodule) -> None:
        # The batched tensors are tiny: a second intra-op thread only waits on the first, and on a
        # shared machine the threads' contention made runs 7x slower (docs/tasks/girl.md, Budget).
        torch.set_num_threads(self.cfg["optim"]["threads"])
        self.family = fam = datamodule.family
        o, g = self.cfg["optim"], self.cfg["game"]
        p0 = fam.p0.double().numpy()
        fixed = prd.shift_toward(p0, fam.rare.numpy(), self.m["eps"]) if self.fixed_shift else None
        self.pop = Population(fam.train, fam.p0, self.m, o, g, self.cfg["seed"], fixed)

    def step(self) -> bool:
        self.loss = float(self.pop.step())
        return self.pop.done

    def results(self) -> dict[str, float]:
        """Pick-then-adapt with the population on the training tasks (nominal, uniform, rare and the
        worst case within eval.eps of p0) and on the held-out ones (likewise, under their own
        nominal distribution); diagnostics: the last policy alone and the oracle pick."""
        e, o, fam = self.cfg["eval"], self.cfg["optim"], self.family
        gen = torch.Generator().manual_seed(self.cfg["seed"] + e["seed_offset"])
        p0, hp0 = fam.p0.double().numpy(), fam.heldout_p0.double().numpy()
        pols = self.pop.policies

        def test(env, n: int) -> maml.FewShot:
            tasks = torch.arange(n)
            return maml.few_shot(
                env, pols, tasks, e["pick"], self.adapt_n, e["episodes"], e["repeats"], o, gen
            )

        res, held = test(fam.train, len(p0)), test(fam.heldout, len(hp0))
        r, h = res.picked().double().numpy(), held.picked().double().numpy()
        last = res.post[-1].mean(0).double().numpy()
        oracle = res.oracle().double().numpy()
        return {
            "worst": prd.worst_case(r, p0, e["eps"]),
            "nominal": float(r @ p0),
            "uniform": float(r.mean()),
            "rare": float(r[fam.rare].mean()),
            "heldout_worst": prd.worst_case(h, hp0, e["eps"]),
            "heldout_nominal": float(h @ hp0),
            "heldout_rare": float(h[fam.heldout_rare].mean()),
            "last_worst": prd.worst_case(last, p0, e["eps"]),
            "oracle_worst": prd.worst_case(oracle, p0, e["eps"]),
            "adversary_shift": float(np.abs(self.pop.adversary - p0).sum()),
            "rprd_lp_gap": max(self.pop.rprd_gaps),
            "test_episodes": float(self.pick_cost + self.adapt_n),
        }

    def cost(self) -> dict:
        return {
            "params": sum(p.numel() for pol in self.pop.policies for p in pol),
            "train_episodes": self.pop.episodes,
        }
