"""The shared readers of published dataset formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import cifar10
from bench.datasets.fashion_mnist import read_idx
from bench.datasets.formats import write_cifar10, write_mnist
from bench.errors import BenchError


def test_cifar10_keeps_the_channel_planes(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path)
    xtr, ytr, xte, yte = cifar10.load(root)
    assert xtr.shape == (60, 3, 32, 32) and xtr.dtype == np.uint8 and ytr.dtype == np.int64
    with open(root / cifar10.FOLDER / cifar10.TEST, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert list(yte) == raw[b"labels"]
    # the first 1024 bytes of a row are the red plane, row-major
    assert xte[0, 0, 0, 1] == raw[b"data"][0, 1] and xte[0, 1, 0, 0] == raw[b"data"][0, 1024]
    assert cifar10.load(root / cifar10.FOLDER)[0].shape == xtr.shape  # the folder itself works too


def test_cifar10_missing_or_corrupt_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="CIFAR-10 not found"):
        cifar10.load(tmp_path)
    with pytest.raises(BenchError, match="CIFAR-10 not found"):
        cifar10.load(None)
    root = write_cifar10(tmp_path / "bad")
    (root / cifar10.FOLDER / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(BenchError, match="data_batch_3 is not a CIFAR-10 python batch"):
        cifar10.load(root)


def test_idx_reader_reads_gzipped_and_plain_files(tmp_path: Path) -> None:
    root = write_mnist(tmp_path / "mnist", n=5)
    images = read_idx(root / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    import gzip

    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress((root / "t10k-images-idx3-ubyte.gz").read_bytes()))
    assert np.array_equal(read_idx(plain), images)
