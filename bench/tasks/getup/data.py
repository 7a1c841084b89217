"""The get-up data: the character's environment and its pools of fallen start states (training
and test), served to the method; ticks drive its training loop (one ``training_step`` = a block
of environment steps and SAC updates). Nothing is read from disk: the simulator is the data."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from bench.datasets.ticks import Ticks
from bench.errors import BenchError
from bench.tasks.getup import fallen
from bench.tasks.getup.env import GetUpEnv


class GetUpData(L.LightningDataModule):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg["data"]
        if d["source"] != "sim":
            raise BenchError(f"unknown data.source {d['source']!r}: getup only has sim (MuJoCo)")
        if d["pool_size"] < 1 or d["test_states"] < 2:
            raise BenchError("data.pool_size must be >= 1 and data.test_states >= 2 (prone and supine)")
        self.env: GetUpEnv | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.env is None:
            d = self.cfg["data"]
            self.env = GetUpEnv(d)
            self.train_pool, self.test_pool = fallen.pools(d)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Ticks(), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        # One batch: the test states' indices.
        return DataLoader([torch.arange(self.cfg["data"]["test_states"])], batch_size=None)
