"""The ConvNet of the dataset-distillation code (DC/DM, and baadd's variant): ``depth`` blocks of
3x3 conv -> ReLU -> 2x2 average pool, no normalisation, then a hidden FC layer (192 units in the
official code) whose units DOORPING excites, then the classifier."""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    def __init__(self, channels: int, classes: int, size: int, width: int, depth: int, hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2)]
            c, size = width, size // 2
        if size < 1:
            raise ValueError(f"depth {depth} pools the image away")
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Linear(width * size * size, hidden)
        self.classifier = nn.Linear(hidden, classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened conv features: what distribution matching compares."""
        return self.features(x)

    def hidden_units(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation of the hidden FC layer (DOORPING drives these units after their ReLU)."""
        return self.hidden(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.hidden_units(x)))


def build_net(cfg: dict, channels: int, size: int) -> ConvNet:
    m = cfg["model"]
    return ConvNet(channels, cfg["data"]["num_classes"], size, m["width"], m["depth"], m["hidden"])
