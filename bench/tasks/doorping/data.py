"""Real images for distillation, normalised, held as tensors.

``data.source=bundled``: Fashion-MNIST (Debian package), a fixed per-class subset of the training
images (the pool distillation draws from) and of the test images. ``data.source=real``: CIFAR-10
python pickle batches read from ``<root>/cifar-10-batches-py``. The method distils from the
pool; the test loader serves the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from bench.datasets import cifar10, fashion_mnist
from bench.errors import BenchError

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


@dataclass
class Images:
    """Normalised train pool and test split; ``lo``/``hi`` are the per-channel normalised values of
    pixels 0 and 1 (the valid range a clamped trigger keeps to)."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def lo(self) -> torch.Tensor:
        return (-self.mean / self.std).view(-1, 1, 1)

    @property
    def hi(self) -> torch.Tensor:
        return ((1 - self.mean) / self.std).view(-1, 1, 1)


def _per_class(y: np.ndarray, n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    picks = []
    for c in range(classes):
        idx = np.flatnonzero(y == c)
        if len(idx) < n:
            raise BenchError(f"class {c} has {len(idx)} training images, data.train_per_class={n}")
        picks.append(rng.permutation(idx)[:n])
    return np.concatenate(picks)


def load(d: dict) -> Images:
    """The images for data config ``d`` (the subset is fixed by ``subset_seed``, not the run seed)."""
    if d["source"] == "bundled":
        xtr, ytr = fashion_mnist.load("train")
        xte, yte = fashion_mnist.load("test")
        xtr, xte = xtr[:, None], xte[:, None]
        mean, std = (fashion_mnist.MEAN,), (fashion_mnist.STD,)
    elif d["source"] == "real":
        if d["dataset"] != "cifar10":
            raise BenchError(f"unknown data.dataset {d['dataset']!r}: only cifar10 is read from disk")
        xtr, ytr, xte, yte = cifar10.load(d["root"])
        mean, std = CIFAR_MEAN, CIFAR_STD
    else:
        raise BenchError(f"unknown data.source {d['source']!r}: choose bundled or real")
    if ytr.max() >= d["num_classes"]:
        raise BenchError(f"labels reach {ytr.max()} but data.num_classes={d['num_classes']}")
    rng = np.random.default_rng(d["subset_seed"])
    fit = _per_class(ytr, d["train_per_class"], d["num_classes"], rng)
    test = rng.permutation(len(yte))[: d["test_size"]]
    m, s = torch.tensor(mean), torch.tensor(std)

    def norm(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x).float().div(255)
        if t.shape[-1] != d["image_size"]:
            t = F.interpolate(t, size=d["image_size"], mode="bilinear", antialias=True)
        return (t - m.view(1, -1, 1, 1)) / s.view(1, -1, 1, 1)

    return Images(
        norm(xtr[fit]), torch.from_numpy(ytr[fit]), norm(xte[test]), torch.from_numpy(yte[test]), m, s
    )


class DistillDataModule(L.LightningDataModule):
    """Holds ``self.images`` for the method, and serves the test split to test."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        self.images: Images | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.images is None:
            self.images = load(self.cfg["data"])

    def test_dataloader(self) -> DataLoader:
        im = self.images
        return DataLoader(TensorDataset(im.x_test, im.y_test), batch_size=self.cfg["data"]["test_batch_size"])
