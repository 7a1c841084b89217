"""Model cost figures shared by tasks: parameters and FLOPs counted by torch itself."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of one input of ``input_shape`` (no batch dim), counted by torch's
    FlopCounterMode: 2 per multiply-add, matmuls and convolutions only. Papers' "FLOPs" counted
    with fvcore are multiply-adds (this / 2) and include norms, so they come out 2-3% higher."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(counter.get_total_flops())
