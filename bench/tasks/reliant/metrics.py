"""Test metrics of one graph: accuracy, AUROC, F1, and the demographic-parity and equal-opportunity
gaps, both read off torchmetrics' fairness statistics (per-group tp/fp/tn/fn rates)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score, BinaryGroupStatRates


class GraphMetrics(nn.Module):
    """Utility metrics on the positive-class probability, fairness gaps on the hard predictions."""

    def __init__(self) -> None:
        super().__init__()
        self.utility = MetricCollection(
            {"acc": BinaryAccuracy(), "auc": BinaryAUROC(), "f1": BinaryF1Score()}
        )
        self.groups = BinaryGroupStatRates(num_groups=2)

    def forward(self, prob: torch.Tensor, y: torch.Tensor, sens: torch.Tensor) -> dict[str, torch.Tensor]:
        self.utility.update(prob, y)
        self.groups.update((prob > 0.5).long(), y, sens)
        return {**self.utility.compute(), **gaps(self.groups.compute())}


def gaps(rates: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """dSP = |P(y^=1 | s=0) - P(y^=1 | s=1)|, dEO = the same among y = 1, from per-group
    [tp, fp, tn, fn] rates (each a fraction of the group)."""
    (tp0, fp0, _, fn0), (tp1, fp1, _, fn1) = rates["group_0"], rates["group_1"]
    tpr0, tpr1 = tp0 / (tp0 + fn0).clamp_min(1e-12), tp1 / (tp1 + fn1).clamp_min(1e-12)
    return {"dsp": (tp0 + fp0 - tp1 - fp1).abs(), "deo": (tpr0 - tpr1).abs()}
