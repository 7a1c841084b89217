"""Client-side training: minibatch SGD on a client's own examples, many clients at once.

A client's example order depends only on (run seed, client, launch serial), so results do not
depend on which clients are batched together, nor on the engine that runs them.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import BenchError
from bench.tasks.asyncfl.data import Federation
from bench.tasks.asyncfl.model import FlatNet

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 arrays (wrapping arithmetic): a fast counter-based hash."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def local_orders(
    seed: int, clients: np.ndarray, serials: np.ndarray, n: int, epochs: int, batch: int
) -> np.ndarray:
    """Positions in the data of clients holding ``n`` examples each, one row per SGD step
    ([clients, steps, batch], -1 = padding): per epoch a permutation, the argsort of hashed
    (seed, client, launch serial, epoch, position) keys."""
    key = _mix(np.full(len(clients), seed, dtype=np.uint64) + _GOLDEN)
    for v in (clients, serials):
        key = _mix(key ^ (np.asarray(v, dtype=np.uint64) + _GOLDEN))
    slots = np.arange(1, epochs * n + 1, dtype=np.uint64) * _GOLDEN
    keys = _mix(key[:, None] + slots[None, :]).reshape(len(clients), epochs, n)
    per_epoch = -(-n // batch) * batch
    out = np.full((len(clients), epochs, per_epoch), -1, dtype=np.int64)
    out[:, :, :n] = np.argsort(keys, axis=2)
    return out.reshape(len(clients), -1, batch)


def local_order(seed: int, client: int, serial: int, n: int, epochs: int, batch: int) -> np.ndarray:
    """``local_orders`` of one client: [steps, batch]."""
    return local_orders(seed, np.array([client]), np.array([serial]), n, epochs, batch)[0]


class LocalTrainer:
    """``train(clients, serials, start)`` -> deltas [B, P], in this process; ``start`` is one model
    [P] or one per client [B, P]."""

    def __init__(self, fed: Federation, net: FlatNet, client: dict, seed: int) -> None:
        self.fed, self.net, self.seed = fed, net, seed
        self.epochs, self.batch, self.lr = client["epochs"], client["batch_size"], client["lr"]

    def batch_of(self, clients: np.ndarray, serials: np.ndarray):
        fed = self.fed
        sizes = fed.offsets[clients + 1] - fed.offsets[clients]
        groups = {int(n): np.flatnonzero(sizes == n) for n in np.unique(sizes)}  # one hash per size
        orders = {
            n: local_orders(self.seed, clients[i], serials[i], n, self.epochs, self.batch)
            for n, i in groups.items()
        }
        steps = max(o.shape[1] for o in orders.values())
        pos = np.full((len(clients), steps, self.batch), -1, dtype=np.int64)
        for n, i in groups.items():
            pos[i, : orders[n].shape[1]] = orders[n]
        mask = pos >= 0
        rows = fed.index[fed.offsets[clients][:, None, None] + np.where(mask, pos, 0)]
        rows = torch.from_numpy(rows)
        return fed.x[rows], fed.y[rows], torch.from_numpy(mask).float()

    def train(self, clients: np.ndarray, serials: np.ndarray, start: torch.Tensor) -> torch.Tensor:
        x, y, mask = self.batch_of(clients, serials)
        return self.net.local_sgd(start, x, y, mask, self.lr)


class RayTrainer(LocalTrainer):
    """The same computation on Ray workers, ``chunk`` clients per task (``engine=ray``)."""

    def __init__(self, fed: Federation, net: FlatNet, client: dict, seed: int) -> None:
        try:
            import ray
        except ImportError:
            raise BenchError("engine=ray needs Ray: `pip install ray`, or use engine=local") from None
        super().__init__(fed, net, client, seed)
        self.ray, self.chunk = ray, client["ray_chunk"]
        if not ray.is_initialized():
            ray.init(num_cpus=client["ray_workers"], include_dashboard=False, log_to_driver=False)
        self._remote = ray.remote(_train_chunk)
        self._net = ray.put(net.net)

    def train(self, clients: np.ndarray, serials: np.ndarray, start: torch.Tensor) -> torch.Tensor:
        jobs = []
        for i in range(0, len(clients), self.chunk):
            x, y, mask = self.batch_of(clients[i : i + self.chunk], serials[i : i + self.chunk])
            begin = start if start.dim() == 1 else start[i : i + self.chunk]
            jobs.append(self._remote.remote(self._net, begin, x, y, mask, self.lr))
        return torch.cat(self.ray.get(jobs))


def _train_chunk(module: torch.nn.Module, start, x, y, mask, lr: float) -> torch.Tensor:
    torch.set_num_threads(1)
    return FlatNet(module).local_sgd(start, x, y, mask, lr)


def trainer_for(engine: str, fed: Federation, net: FlatNet, client: dict, seed: int) -> LocalTrainer:
    if engine == "local":
        return LocalTrainer(fed, net, client, seed)
    if engine == "ray":
        return RayTrainer(fed, net, client, seed)
    raise BenchError(f"unknown sim.engine {engine!r}: choose local or ray")
