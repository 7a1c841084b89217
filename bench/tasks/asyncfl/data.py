"""Federated data: one pool of training examples and the clients as index ranges into it (CSR:
``offsets[i]:offsets[i+1]`` of ``index``), so a client costs two integers, not an object.

``data.source=bundled``: Fashion-MNIST (Debian package) split non-IID over ``num_clients``
(Dirichlet label mix or label shards). ``data.source=real``: ``data.dataset`` read from
``data.root`` in its published format: FEMNIST as LEAF JSON (one client per writer) or CIFAR-10 as
the python pickle batches (split like Fashion-MNIST).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.datasets import cifar10, fashion_mnist
from bench.errors import BenchError


@dataclass
class Federation:
    """Training pool, client index ranges, and the held-out val (server-lr choice) / test split."""

    x: torch.Tensor
    y: torch.Tensor
    index: np.ndarray
    offsets: np.ndarray
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_clients(self) -> int:
        return len(self.offsets) - 1


def partition(labels: np.ndarray, d: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Non-IID split of ``labels`` over ``d['num_clients']`` clients of ``d['examples_per_client']``
    examples each: ``dirichlet`` (label mix ~ Dir(alpha) per client; a class pool is reused
    cyclically once exhausted) or ``shards`` (sorted by label, ``shards_per_client`` shards each)."""
    n_clients, per = d["num_clients"], d["examples_per_client"]
    classes = int(labels.max()) + 1
    if d["partition"] == "dirichlet":
        mix = rng.dirichlet(np.full(classes, d["alpha"]), n_clients)
        counts = rng.multinomial(per, mix)
        owner, index = [], []
        for c in range(classes):
            pool = rng.permutation(np.flatnonzero(labels == c))
            demand = counts[:, c]
            index.append(pool[np.arange(demand.sum()) % len(pool)])
            owner.append(np.repeat(np.arange(n_clients), demand))
        owner, index = np.concatenate(owner), np.concatenate(index)
        order = np.argsort(owner, kind="stable")
        index, owner = index[order], owner[order]
    elif d["partition"] == "shards":
        k = d["shards_per_client"]
        shard = per // k
        if shard < 1 or n_clients * k * shard > len(labels):
            raise BenchError(
                f"shards: {n_clients} clients x {k} shards of {shard} examples exceed the "
                f"{len(labels)} training examples: lower data.num_clients or data.examples_per_client"
            )
        by_label = np.argsort(labels + rng.random(len(labels)), kind="stable")
        shards = by_label[: n_clients * k * shard].reshape(n_clients * k, shard)
        index = shards[rng.permutation(n_clients * k)].reshape(n_clients, k * shard).reshape(-1)
        owner = np.repeat(np.arange(n_clients), k * shard)
    else:
        raise BenchError(f"unknown data.partition {d['partition']!r}: choose dirichlet or shards")
    offsets = np.zeros(n_clients + 1, dtype=np.int64)
    np.add.at(offsets, owner + 1, 1)
    return index.astype(np.int64), np.cumsum(offsets)


def _split_test(x: np.ndarray, y: np.ndarray, val_size: int, rng: np.random.Generator):
    if not 0 < val_size < len(x):
        raise BenchError(f"data.val_size={val_size} must be between 1 and {len(x) - 1} (the test split)")
    order = rng.permutation(len(x))
    return (x[order[:val_size]], y[order[:val_size]]), (x[order[val_size:]], y[order[val_size:]])


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))


def _fashion_mnist() -> tuple[np.ndarray, ...]:
    (xtr, ytr), (xte, yte) = fashion_mnist.load("train"), fashion_mnist.load("test")

    def norm(x):
        return (x.reshape(len(x), -1) / 255.0 - fashion_mnist.MEAN) / fashion_mnist.STD

    return norm(xtr), ytr, norm(xte), yte


