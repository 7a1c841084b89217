"""The DataModule: holds the population's summary tables, every network at once."""

from __future__ import annotations

import lightning as L
import numpy as np

from bench.tasks.nngraph import summaries


class PopulationDataModule(L.LightningDataModule):
    """``setup`` trains (or reads the cached) population and its graph summaries into ``tables``:
    ``{family: [N, S, F], "final_acc": [N]}``. A predictor is judged by cross-validation over the
    networks, which needs them all at once."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        self.tables: dict[str, np.ndarray] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.tables:
            self.tables = summaries.get(self.cfg)
