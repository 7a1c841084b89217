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


def local_order(seed: int, client: int, serial: int, n: int, epochs: int, batch: int) -> np.ndarray:
    """Positions in the client's data, one row per SGD step ([steps, batch], -1 = padding)."""
    rng = np.random.default_rng([seed, client, serial])
    per_epoch = -(-n // batch) * batch
    out = np.full((epochs, per_epoch), -1, dtype=np.int64)
    for e in range(epochs):
        out[e, :n] = rng.permutation(n)
    return out.reshape(-1, batch)


class LocalTrainer:
    """``train(clients, serials, start)`` -> deltas [B, P], in this process."""

    def __init__(self, fed: Federation, net: FlatNet, client: dict, seed: int) -> None:
        self.fed, self.net, self.seed = fed, net, seed
        self.epochs, self.batch, self.lr = client["epochs"], client["batch_size"], client["lr"]

    def batch_of(self, clients: np.ndarray, serials: np.ndarray):
        fed = self.fed
        orders = [
            local_order(self.seed, c, s, int(fed.offsets[c + 1] - fed.offsets[c]), self.epochs, self.batch)
            for c, s in zip(clients.tolist(), serials.tolist(), strict=True)
        ]
        steps = max(len(o) for o in orders)
        pos = np.full((len(orders), steps, self.batch), -1, dtype=np.int64)
        for i, o in enumerate(orders):
            pos[i, : len(o)] = o
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
            jobs.append(self._remote.remote(self._net, start, x, y, mask, self.lr))
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
