"""The federated algorithms on the virtual clock: FedBuff, FedAsync, and synchronous FedAvg(M)
with over-selection. Each ``step()`` runs one server update (one federated event batch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.errors import BenchError
from bench.tasks.asyncfl.data import Federation
from bench.tasks.asyncfl.local import LocalTrainer
from bench.tasks.asyncfl.model import FlatNet
from bench.tasks.asyncfl.simulator import EventClock, Fleet, sync_round


class ServerOpt:
    """Server optimizer on the flat model, fed the aggregated delta (a negative pseudo-gradient):
    SGD with momentum (momentum 0 and lr 1 is plain averaging) or Adam."""

    def __init__(self, kind: str, lr: float, momentum: float, betas: list[float], eps: float) -> None:
        if kind not in ("sgd", "adam"):
            raise BenchError(f"unknown server optimizer {kind!r}: choose sgd or adam")
        self.kind, self.lr, self.momentum, self.betas, self.eps = kind, lr, momentum, betas, eps
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.t = 0

    def step(self, x: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        g = -update
        if self.kind == "sgd":
            if self.momentum:
                self.m = g if self.m is None else self.momentum * self.m + g
                g = self.m
            return x - self.lr * g
        b1, b2 = self.betas
        self.t += 1
        self.m = (1 - b1) * g if self.m is None else b1 * self.m + (1 - b1) * g
        self.v = (1 - b2) * g * g if self.v is None else b2 * self.v + (1 - b2) * g * g
        m_hat, v_hat = self.m / (1 - b1**self.t), self.v / (1 - b2**self.t)
        return x - self.lr * m_hat / (v_hat.sqrt() + self.eps)


@dataclass
class Trace:
    """Evaluations along virtual time (in median device times)."""

    time: list[float] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    trips: list[int] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)

    def to_target(self, split: str, target: float) -> tuple[float, int, bool]:
        """(time, aggregated client updates, reached) at the first evaluation at or above target;
        censored at the last evaluation when never reached."""
        accs = getattr(self, split)
        for i, a in enumerate(accs):
            if a >= target:
                return self.time[i], self.updates[i], True
        return self.time[-1], self.updates[-1], False


class Simulation:
    """Shared bookkeeping: model, server optimizer, clock, evaluation schedule."""

    def __init__(
        self, fed: Federation, net: FlatNet, trainer: LocalTrainer, fleet: Fleet, x0: torch.Tensor, **kw
    ) -> None:
        self.fed, self.net, self.trainer, self.fleet = fed, net, trainer, fleet
        self.x = x0.clone()
        self.C = kw["concurrency"]
        self.opt = ServerOpt(kw["optimizer"], kw["server_lr"], kw["momentum"], kw["betas"], kw["eps"])
        self.unit = float(np.median(fleet.durations))
        self.horizon, self.eval_dt = kw["horizon"] * self.unit, kw["eval_every"] * self.unit
        self.target, self.stop_at_target = kw["target"], kw["stop_at_target"]
        self.clock = EventClock(fleet)
        self.version = self.updates = self.trips = 0
        self.trace = Trace()
        self._last_eval = -math.inf
        self.evaluate()

    def evaluate(self) -> None:
        f = self.fed
        self.trace.time.append(self.clock.now / self.unit)
        self.trace.updates.append(self.updates)
        self.trace.trips.append(self.trips)
        self.trace.val.append(self.net.accuracy(self.x, f.x_val, f.y_val))
        self.trace.test.append(self.net.accuracy(self.x, f.x_test, f.y_test))
        self._last_eval = self.clock.now

    @property
    def done(self) -> bool:
        if self.clock.now >= self.horizon:
            return True
        t = self.trace
        return self.stop_at_target and min(t.val[-1], t.test[-1]) >= self.target

    def after_update(self) -> bool:
        """Evaluate when due; True when the simulation is over."""
        if self.clock.now - self._last_eval >= self.eval_dt or self.clock.now >= self.horizon:
            self.evaluate()
            return self.done
        return False


class AsyncSimulation(Simulation):
    """FedBuff: ``C`` clients always training; each report is weighted by (1 + staleness)^-a and
    buffered; every ``K`` buffered reports make one server step. Reports staler than
    ``max_staleness`` are dropped. A finished client is replaced at once by a random idle one,
    which starts from the newest model."""

    def __init__(self, *args, buffer: int, staleness_exponent: float, max_staleness: int, **kw) -> None:
        super().__init__(*args, **kw)
        if len(self.fleet) < self.C:
            raise BenchError(f"concurrency {self.C} exceeds the {len(self.fleet)} clients")
        self.K, self.a, self.max_staleness = buffer, staleness_exponent, max_staleness
        self.deltas: dict[int, torch.Tensor] = {}
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.buffer = torch.zeros_like(self.x)
        self.count = 0
        self._launch(self.C)

    def _launch(self, k: int) -> None:
        clients = self.fleet.pick_idle(k)
        self.pending.append((clients, self.clock.launch(clients, self.version)))
        self.trips += k

    def _flush(self) -> None:
        """Train every client launched on the current model (before that model changes)."""
        if not self.pending:
            return
        clients = np.concatenate([c for c, _ in self.pending])
        serials = np.concatenate([s for _, s in self.pending])
        self.pending = []
        for c, d in zip(clients.tolist(), self.trainer.train(clients, serials, self.x), strict=True):
            self.deltas[c] = d

    def absorb(self, weighted: torch.Tensor) -> None:
        """Buffer one weighted report; a server step when the buffer holds K."""
        self.buffer += weighted
        self.count += 1
        if self.count == self.K:
            self._flush()
            self.x = self.opt.step(self.x, self.buffer / self.K)
            self.version += 1
            self.buffer = torch.zeros_like(self.x)
            self.count = 0

    def step(self) -> bool:
        """Process reports until one server step happened; True when the simulation is over."""
        start = self.version
        while self.version == start:
            client, version, _ = self.clock.pop()
            if client not in self.deltas:
                self._flush()
            delta = self.deltas.pop(client)
            tau = self.version - version
            if tau <= self.max_staleness:
                self.updates += 1
                self.absorb((1.0 + tau) ** -self.a * delta)
            self._launch(1)
            if self.clock.now >= self.horizon:
                break
        return self.after_update()


class FedAsyncSimulation(AsyncSimulation):
    """FedAsync: every accepted report is applied at once (no buffer)."""

    def absorb(self, weighted: torch.Tensor) -> None:
        self._flush()
        self.x = self.opt.step(self.x, weighted)
        self.version += 1


class SyncSimulation(Simulation):
    """FedAvg / FedAvgM: each round launches ceil(overselect * C) idle clients on the same model,
    ends at the C-th report and averages those C deltas; the late ones are cut (their trips count)."""

    def __init__(self, *args, overselect: float, **kw) -> None:
        super().__init__(*args, **kw)
        self.cohort = math.ceil(overselect * self.C)
        if self.cohort > len(self.fleet):
            raise BenchError(
                f"a sync round selects ceil({overselect} x {self.C}) = {self.cohort} clients but there "
                f"are {len(self.fleet)}: raise data.num_clients or lower the concurrency"
            )

    def step(self) -> bool:
        cohort = self.fleet.pick_idle(self.cohort)
        serials = self.fleet.serial[cohort].copy()
        self.fleet.serial[cohort] += 1
        done, duration = sync_round(self.fleet, cohort, self.C)
        keep = np.isin(cohort, done)
        deltas = self.trainer.train(cohort[keep], serials[keep], self.x)
        self.x = self.opt.step(self.x, deltas.mean(0))
        self.clock.now += duration
        self.version += 1
        self.updates += self.C
        self.trips += self.cohort
        return self.after_update()


ALGORITHMS = {"fedbuff": AsyncSimulation, "fedasync": FedAsyncSimulation, "sync": SyncSimulation}
