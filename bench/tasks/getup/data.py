"""The get-up data: the character's environment and its pools of fallen start states (training,
drawn by the run's seed, and test, the same for every seed), served to the method. Nothing is read
from disk: the simulator is the data."""

from __future__ import annotations

import lightning as L

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
            self.train_pool, self.test_pool = fallen.pools(d, self.cfg["seed"])
