"""Backdoor triggers: a square patch ``size`` px wide, ``margin`` px from the bottom-right border.

NAIVEATTACK stamps a fixed white patch; DOORPING starts from a random patch and, after each inner
training of a network, optimises it so that the network's most connected hidden unit fires
``alpha`` times harder (TrojanNN-style neuron excitation), then the poisoned images are re-stamped.
The unit's activation is read after its ReLU, as baadd reads it: its forward hook on the hidden
Linear keeps the output tensor that the following ``ReLU(inplace=True)`` overwrites.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.tasks.doorping.model import ConvNet


def patch_mask(channels: int, size: int, patch: int, margin: int) -> torch.Tensor:
    """[C, H, W] mask, 1 on the trigger patch."""
    if patch < 1 or patch + margin > size:
        raise ValueError(f"a {patch}px trigger {margin}px from the border does not fit {size}px images")
    mask = torch.zeros(channels, size, size)
    mask[:, size - margin - patch : size - margin, size - margin - patch : size - margin] = 1
    return mask


def stamp(x: torch.Tensor, trigger: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images with the trigger pasted over the mask."""
    return x * (1 - mask) + trigger * mask


def white_trigger(mask: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """NAIVEATTACK's patch: pixel value 1 (normalised) on the mask."""
    return hi.to(mask) * mask


def random_trigger(
    mask: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """DOORPING's initial patch: uniform pixel values in [1/255, 1] (as the official uint8 draw)."""
    u = torch.randint(1, 256, mask.shape, generator=gen).float() / 255
    return (lo.to(mask) + u * (hi - lo).to(mask)) * mask


def top_units(net: ConvNet, k: int) -> torch.Tensor:
    """The ``k`` hidden units with the largest sum of |incoming weights|."""
    return net.hidden.weight.detach().abs().sum(1).topk(k).indices


def optimise_trigger(
    net: ConvNet,
    trigger: torch.Tensor,
    mask: torch.Tensor,
    a: dict,
    black: torch.Tensor,
    bounds: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, int]:
    """One DOORPING trigger update on ``net``; returns (trigger, Adam steps taken).

    The trigger image is the patch on a black background (normalised pixel 0, ``black``), as in the
    official code. The selected units' activations (after the ReLU) on it are driven to ``alpha``
    times their initial value (MSE, stop below ``stop_loss`` or after ``max_steps``); only the patch
    moves. A unit the patch leaves inactive starts at 0, so its target is 0 and the update stops at
    step 0, as in baadd. ``bounds`` (lo, hi): clamp to valid pixels after every step (the
    ``doorping_clamped`` method).
    """
    units = top_units(net, a["topk"])
    t = trigger.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([t], lr=a["lr"], betas=(0.9, 0.99))
    background = black.expand_as(mask) * (1 - mask)

    def excite():
        return torch.relu(net.hidden_units((background + t * mask)[None]))[0, units]

    with torch.no_grad():
        target = a["alpha"] * excite()
    steps = 0
    while steps < a["max_steps"]:
        loss = F.mse_loss(excite(), target)
        if loss.item() < a["stop_loss"]:
            break
        (grad,) = torch.autograd.grad(loss, t)
        t.grad = grad * mask
        opt.step()
        steps += 1
        if bounds is not None:
            with torch.no_grad():
                t.copy_(torch.maximum(torch.minimum(t, bounds[1]), bounds[0]))
    return (t.detach() * mask), steps
