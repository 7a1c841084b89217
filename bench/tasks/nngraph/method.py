"""Predictors of a network's final accuracy from what it shows in its first k epochs.

A predictor is fit by sklearn (random forests, or L-BFGS / closed form), not by gradient steps: it
is a LoopMethod whose step k runs the cross-validation over held-out networks on the summaries of
epochs 1..k (one fit per fold), for k = 1..S. The out-of-fold predictions are scored by
torchmetrics objects.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import MetricCollection, PearsonCorrCoef, R2Score
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC
from torchmetrics.regression import KendallRankCorrCoef

from bench.errors import BenchError
from bench.method import LoopMethod
from bench.tasks.nngraph import features, predict


class Predictor(LoopMethod):
    """Good/bad classification and final-accuracy regression from the ``families`` of features."""

    def __init__(self, cfg: dict, families: list[str]) -> None:
        super().__init__(cfg)
        self.families = tuple(families)
        self.k_max = cfg["population"]["snapshots"]
        self.probs: list[np.ndarray] = []  # per k: out-of-fold probability of "good"
        self.reg = np.zeros(0)  # at k = S: out-of-fold predicted final accuracy
        self.n_features = self.size = 0
        self.tuning: dict[str, float] = {}  # at k = S: the forests' choices of max_features

    def setup(self, datamodule) -> None:
        self.tables = {name: t.astype(np.float64) for name, t in datamodule.tables.items()}
        self.good = features.labels(self.tables["final_acc"])
        folds = self.cfg["predictor"]["folds"]
        if min(self.good.sum(), len(self.good) - self.good.sum()) < folds:
            raise BenchError(f"predictor.folds={folds} exceeds the good or bad networks: lower it")

    def step(self) -> bool:
        """The out-of-fold predictions from epochs 1..k, k = one more than the last step's."""
        k = len(self.probs) + 1
        x = features.design(self.tables, self.families, k, self.cfg["features"]["delta_from"])
        acc = self.tables["final_acc"]
        prob, self.reg, size, self.tuning = predict.out_of_fold(
            x, self.good, acc, self.cfg["predictor"], self.cfg["seed"]
        )
        self.probs.append(prob)
        self.n_features, self.size = x.shape[1], size
        return k == self.k_max

    def results(self) -> dict[str, float]:
        truth = self.tables["final_acc"].astype(np.float32)
        curve = [float(self._score(BinaryAccuracy(), p, self.good)) for p in self.probs]
        acc = curve[-1]
        reg = MetricCollection(
            {"r2": R2Score(), "pearson": PearsonCorrCoef(), "kendall": KendallRankCorrCoef()}
        )
        return {
            "acc": acc,
            "auroc": float(self._score(BinaryAUROC(), self.probs[-1], self.good)),
            **{name: float(v) for name, v in self._score(reg, self.reg, truth).items()},
            **{f"acc_k{k}": a for k, a in enumerate(curve, start=1)},
            # The accuracy curve over k: its worst step, and one binomial standard error of the
            # final accuracy over the n networks (a drop smaller than that is within noise).
            "worst_k_step": min((b - a for a, b in zip(curve, curve[1:], strict=False)), default=0.0),
            "acc_se": math.sqrt(acc * (1 - acc) / len(truth)),
            # The population: the accuracy of always answering the larger class, and the draws
            # whose loss went non-finite (kept as networks or replaced by new draws).
            "base_rate": float(max(self.good.mean(), 1 - self.good.mean())),
            "diverged": float(self.tables["diverged"].sum() + self.tables["redraws"].sum()),
            "median_final_acc": float(np.median(truth)),
            **self.tuning,
        }

    def _score(self, metric, preds: np.ndarray, target: np.ndarray):
        """``metric`` of the predictions ``preds`` (as float32) against ``target``."""
        dev = self.device
        metric = metric.to(dev)
        metric.update(torch.from_numpy(preds).float().to(dev), torch.from_numpy(target).to(dev))
        return metric.compute()

    def cost(self) -> dict:
        # Of one fitted classifier + regressor at k = S (tree nodes for forests).
        return {"params": self.size, "features": self.n_features}
