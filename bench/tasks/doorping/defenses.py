"""Neural Cleanse (Wang et al., S&P 2019), reduced: per class, reverse-engineer the smallest mask
(and pattern) that flips clean images to that class; a backdoored class needs a far smaller mask
than the others. The anomaly index of a class is (median - its L1 norm) / (1.4826 x MAD) over the
classes' norms; the model is flagged when the attack's target class is the smallest and its index
exceeds the threshold (2 in the paper)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def reverse_mask_norms(
    net: nn.Module, x: torch.Tensor, classes: int, lo: torch.Tensor, hi: torch.Tensor, d: dict
) -> torch.Tensor:
    """L1 norm of the reverse-engineered trigger mask of each class, on clean images ``x``."""
    norms = []
    for k in range(classes):
        m_raw = torch.full(x.shape[-2:], -2.0, device=x.device, requires_grad=True)
        p_raw = torch.zeros(x.shape[1:], device=x.device, requires_grad=True)
        opt = torch.optim.Adam([m_raw, p_raw], lr=d["lr"])
        target = torch.full((len(x),), k, device=x.device)
        for _ in range(d["steps"]):
            m = torch.sigmoid(m_raw)
            p = lo + (hi - lo) * torch.sigmoid(p_raw)  # a valid-pixel pattern
            loss = F.cross_entropy(net(x * (1 - m) + p * m), target) + d["l1"] * m.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        norms.append(torch.sigmoid(m_raw).sum().detach())
    return torch.stack(norms)


def anomaly_index(norms: torch.Tensor, k: int) -> float:
    """How far below the median class ``k``'s mask norm lies, in robust standard deviations."""
    med = norms.median()
    mad = (norms - med).abs().median() * 1.4826
    return float((med - norms[k]) / (mad + 1e-12))
