"""LeNet as the paper trains it: conv-pool-conv-pool, three fully connected layers, optional
dropout after FC1 and FC2. Sizes come from the config so the cpu preset can shrink it."""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    """conv(c0->c1) relu pool, conv(c1->c2) relu pool, fc(c2*s*s->h1) relu [drop], fc(h1->h2) relu
    [drop], fc(h2->classes). ``layers()`` lists the weighted layers in graph order."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: tuple[int, int],
        hidden: tuple[int, int],
        classes: int,
        kernel: int,
        padding: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c0, size, _ = shape
        self.conv1 = nn.Conv2d(c0, channels[0], kernel, padding=padding)
        self.conv2 = nn.Conv2d(channels[0], channels[1], kernel, padding=padding)
        for _ in range(2):
            size = (size + 2 * padding - kernel + 1) // 2
        if size < 1:
            raise ValueError(f"images of side {shape[1]} vanish under kernel {kernel}, padding {padding}")
        self.fc1 = nn.Linear(channels[1] * size * size, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], classes)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)

    def layers(self) -> list[nn.Module]:
        return [self.conv1, self.conv2, self.fc1, self.fc2, self.fc3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x))).flatten(1)
        x = self.drop(torch.relu(self.fc1(x)))
        x = self.drop(torch.relu(self.fc2(x)))
        return self.fc3(x)
