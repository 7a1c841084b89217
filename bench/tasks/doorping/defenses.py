"""Model-level backdoor defenses on the evaluation networks.

Neural Cleanse (Wang et al., S&P 2019), reduced: per class, reverse-engineer the smallest mask
(and pattern) that flips clean images to that class; a backdoored class needs a far smaller mask
than the others. The anomaly index of a class is (median - its L1 norm) / (1.4826 x MAD) over the
classes' norms; the model is flagged when the attack's target class is the smallest and its index
exceeds the threshold (2 in the paper). Fine-pruning (Liu et al., RAID 2018): prune dormant
channels of the last conv layer, then fine-tune on clean data; the attack survives when ASR stays."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from bench.tasks.doorping import distill
from bench.tasks.doorping.model import ConvNet


def reverse_mask_norms(
    net: nn.Module,
    x: torch.Tensor,
    classes: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    start: torch.Tensor,
    d: dict,
) -> torch.Tensor:
    """L1 norm of the reverse-engineered trigger mask of each class, on clean images ``x``; the
    pattern is searched in [``lo``, ``hi``] per channel (sigmoid-parametrised), from ``start``."""
    norms = []
    frac = ((start - lo) / (hi - lo)).clamp(1e-4, 1 - 1e-4).expand(x.shape[1:])
    for k in range(classes):
        m_raw = torch.full(x.shape[-2:], -2.0, device=x.device, requires_grad=True)
        p_raw = torch.logit(frac).clone().to(x.device).requires_grad_(True)
        opt = torch.optim.Adam([m_raw, p_raw], lr=d["lr"])
        target = torch.full((len(x),), k, device=x.device)
        for _ in range(d["steps"]):
            m = torch.sigmoid(m_raw)
            p = lo + (hi - lo) * torch.sigmoid(p_raw)
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


def fine_prune(net: ConvNet, x: torch.Tensor, y: torch.Tensor, d: dict, gen: torch.Generator) -> float:
    """Fine-pruning (Liu et al., RAID 2018), in place: prune the last conv layer's channels in order
    of increasing mean activation on the defender's clean images ``x`` (dormant ones first) while
    their accuracy stays within ``fp_max_drop`` of the unpruned net's, then fine-tune on them for
    ``fp_epochs`` with the pruned channels held at zero. Returns the fraction of channels pruned."""
    conv = [m for m in net.features if isinstance(m, nn.Conv2d)][-1]
    keep = torch.ones(conv.out_channels, device=x.device)
    acts = []

    def gate(module, inputs, out):  # the search masks channels at the output, weights untouched
        acts.append(torch.relu(out).mean((0, 2, 3)))
        return out * keep.view(1, -1, 1, 1)

    hook = conv.register_forward_hook(gate)
    base = _accuracy(net, x, y)
    pruned = 0
    for ch in acts[0].argsort()[:-1]:  # dormant first; never all of them
        keep[ch] = 0
        if _accuracy(net, x, y) < base - d["fp_max_drop"]:
            keep[ch] = 1
            break
        pruned += 1
    hook.remove()
    for name in ("weight", "bias"):  # torch's pruning keeps the channels at zero while fine-tuning
        p = getattr(conv, name)
        prune.custom_from_mask(conv, name, keep.view(-1, *([1] * (p.ndim - 1))).expand_as(p))
    distill.train_net(net, x, y, d["fp_train"], d["fp_epochs"], gen)
    for name in ("weight", "bias"):
        prune.remove(conv, name)
    net.eval()
    return pruned / conv.out_channels


@torch.no_grad()
def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return float((net(x).argmax(1) == y).float().mean())
