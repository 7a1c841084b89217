"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (70k real images, offline)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from bench.errors import BenchError

ROOT = Path(os.environ.get("BENCH_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MEAN, STD = 0.2860, 0.3530  # of the training images, in [0, 1]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not, as a uint8 array of its declared shape."""
    # torchvision's reader wants the files unpacked in its own folder layout; the 16-byte IDX
    # header is simpler to read here than staging copies.
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 28, 28], labels int64 [N])`` for split ``train`` (60k) or ``test`` (10k)."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images, labels = ROOT / f"{prefix}-images-idx3-ubyte.gz", ROOT / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise BenchError(
            f"Fashion-MNIST not found in {ROOT}: run `make install` "
            "(or `apt-get install dataset-fashion-mnist`)"
        )
    return read_idx(images), read_idx(labels).astype(np.int64)
