"""The DataModule: serves the population's summary tables, one batch holding every network."""

from __future__ import annotations

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from bench.tasks.nngraph import summaries


class PopulationDataModule(L.LightningDataModule):
    """``setup`` trains (or reads the cached) population and its graph summaries. The test loader
    yields one batch, ``{family: tensor [N, S, F], "final_acc": [N]}``: a predictor is judged by
    cross-validation over the networks, which needs them all at once."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        self.tables: dict[str, np.ndarray] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.tables:
            self.tables = summaries.get(self.cfg)

    def test_dataloader(self) -> DataLoader:
        return DataLoader([self.tables], batch_size=None)
