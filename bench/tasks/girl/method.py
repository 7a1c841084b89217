"""GiRL and its baselines as one LightningModule with manual optimization: each ``training_step``
is one meta-update of the PSRO loop (``psro.Population``); ``test_step`` runs the few-shot test
protocol on the training tasks and the held-out ones.

The methods differ only in their ``methods.<name>`` section: eps (0 = the adversary stays at p0),
the population size, warm starts, and whether the oracle meta-learns (MAML) or not (multi-task).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import MeanMetric

from bench.errors import BenchError
from bench.method import BenchMethod
from bench.tasks.girl import maml, prd
from bench.tasks.girl.psro import Population

METRICS = (
    "uniform",
    "worst",
    "heldout",
    "last_uniform",
    "last_worst",
    "oracle_uniform",
    "oracle_worst",
    "adversary_shift",
)


def picked(res: dict[str, torch.Tensor], rule: str) -> torch.Tensor:
    """Per-task adapted return of the policy each adaptation picks, averaged over repeats:
    ``adapt`` = the best return on its own adaptation episodes (uses no evaluation data),
    ``oracle`` = the best adapted return (a diagnostic only: it peeks at the evaluation)."""
    key = {"adapt": "pre", "oracle": "post"}[rule]
    idx = res[key].argmax(0, keepdim=True)
    return res["post"].gather(0, idx)[0].mean(0)


class GiRLMethod(BenchMethod):
    """PSRO with a first-order MAML oracle and R-PRD (eps > 0), or a baseline (see module doc)."""

    def __init__(self, cfg: dict, **section) -> None:
        super().__init__(cfg)
        self.automatic_optimization = False
        self.m = section
        o = cfg["optim"]
        if self.m["policies"] < 1 or o["meta_steps"] < self.m["policies"]:
            raise BenchError(
                f"optim.meta_steps={o['meta_steps']} must be >= methods.{cfg['method']}.policies="
                f"{self.m['policies']} >= 1"
            )
        if o["adapt_budget"] < self.m["policies"] * 2:
            raise BenchError(
                f"optim.adapt_budget={o['adapt_budget']} leaves < 2 adaptation episodes to each of "
                f"{self.m['policies']} policies"
            )
        if not 0 <= self.m["eps"] <= 2:
            raise BenchError(f"methods.{cfg['method']}.eps={self.m['eps']} must lie in [0, 2] (L1)")
        self.pop: Population | None = None
        self.summary = torch.nn.ModuleDict({k: MeanMetric() for k in METRICS})
        self._claims: dict[str, dict] = {}

    def setup(self, stage: str) -> None:
        if self.pop is None:
            fam = self.trainer.datamodule.family
            self.pop = Population(
                fam.train, fam.p0, self.m, self.cfg["optim"], self.cfg["game"], self.cfg["seed"]
            )

    def training_step(self, batch, batch_idx):
        loss = self.pop.step()
        if self.pop.done:
            self.trainer.should_stop = True
        return {"loss": loss}

    def on_fit_end(self) -> None:
        if self.cfg["method"] in self.cfg["checks"]["methods"]:
            self._claims = self._check()

    def _check(self) -> dict[str, dict]:
        """The run claims on this run's R-PRD outputs and final payoff matrix."""
        c, g, eps = self.cfg["checks"], self.cfg["game"], self.m["eps"]
        p0 = self.pop.p0.double().numpy()
        outs = [q for s in self.pop.solutions for q in (*s.iterates, s.adversary)]
        viol = max(max(abs(q.sum() - 1), -q.min(), np.abs(q - p0).sum() - eps) for q in outs)
        m = self.pop.payoff()
        zero = prd.r_prd(
            m, p0, 0.0, g["steps"], g["dt"], g["floor"], g["dykstra"], adversary0=self.pop.adversary
        )
        dev0 = max(np.abs(q - p0).max() for q in (*zero.iterates, zero.adversary))
        value, _ = prd.lp_minimax(m, p0, eps)
        sol = prd.r_prd(m, p0, eps, c["steps"], c["dt"], g["floor"], g["dykstra"])
        span = max(float(np.ptp(m)), 1e-12)
        gap = max((m @ sol.adversary).max() - value, value - prd.worst_case(sol.agent @ m, p0, eps)) / span
        return {
            "rprd_in_ball": {
                "holds": bool(viol <= c["feasibility_tol"]),
                "value": float(viol),
                "bound": c["feasibility_tol"],
            },
            "rprd_eps0_is_p0": {
                "holds": bool(dev0 <= c["feasibility_tol"]),
                "value": float(dev0),
                "bound": c["feasibility_tol"],
            },
            "rprd_matches_lp": {"holds": bool(gap <= c["lp_gap"]), "value": float(gap), "bound": c["lp_gap"]},
        }

    def evaluate(self) -> dict[str, float]:
        """The few-shot protocol with the population (honest pick), its last policy alone, and the
        oracle pick, on the training tasks (uniform and worst case within eval.eps) and held-out."""
        e, o = self.cfg["eval"], self.cfg["optim"]
        fam, gen = (
            self.trainer.datamodule.family,
            torch.Generator().manual_seed(self.cfg["seed"] + e["seed_offset"]),
        )
        p0 = fam.p0.double().numpy()
        k = len(p0)
        pols = self.pop.policies
        eo = o | {"repeats": e["repeats"]}
        res = maml.few_shot(fam.train, pols, torch.arange(k), o["adapt_budget"], e["episodes"], eo, gen)
        last = maml.few_shot(fam.train, pols[-1:], torch.arange(k), o["adapt_budget"], e["episodes"], eo, gen)
        held = maml.few_shot(
            fam.heldout, pols, torch.arange(fam.n_heldout), o["adapt_budget"], e["episodes"], eo, gen
        )
        r = picked(res, e["pick"]).double().numpy()
        r_last = picked(last, "adapt").double().numpy()
        r_oracle = picked(res, "oracle").double().numpy()
        return {
            "uniform": float(r.mean()),
            "worst": prd.worst_case(r, p0, e["eps"]),
            "heldout": float(picked(held, e["pick"]).mean()),
            "last_uniform": float(r_last.mean()),
            "last_worst": prd.worst_case(r_last, p0, e["eps"]),
            "oracle_uniform": float(r_oracle.mean()),
            "oracle_worst": prd.worst_case(r_oracle, p0, e["eps"]),
            "adversary_shift": float(np.abs(self.pop.adversary - p0).sum()),
        }

    def test_step(self, batch, batch_idx):
        # Adaptation needs gradients, which Lightning's test loop switches off.
        with torch.inference_mode(False), torch.enable_grad():
            values = self.evaluate()
        for k, v in values.items():
            self.summary[k].update(v)
            self.log(f"test/{k}", self.summary[k])

    def configure_optimizers(self):
        return None

    def claims(self) -> dict[str, dict]:
        return self._claims

    def cost(self) -> dict:
        pols = self.pop.policies if self.pop else []
        return {
            "params": sum(p.numel() for pol in pols for p in pol),
            "train_episodes": self.pop.episodes if self.pop else 0,
        }
