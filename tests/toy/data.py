"""The points: generated (``source: bundled``) or read from ``data.root`` (``source: real``)."""

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


class Points(L.LightningDataModule):
    def __init__(self, cfg):
        super().__init__()
        self.data = cfg["data"]

    def setup(self, stage=None):
        if self.data["source"] == "real":
            xy = torch.tensor(np.loadtxt(Path(self.data["root"]) / "points.csv", delimiter=","))
        else:
            x = torch.randn(2 * self.data["n"], 1, generator=torch.Generator().manual_seed(0))
            xy = torch.cat([x, 3 * x + 1], 1)
        xy, half = xy.float(), len(xy) // 2
        self.train = TensorDataset(xy[:half, :1], xy[:half, 1:])
        self.test = TensorDataset(xy[half:, :1], xy[half:, 1:])

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.data["batch_size"], shuffle=True)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.data["batch_size"])
