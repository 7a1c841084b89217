"""CIFAR-10 as published (cifar-10-python.tar.gz, unpacked): ``cifar-10-batches-py/`` holding the
pickled batches ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a dict of ``data``
(uint8 [N, 3072]: the red, green, blue planes, row-major) and ``labels``.

torchvision's reader checks archive hashes and wants its own folder name; tasks here read the
batches from any ``data.root`` and report a missing or corrupt batch in one line.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from bench.errors import BenchError

TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = "test_batch"
FOLDER = "cifar-10-batches-py"


def load(root: str | Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images uint8 [50000, 3, 32, 32], labels int64, test images, labels) from ``root``
    or ``root/cifar-10-batches-py``."""
    folder = Path(root or "")
    if root and (folder / FOLDER).is_dir():
        folder = folder / FOLDER
    missing = [n for n in (*TRAIN, TEST) if not (folder / n).is_file()]
    if not root or missing:
        raise BenchError(
            f"CIFAR-10 not found: no python batches at data.root={str(root)!r} (missing "
            f"{', '.join(missing) or 'root'}): unpack cifar-10-python.tar.gz there or set BENCH_DATA"
        )
    parts = [read_batch(folder / n) for n in TRAIN]
    test = read_batch(folder / TEST)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), *test


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: (images uint8 [N, 3, 32, 32], labels int64 [N])."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as e:
        raise BenchError(f"{path} is not a CIFAR-10 python batch ({type(e).__name__}): re-extract") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or len(pixels) != len(labels):
        raise BenchError(f"{path}: expected data [N, 3072] and N labels, got {pixels.shape}, {len(labels)}")
    return pixels.reshape(-1, 3, 32, 32), labels
