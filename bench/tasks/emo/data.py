"""Images for classification: bundled Fashion-MNIST (offline default) or an ImageFolder tree."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from bench.datasets import fashion_mnist
from bench.errors import BenchError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ImageDataModule(L.LightningDataModule):
    """``data.source=bundled``: a fixed subset of Fashion-MNIST, resized and made 3-channel once,
    held as tensors. ``data.source=real``: ``<root>/train`` and ``<root>/val`` ImageFolders
    (ImageNet layout) with the paper's augmentation; val doubles as test, as on ImageNet."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.data = cfg["data"]
        self.splits: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self._bundled() if self.data["source"] == "bundled" else self._real()

    def _bundled(self) -> dict[str, Dataset]:
        d = self.data
        train_x, train_y = fashion_mnist.load("train")
        test_x, test_y = fashion_mnist.load("test")
        order = np.random.default_rng(d["subset_seed"]).permutation(len(train_x))
        fit, val = order[: d["train_size"]], order[d["train_size"] : d["train_size"] + d["val_size"]]
        test = np.random.default_rng(d["subset_seed"]).permutation(len(test_x))[: d["test_size"]]

        def tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
            images = torch.from_numpy(x).float().div(255).unsqueeze(1)
            images = F.interpolate(images, size=d["image_size"], mode="bilinear", antialias=True)
            images = (images - fashion_mnist.MEAN) / fashion_mnist.STD
            return TensorDataset(images.expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(y))

        return {
            "train": tensors(train_x[fit], train_y[fit]),
            "val": tensors(train_x[val], train_y[val]),
            "test": tensors(test_x[test], test_y[test]),
        }

    def _real(self) -> dict[str, Dataset]:
        from torchvision import datasets
        from torchvision.transforms import v2

        d = self.data
        root = Path(d["root"] or "")
        if not d["root"] or not (root / "train").is_dir() or not (root / "val").is_dir():
            raise BenchError(
                f"no ImageFolder data at data.root={d['root']!r}: point it (or "
                "BENCH_DATA) at a folder with train/<class>/*.jpg and val/<class>/*.jpg"
            )
        size = d["image_size"]
        norm = [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
        train_tf = v2.Compose(
            [
                v2.RandomResizedCrop(size),
                v2.RandomHorizontalFlip(),
                v2.RandAugment(num_ops=2, magnitude=d["randaugment_m"]),
                *norm,
            ]
        )
        eval_tf = v2.Compose([v2.Resize(int(size / d["crop_pct"])), v2.CenterCrop(size), *norm])
        train = datasets.ImageFolder(root / "train", transform=train_tf)
        val = datasets.ImageFolder(root / "val", transform=eval_tf)
        if len(train.classes) != d["num_classes"]:
            raise BenchError(
                f"{root}/train has {len(train.classes)} classes but data.num_classes="
                f"{d['num_classes']}: set data.num_classes={len(train.classes)}"
            )
        return {"train": train, "val": val, "test": val}

    def _loader(self, split: str) -> DataLoader:
        workers = self.data["num_workers"]
        return DataLoader(
            self.splits[split],
            batch_size=self.data["batch_size"],
            shuffle=split == "train",
            num_workers=workers,
            persistent_workers=workers > 0,
            drop_last=split == "train",
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
