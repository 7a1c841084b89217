"""Tiny datasets written in their published on-disk formats: the tasks' fixtures (``fixture.py``)
and the real-data paths' tests read them as the full datasets are read."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from bench.datasets import cifar10


def write_cifar10(root: Path, per_batch: int = 12, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py/{data_batch_1..5,test_batch}``: pickled dicts of uint8 data
    [N, 3072] and labels (every class in turn), as in cifar-10-python.tar.gz. Returns ``root``."""
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in (*cifar10.TRAIN, cifar10.TEST):
        batch = {
            b"batch_label": name.encode(),
            b"labels": [i % 10 for i in range(per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def write_mnist(root: Path, n: int = 40, seed: int = 0) -> Path:
    """MNIST's four gzipped IDX files: magic (0, 0, 8, ndim), big-endian sizes, then the bytes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        for kind, array in (
            ("images-idx3", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
            ("labels-idx1", rng.integers(0, 10, n, dtype=np.uint8)),
        ):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
            with gzip.open(root / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
                f.write(header + array.tobytes())
    return root
