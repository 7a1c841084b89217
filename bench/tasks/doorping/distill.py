"""Dataset distillation losses and the network training they use.

DM (distribution matching, Zhao & Bilen 2023): the mean embedding of each class's real batch and
synthetic images under a fresh random network, batched over classes in one forward pass.
DC (gradient matching, Zhao et al. 2021): per class, the layer-wise distance between the gradients
the real batch and the synthetic images induce.
DD (Wang et al. 2018): the synthetic images are ``steps`` batches of gradient-descent steps with
learned step sizes; the loss of a fresh network on a real batch after those steps (unrolled,
differentiated through every step) is minimised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from bench.tasks.doorping.model import ConvNet


def sample_real(x: torch.Tensor, by_class: list[torch.Tensor], n: int, gen: torch.Generator) -> torch.Tensor:
    """[C, n, ...]: ``n`` images drawn without replacement from each class's pool: every image of
    ``x`` gets a uniform key from ``gen`` and each class takes its ``n`` smallest. ``gen`` advances
    by ``len(x)`` draws whatever the classes' sizes, so a run whose poisoning moved images between
    classes stays on the same random stream as the clean run (paired networks after it), and a
    class that kept its images draws the same ones."""
    keys = torch.rand(len(x), generator=gen).to(x.device)
    picks = [idx[keys[idx].argsort()[:n]] for idx in by_class]
    return x[torch.stack(picks)]


def dm_loss(net: ConvNet, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """Sum over classes of ||mean embed(real_c) - mean embed(syn_c)||^2; real [C,B,...], syn [C,ipc,...]."""
    c = real.shape[0]
    e_real = net.embed(real.flatten(0, 1)).view(c, real.shape[1], -1).mean(1)
    e_syn = net.embed(syn.flatten(0, 1)).view(c, syn.shape[1], -1).mean(1)
    return ((e_real.detach() - e_syn) ** 2).sum()


def dm_loss_loop(net: ConvNet, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """The same loss as ``dm_loss``, one class at a time (the reference code's loop)."""
    loss = real.new_zeros(())
    for c in range(real.shape[0]):
        e_real = net.embed(real[c]).mean(0).detach()
        loss = loss + ((e_real - net.embed(syn[c]).mean(0)) ** 2).sum()
    return loss


def _layer_distance(g_real: torch.Tensor, g_syn: torch.Tensor) -> torch.Tensor:
    """DC's distance: sum over output units of 1 - cosine of their gradients; biases ignored."""
    if g_real.ndim == 1:
        return g_real.new_zeros(())
    a, b = g_real.flatten(1), g_syn.flatten(1)
    return (1 - (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + 1e-6)).sum()


def dc_loss(net: ConvNet, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """Gradient-matching loss summed over classes; real [C,B,...], syn [C,ipc,...]."""
    params = list(net.parameters())
    loss = real.new_zeros(())
    for c in range(real.shape[0]):
        lab_r = torch.full((real.shape[1],), c, device=real.device)
        g_real = torch.autograd.grad(F.cross_entropy(net(real[c]), lab_r), params)
        lab_s = torch.full((syn.shape[1],), c, device=syn.device)
        g_syn = torch.autograd.grad(F.cross_entropy(net(syn[c]), lab_s), params, create_graph=True)
        loss = loss + sum(_layer_distance(r.detach(), s) for r, s in zip(g_real, g_syn, strict=True))
    return loss


def train_net(
    net: ConvNet, x: torch.Tensor, y: torch.Tensor, o: dict, epochs: int, gen: torch.Generator
) -> float:
    """SGD on (x, y) for ``epochs`` epochs of batches of ``o['batch']``; the lr drops x0.1 after half
    when ``o['decay_half']``. Returns the last batch loss."""
    opt = torch.optim.SGD(
        net.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"]
    )
    net.train()
    loss = torch.zeros(())
    for ep in range(epochs):
        if o["decay_half"] and ep == epochs // 2 + 1:
            for g in opt.param_groups:
                g["lr"] = o["lr"] * 0.1
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for i in range(0, len(x), o["batch"]):
            idx = order[i : i + o["batch"]]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return float(loss.detach())


def dd_unroll(
    net: ConvNet, steps: list[tuple[torch.Tensor, torch.Tensor]], lrs: torch.Tensor, create_graph: bool
) -> dict[str, torch.Tensor]:
    """DD's inner training: from ``net``'s weights, one gradient step per (images, labels) of
    ``steps`` with step size ``lrs[i]``; returns the final weights (differentiable in the images
    and ``lrs`` when ``create_graph``)."""
    w = {k: v.detach().requires_grad_(True) for k, v in net.named_parameters()}
    for (x, y), lr in zip(steps, lrs, strict=True):
        loss = F.cross_entropy(functional_call(net, w, (x,)), y)
        grads = torch.autograd.grad(loss, list(w.values()), create_graph=create_graph)
        w = {k: v - lr * g for (k, v), g in zip(w.items(), grads, strict=True)}
        if not create_graph:
            w = {k: v.detach().requires_grad_(True) for k, v in w.items()}
    return w


def dd_loss(net: ConvNet, w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DD's outer objective: cross-entropy of the unrolled weights ``w`` on a real batch."""
    return F.cross_entropy(functional_call(net, w, (x,)), y)
