"""Predictors of a network's final accuracy from what it shows in its first k epochs.

A predictor is fit by sklearn (random forests, or L-BFGS / closed form), not by a Trainer's
gradient steps: it is a BenchMethod with ``trains = False`` whose test step runs the
cross-validation over held-out networks for k = 1..S and feeds the out-of-fold predictions to
torchmetrics objects. (A one-step manual-optimization training_step would fit one model, but the
held-out evaluation needs one fit per fold and per k.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import MetricCollection, PearsonCorrCoef, R2Score
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC
from torchmetrics.regression import KendallRankCorrCoef

from bench.errors import BenchError
from bench.method import BenchMethod
from bench.tasks.nngraph import features, predict
from bench.tasks.nngraph.task import DEGREE_MIN_ACC, DEGREE_MIN_R


class Predictor(BenchMethod):
    """Good/bad classification and final-accuracy regression from the ``families`` of features."""

    trains = False

    def __init__(self, cfg: dict, families: list[str], claims: bool = False) -> None:
        super().__init__(cfg)
        self.families, self.judges_claims = tuple(families), claims
        self.k_max = cfg["population"]["snapshots"]
        self.test_acc = BinaryAccuracy()
        self.test_reg = MetricCollection(
            {"r2": R2Score(), "pearson": PearsonCorrCoef(), "kendall": KendallRankCorrCoef()}, prefix="test/"
        )
        self.test_auroc = BinaryAUROC()
        self.acc_by_k = torch.nn.ModuleList(BinaryAccuracy() for _ in range(self.k_max))
        self.n_features = self.n_networks = self.size = 0

    def test_step(self, batch, batch_idx):
        tables = {name: t.numpy().astype(np.float64) for name, t in batch.items()}
        acc = tables["final_acc"]
        good = features.labels(acc)
        self.n_networks = len(acc)
        p = self.cfg["predictor"]
        if min(good.sum(), len(good) - good.sum()) < p["folds"]:
            raise BenchError(f"predictor.folds={p['folds']} exceeds the good or bad networks: lower it")
        target, truth = torch.from_numpy(good), torch.from_numpy(acc).float()
        for k in range(1, self.k_max + 1):
            x = features.design(tables, self.families, k, self.cfg["features"]["delta_from"])
            prob, reg, size = predict.out_of_fold(x, good, acc, p, self.cfg["seed"])
            prob_t = torch.from_numpy(prob).float()
            self.acc_by_k[k - 1](prob_t, target)
            self.log(f"test/acc_k{k}", self.acc_by_k[k - 1])
            if k == self.k_max:
                self.n_features, self.size = x.shape[1], size
                self.test_acc(prob_t, target)
                self.test_auroc(prob_t, target)
                self.test_reg(torch.from_numpy(reg).float(), truth)
        self.log_dict({"test/acc": self.test_acc, "test/auroc": self.test_auroc})
        self.log_dict(self.test_reg)

    def claims(self) -> dict[str, dict]:
        if not self.judges_claims:
            return {}
        logged = self.trainer.callback_metrics
        curve = [float(logged[f"test/acc_k{k}"]) for k in range(1, self.k_max + 1)]
        acc, r = curve[-1], float(logged["test/pearson"])
        # "Within noise": a drop from k to k+1 smaller than one binomial standard error of the
        # accuracy over the n networks does not count against the claim.
        slack = math.sqrt(acc * (1 - acc) / self.n_networks)
        worst = min((b - a for a, b in zip(curve, curve[1:], strict=False)), default=0.0)
        return {
            "degree_acc": {"holds": acc >= DEGREE_MIN_ACC, "value": acc, "bound": DEGREE_MIN_ACC},
            "degree_regression_r": {"holds": r >= DEGREE_MIN_R, "value": r, "bound": DEGREE_MIN_R},
            "acc_nondecreasing_in_k": {"holds": worst >= -slack, "value": worst, "bound": -slack},
        }

    def cost(self) -> dict:
        # Of one fitted classifier + regressor at k = S (tree nodes for forests).
        return {"params": self.size, "features": self.n_features}
