"""Predictors of a network's final accuracy from what it shows in its first k epochs.

A predictor is fit by sklearn (random forests, or L-BFGS / closed form), not by a Trainer's
gradient steps: it is a TrainedMethod with ``trains = False`` whose test step runs the
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
from bench.method import TrainedMethod
from bench.tasks.nngraph import features, predict


class Predictor(TrainedMethod):
    """Good/bad classification and final-accuracy regression from the ``families`` of features."""

    trains = False

    def __init__(self, cfg: dict, families: list[str]) -> None:
        super().__init__(cfg)
        self.families = tuple(families)
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

    def on_test_epoch_end(self) -> None:
        # The accuracy curve over k: its worst step, and one binomial standard error of the final
        # accuracy over the n networks (a drop smaller than that is within noise).
        curve = [float(m.compute()) for m in self.acc_by_k]
        acc = curve[-1]
        self.log(
            "test/worst_k_step", min((b - a for a, b in zip(curve, curve[1:], strict=False)), default=0.0)
        )
        self.log("test/acc_se", math.sqrt(acc * (1 - acc) / self.n_networks))

    def cost(self) -> dict:
        # Of one fitted classifier + regressor at k = S (tree nodes for forests).
        return {"params": self.size, "features": self.n_features}