def read_cifar10(root: Path) -> tuple[np.ndarray, ...]:
    """CIFAR-10 python batches at ``root``, flattened and scaled to [-1, 1]."""
    xtr, ytr, xte, yte = cifar10.load(root)
    return xtr.reshape(len(xtr), -1) / 127.5 - 1.0, ytr, xte.reshape(len(xte), -1) / 127.5 - 1.0, yte


def read_leaf(folder: Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """All users of the LEAF JSON files in ``folder``: (names, x per user, y per user)."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise BenchError(
            f"no LEAF JSON in {folder}: run LEAF's femnist preprocess.sh and put its "
            "data/train and data/test folders under data.root"
        )
    users, xs, ys = [], [], []
    for path in files:
        try:
            blob = json.loads(path.read_text())
            for u in blob["users"]:
                users.append(u)
                xs.append(np.asarray(blob["user_data"][u]["x"], np.float32).reshape(-1, 784))
                ys.append(np.asarray(blob["user_data"][u]["y"], np.int64))
        except (json.JSONDecodeError, KeyError, ValueError) as e:
            raise BenchError(f"{path} is not LEAF FEMNIST JSON ({type(e).__name__}: {e})") from None
    return users, xs, ys


def build(d: dict, seed: int) -> Federation:
    """The federation for data config ``d`` and run seed (partition and val split follow the seed)."""
    rng = np.random.default_rng([seed, d["partition_seed"]])
    if d["source"] == "bundled":
        xtr, ytr, xte, yte = _fashion_mnist()
    elif d["source"] == "real":
        root = Path(d["root"] or "")
        if not d["root"] or not root.is_dir():
            raise BenchError(f"data.root={d['root']!r} is not a folder: point it (or BENCH_DATA) at the data")
        if d["dataset"] == "femnist":
            return _femnist(root, d, rng)
        if d["dataset"] != "cifar10":
            raise BenchError(f"unknown data.dataset {d['dataset']!r}: choose femnist or cifar10")
        xtr, ytr, xte, yte = read_cifar10(root)
    else:
        raise BenchError(f"unknown data.source {d['source']!r}: choose bundled or real")
    index, offsets = partition(ytr, d, rng)
    (xv, yv), (xt, yt) = _split_test(xte, yte, d["val_size"], rng)
    return Federation(
        *_tensors(xtr, ytr), index, offsets, *_tensors(xv, yv), *_tensors(xt, yt), d["num_classes"]
    )


def _femnist(root: Path, d: dict, rng: np.random.Generator) -> Federation:
    users, xs, ys = read_leaf(root / "train")
    _, txs, tys = read_leaf(root / "test")
    if d["num_clients"] > len(users):
        raise BenchError(f"data.num_clients={d['num_clients']} but {root}/train has {len(users)} writers")
    keep = rng.permutation(len(users))[: d["num_clients"]]
    xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    offsets = np.concatenate([[0], np.cumsum([len(y) for y in ys])]).astype(np.int64)
    (xv, yv), (xt, yt) = _split_test(np.concatenate(txs), np.concatenate(tys), d["val_size"], rng)
    x, y = _tensors(np.concatenate(xs), np.concatenate(ys))
    return Federation(
        x, y, np.arange(len(y)), offsets, *_tensors(xv, yv), *_tensors(xt, yt), d["num_classes"]
    )


class FederatedDataModule(L.LightningDataModule):
    """Holds the federation (``self.fed``) the method simulates, and serves its test split."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        self.fed: Federation | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.fed is None:
            self.fed = build(self.cfg["data"], self.cfg["seed"])
            if int(self.fed.y.max()) >= self.fed.classes:
                raise BenchError(
                    f"labels reach {int(self.fed.y.max())} but data.num_classes={self.fed.classes}"
                )

    def test_dataloader(self) -> DataLoader:
        return DataLoader(
            TensorDataset(self.fed.x_test, self.fed.y_test), batch_size=self.cfg["data"]["test_batch_size"]
        )
