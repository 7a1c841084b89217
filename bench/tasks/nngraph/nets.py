"""The population's architectures (the paper's LeNet, VGG, AlexNet, ResNet), each listing its
weighted layers in graph order in ``layers()``. Sizes come from the config's ``archs`` table so the
cpu preset can shrink them; ``width`` scales every channel and hidden count."""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError


class ConvChain(nn.Module):
    """LeNet, VGG and AlexNet: conv stages ``[out, kernel, padding, pool]`` (relu, then a
    ``pool`` x ``pool`` max-pool when pool > 1), then fully connected layers ``hidden`` (relu,
    dropout after each) and the classifier."""

    def __init__(self, shape: tuple, convs: list, hidden: list, classes: int, dropout: float) -> None:
        super().__init__()
        channels, size, _ = shape
        self.convs, self.pools = nn.ModuleList(), []
        for out, kernel, padding, pool in convs:
            self.convs.append(nn.Conv2d(channels, out, kernel, padding=padding))
            size = (size + 2 * padding - kernel + 1) // max(pool, 1)
            self.pools.append(pool)
            channels = out
        if size < 1:
            raise BenchError(f"images of side {shape[1]} vanish under the conv stages {convs}: shrink them")
        sizes = [channels * size * size, *hidden, classes]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.drop = nn.Dropout(dropout)

    def layers(self) -> list[nn.Module]:
        return [*self.convs, *self.fcs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, pool in zip(self.convs, self.pools, strict=True):
            x = torch.relu(conv(x))
            x = nn.functional.max_pool2d(x, pool) if pool > 1 else x
        x = x.flatten(1)
        for fc in self.fcs[:-1]:
            x = self.drop(torch.relu(fc(x)))
        return self.fcs[-1](x)


class Block(nn.Module):
    """ResNet's basic block: conv-bn-relu-conv-bn plus the shortcut (a 1x1 conv + bn when the
    shape changes), relu."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.short(x))


class ResNet(nn.Module):
    """The CIFAR ResNet: a 3x3 stem, stages of ``blocks`` basic blocks (stride 2 from the second
    stage), global average pooling, the classifier. The graph follows the main path (stem, every
    block's two convs, the classifier); the shortcut projections carry no nodes of their own and are
    left out of it."""

    def __init__(self, shape: tuple, stages: list, blocks: int, classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(shape[0], stages[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(stages[0])
        body, cin = [], stages[0]
        for i, cout in enumerate(stages):
            for b in range(blocks):
                body.append(Block(cin, cout, 2 if i > 0 and b == 0 else 1))
                cin = cout
        self.body = nn.Sequential(*body)
        self.fc = nn.Linear(cin, classes)

    def layers(self) -> list[nn.Module]:
        return [self.stem, *(c for blk in self.body for c in (blk.conv1, blk.conv2)), self.fc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(torch.relu(self.bn(self.stem(x))))
        return self.fc(x.mean(dim=(2, 3)))


def build(spec: dict, shape: tuple, classes: int, width: float, dropout: float) -> nn.Module:
    """The network ``spec`` (an entry of the config's ``archs``) describes, at ``width``."""

    def scale(n: int) -> int:
        return max(1, round(n * width))

    if spec["kind"] == "chain":
        convs = [[scale(c), k, p, pool] for c, k, p, pool in spec["convs"]]
        return ConvChain(shape, convs, [scale(h) for h in spec["hidden"]], classes, dropout)
    if spec["kind"] == "resnet":
        return ResNet(shape, [scale(c) for c in spec["stages"]], spec["blocks"], classes)
    raise BenchError(f"unknown architecture kind {spec['kind']!r}: use chain or resnet")
