"""The images the population trains on: sklearn's digits (offline default), or CIFAR-10 or MNIST
from disk in their published formats.

CIFAR-10: python batches (``bench.datasets.cifar10``). MNIST: the four IDX files
(``train-images-idx3-ubyte`` ..., gzipped or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.datasets import cifar10
from bench.datasets.fashion_mnist import read_idx
from bench.errors import BenchError

MNIST = {"train": "train", "test": "t10k"}
ON_DISK = ("cifar10", "mnist")


@dataclass
class Splits:
    """float32 images [N, C, H, W] (standardized) and int64 labels for train / val / test, and
    ``black``: a black pixel standardized [C], what a padded border holds."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    black: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train[0].shape[1:])


def load(data: dict) -> Splits:
    """The splits ``data`` (the config's ``data`` section) names, standardized by train statistics."""
    if data["source"] == "digits":
        train, test = _digits(data)
    elif data["source"] == "cifar10":
        train, test = _cifar(data["root"])
    elif data["source"] == "mnist":
        train, test = (_mnist(data["root"], split) for split in MNIST)
    else:
        raise BenchError(f"unknown data.source {data['source']!r}: use digits, cifar10 or mnist")
    rng = np.random.default_rng(data["split_seed"])
    order = rng.permutation(len(train[0]))
    val_idx, fit_idx = order[: data["val_size"]], order[data["val_size"] :]
    if data["train_size"]:
        fit_idx = fit_idx[: data["train_size"]]
    test_idx = rng.permutation(len(test[0]))[: data["test_size"] or None]
    if len(fit_idx) == 0 or len(test_idx) == 0:
        raise BenchError(f"data.val_size={data['val_size']} leaves no training images: lower it")
    x, y = train
    mean, std = x[fit_idx].mean(axis=(0, 2, 3), keepdims=True), x[fit_idx].std(axis=(0, 2, 3), keepdims=True)

    def norm(images: np.ndarray) -> np.ndarray:
        return ((images - mean) / (std + 1e-8)).astype(np.float32)

    return Splits(
        train=(norm(x[fit_idx]), y[fit_idx]),
        val=(norm(x[val_idx]), y[val_idx]),
        test=(norm(test[0][test_idx]), test[1][test_idx]),
        black=norm(np.zeros_like(mean)).ravel(),
    )


def _digits(data: dict) -> tuple[tuple, tuple]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None] / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(data["split_seed"]).permutation(len(x))
    test, train = order[: data["test_size"]], order[data["test_size"] :]
    # digits has no official test split: a fixed held-out part plays it; load() then takes it all.
    return (x[train], y[train]), (x[test], y[test])


def _mnist(root: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    folder, found = Path(root or ""), []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{MNIST[split]}-{kind}-ubyte"
        found += [p for p in (folder / name, folder / f"{name}.gz") if root and p.is_file()][:1]
    if len(found) < 2:
        raise BenchError(
            f"no MNIST {split} IDX files at data.root={root!r} ({MNIST[split]}-images-idx3-ubyte[.gz] and "
            f"{MNIST[split]}-labels-idx1-ubyte[.gz]): point data.root (or BENCH_DATA) at them"
        )
    images, labels = (read_idx(p) for p in found)
    if images.ndim != 3 or len(images) != len(labels):
        raise BenchError(
            f"{found[0]}: expected images [N, H, W] and N labels, got {images.shape}, {labels.shape}"
        )
    return images[:, None].astype(np.float32) / 255.0, labels.astype(np.int64)


def _cifar(root: str | None) -> tuple[tuple, tuple]:
    xtr, ytr, xte, yte = cifar10.load(root)
    return (xtr.astype(np.float32) / 255.0, ytr), (xte.astype(np.float32) / 255.0, yte)
