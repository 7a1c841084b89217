"""Images for classification: bundled Fashion-MNIST (offline default) or an ImageFolder tree read
with the official EMO augmentation, built by timm's ``create_transform`` as the official code does.

Decoding is PIL's (libjpeg-turbo). torchvision's ``decode_jpeg`` alone decodes a 500x375 JPEG ~12%
faster, but timm's RandAugment works on PIL images and converting its tensor to one gives the gain
back (per CPU-second, one core: PIL ~1210, decode_jpeg ~1370, decode_jpeg + to PIL ~1200), so
decode_jpeg would add a path and win nothing; ``make perf`` measures all three in one run
(bench/tasks/emo/perf.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from bench.datasets import fashion_mnist
from bench.errors import BenchError
from bench.run import env_threads

# zhangzjn/EMO configs/mobile/cls_emo.py ``data.train_transforms`` (as logged in every
# resources/EMO_*/log_train.txt): timm's create_transform with these options and RandAugment
# "rand-m<data.randaugment_m>-mstd0.5-inc1". With RandAugment on, timm skips the color jitter, as
# in the official runs; "random" picks bilinear or bicubic per crop and per augmentation op.
OFFICIAL_TRAIN = {
    "hflip": 0.5,
    "color_jitter": 0.4,
    "interpolation": "random",
    "re_prob": 0.0,
    "re_mode": "pixel",
    "re_count": 1,
}
# The official test transform: Resize(int(size / 0.875), bicubic), CenterCrop(size), normalize.
EVAL_INTERPOLATION = "bicubic"


def train_transform(data: dict):
    """The official training augmentation at ``data.image_size``, normalized with ImageNet's
    mean and std (timm's defaults, the official ones)."""
    from timm.data import create_transform

    transform = create_transform(
        data["image_size"],
        is_training=True,
        auto_augment=f"rand-m{data['randaugment_m']}-mstd0.5-inc1",
        **OFFICIAL_TRAIN,
    )
    return keep_zero_bit_posterize(transform)


def posterize(img, bits_to_keep: int, **_):
    """timm's posterize op, keeping 0 bits as a black image as Pillow did before 13 (Pillow 13
    raises on 0, which PosterizeIncreasing draws whenever m9's noise reaches magnitude 10: about
    one image in 700, so every ImageNet epoch would stop with a ValueError)."""
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def keep_zero_bit_posterize(transform):
    """``transform`` (a timm Compose) with its RandAugment's posterize ops set to ``posterize``."""
    from timm.data import auto_augment

    for step in transform.transforms:
        if isinstance(step, auto_augment.RandAugment):
            for op in step.ops:
                if op.aug_fn is auto_augment.posterize:
                    op.aug_fn = posterize
    return transform


def eval_transform(data: dict):
    """Resize the short side to ``image_size / crop_pct`` (bicubic), center-crop, normalize."""
    from timm.data import create_transform

    return create_transform(
        data["image_size"], is_training=False, crop_pct=data["crop_pct"], interpolation=EVAL_INTERPOLATION
    )


def num_workers(setting: int | str | None, on_cuda: bool) -> int:
    """``data.num_workers``: a count, or ``null``/``auto``: on CUDA, this run's cores per visible GPU
    (its cores are ``BENCH_THREADS``, which a sweep sets to each run's share of the node, else the
    cores it may run on), so that the loaders of a node's GPUs share its cores without oversubscribing
    them (8 on the official 64-core, 8-GPU nodes); on CPU 0, since training uses those cores."""
    if isinstance(setting, int) and not isinstance(setting, bool) and setting >= 0:
        return setting
    if setting not in (None, "auto"):
        raise BenchError(f"data.num_workers must be a count, null or auto, got {setting!r}")
    if not on_cuda:
        return 0
    cores = env_threads() or len(os.sched_getaffinity(0))
    return max(1, cores // max(1, torch.cuda.device_count()))


class ImageDataModule(L.LightningDataModule):
    """``data.source=bundled``: subsets of Fashion-MNIST drawn by the run's seed (every method on one
    seed sees the same; not a config key, so seeds of one config share its hash), resized and made
    3-channel once, held as tensors. ``data.source=real``: ``<root>/train`` and ``<root>/val`` ImageFolders
    (ImageNet layout) with the official augmentation; val doubles as test, as on ImageNet. Batches
    are pinned when the run trains on CUDA. The training order is drawn from a generator of the
    run's seed alone, so every method sees the same batches on one seed, whatever its
    initialisation drew."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.data = cfg["data"]
        self.seed = cfg["seed"]
        self.order = torch.Generator().manual_seed(cfg["seed"])
        self.splits: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self._bundled() if self.data["source"] == "bundled" else self._real()

    def _bundled(self) -> dict[str, Dataset]:
        d = self.data
        train_x, train_y = fashion_mnist.load("train")
        test_x, test_y = fashion_mnist.load("test")
        order = np.random.default_rng(self.seed).permutation(len(train_x))
        fit, val = order[: d["train_size"]], order[d["train_size"] : d["train_size"] + d["val_size"]]
        test = np.random.default_rng(self.seed).permutation(len(test_x))[: d["test_size"]]

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

        d = self.data
        root = Path(d["root"] or "")
        if not d["root"] or not (root / "train").is_dir() or not (root / "val").is_dir():
            raise BenchError(
                f"no ImageFolder data at data.root={d['root']!r}: point it (or "
                "BENCH_DATA) at a folder with train/<class>/*.jpg and val/<class>/*.jpg"
            )
        train = datasets.ImageFolder(root / "train", transform=train_transform(d))
        val = datasets.ImageFolder(root / "val", transform=eval_transform(d))
        if len(train.classes) != d["num_classes"]:
            raise BenchError(
                f"{root}/train has {len(train.classes)} classes but data.num_classes="
                f"{d['num_classes']}: set data.num_classes={len(train.classes)}"
            )
        return {"train": train, "val": val, "test": val}

    def _on_cuda(self) -> bool:
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def _loader(self, split: str) -> DataLoader:
        on_cuda = self._on_cuda()
        workers = num_workers(self.data["num_workers"], on_cuda)
        return DataLoader(
            self.splits[split],
            batch_size=self.data["batch_size"],
            shuffle=split == "train",
            generator=self.order if split == "train" else None,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=on_cuda,
            drop_last=split == "train",
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
