"""The federated algorithms on the virtual clock: FedBuff, FedAsync, and synchronous FedAvg(M)
with over-selection. Each ``step()`` runs one server update (one federated event batch).

Every algorithm is evaluated on one common virtual-time grid (every ``eval_every`` median device
times): the accuracy at grid time t is that of the model holding after every event at or before t,
so a synchronous round's model counts from the moment the round ends, as an async step's does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.errors import BenchError
from bench.tasks.asyncfl.data import Federation
from bench.tasks.asyncfl.local import LocalTrainer, trainer_for
from bench.tasks.asyncfl.model import FlatNet
from bench.tasks.asyncfl.simulator import EventClock, Fleet, device_durations, sync_round


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
    """Accuracy on the common grid: entry i is grid time i * dt (in median device times)."""

    dt: float
    hold: int  # grid points the accuracy must stay at or above the target after the first one
    updates: list[int] = field(default_factory=list)
    trips: list[int] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    complete: bool = False  # ran to the horizon

    @property
    def last(self) -> float:
        return (len(self.val) - 1) * self.dt

    def reached_at(self, split: str, target: float) -> int | None:
        """First grid index from which ``split`` accuracy stays >= target for ``hold`` more grid
        points; None when there is none (yet)."""
        streak = 0
        for i, a in enumerate(getattr(self, split)):
            streak = streak + 1 if a >= target else 0
            if streak == self.hold + 1:
                return i - self.hold
        return None

    def to_target(self, split: str, target: float) -> tuple[float, int, int, bool]:
        """(time, aggregated client updates, downloads, reached) when ``split`` reached the target;
        censored at the end of the trace when it never did."""
        i = self.reached_at(split, target)
        j = len(self.val) - 1 if i is None else i
        return j * self.dt, self.updates[j], self.trips[j], i is not None


class Simulation:
    """Shared bookkeeping: model, server optimizer, clock, the evaluation grid and when to stop.

    ``cap`` is the best val time to target the lr search has found so far: a candidate whose val
    accuracy has not reached the target by then cannot be chosen and stops there (plus the hold).

    The federation, the model's functional form and the client trainer are the run's, shared by
    its simulations (the trainer may hold Ray handles): a pickled simulation leaves them out and
    is detached until ``attach`` gives them back."""

    CONTEXT = ("fed", "net", "trainer")

    def __init__(
        self, fed: Federation, net: FlatNet, trainer: LocalTrainer, fleet: Fleet, x0: torch.Tensor, **kw
    ) -> None:
        self.fed, self.net, self.trainer, self.fleet = fed, net, trainer, fleet
        self.x = x0.clone()
        self.C = kw["concurrency"]
        self.opt = ServerOpt(kw["optimizer"], kw["server_lr"], kw["momentum"], kw["betas"], kw["eps"])
        self.unit = float(np.median(fleet.durations))
        self.cap, self.target = kw["cap"], kw["target"]
        self.trace = Trace(kw["eval_every"], max(0, round(kw["hold"] / kw["eval_every"])))
        self.last_index = math.floor(kw["horizon"] / kw["eval_every"] + 1e-9)
        self.clock = EventClock(fleet)
        self.version = self.updates = self.trips = 0
        self.diverged = False
        self._seen: tuple[int, float] | None = None
        self._checked = 0
        # The test split is evaluated only once val has reached the target (a candidate the lr
        # search may choose); until then the grid keeps the models, evaluated in one batch later.
        self.models: list[torch.Tensor] | None = []

    def advance_to(self, t: float) -> None:
        """Evaluate the current model at every grid point before clock time ``t`` (the next change)."""
        tr, f = self.trace, self.fed
        while len(tr.val) <= self.last_index and len(tr.val) * tr.dt * self.unit < t:
            if self._seen is None or self._seen[0] != self.version:
                self._seen = (self.version, self.net.accuracy(self.x, f.x_val, f.y_val))
                if self.models is None:
                    self._test = self.net.accuracy(self.x, f.x_test, f.y_test)
            tr.val.append(self._seen[1])
            if self.models is None:
                tr.test.append(self._test)
            else:
                self.models.append(self.x)
            tr.updates.append(self.updates)
            tr.trips.append(self.trips)

    def fill_test(self) -> None:
        """Evaluate the test split at every grid point so far (batched), and from now on at once."""
        if self.models:
            f, unique = self.fed, {id(m): m for m in self.models}
            accs = self.net.accuracies(torch.stack(list(unique.values())), f.x_test, f.y_test)
            by_id = dict(zip(unique, accs, strict=True))
            self.trace.test.extend(by_id[id(m)] for m in self.models)
            self._test = by_id[id(self.models[-1])]
        self.models = None

    def check_done(self) -> bool:
        """True when the simulation is over: diverged, at the horizon, val and test at the target,
        or pruned (val did not reach the target by ``cap``, the best time of the lr search)."""
        tr = self.trace
        if len(tr.val) == self._checked:  # nothing new on the grid since the last look
            return False
        self._checked = len(tr.val)
        if not bool(torch.isfinite(self.x).all()):
            self.diverged = True
            return True
        if len(tr.val) > self.last_index:
            tr.complete = True
            return True
        if not tr.val:
            return False
        v = tr.reached_at("val", self.target)
        if v is not None and v * tr.dt <= self.cap:
            self.fill_test()
            return tr.reached_at("test", self.target) is not None
        return tr.last >= self.cap + tr.hold * tr.dt - 1e-9

    def step(self) -> bool:
        """One server update; True when the simulation is over."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop what only a running simulation needs; the trace, model and fleet stay."""
        self.models = None
        self.attach(None, None, None)

    def attach(self, fed: Federation | None, net: FlatNet | None, trainer: LocalTrainer | None) -> None:
        self.fed, self.net, self.trainer = fed, net, trainer

    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in self.CONTEXT}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self.attach(None, None, None)


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
        self.pending: list[tuple[np.ndarray, np.ndarray, torch.Tensor]] = []
        self.buffer = torch.zeros_like(self.x)
        self.count = 0
        self.launched = np.zeros(len(self.fleet), dtype=np.int64)
        self._launch(self.C)

    def _launch(self, k: int) -> None:
        clients = self.fleet.pick_idle(k)
        self.pending.append((clients, self.clock.launch(clients, self.version), self.x))
        self.launched[clients] += 1
        self.trips += k

    def _flush(self) -> None:
        """Train every client launched so far, each from the model it received: deferring the
        training until a report needs it batches ~C clients at once instead of ~K per step."""
        clients = np.concatenate([c for c, _, _ in self.pending])
        serials = np.concatenate([s for _, s, _ in self.pending])
        starts = torch.stack([x for _, _, x in self.pending])
        counts = torch.tensor([len(c) for c, _, _ in self.pending])
        self.pending = []
        deltas = self.trainer.train(clients, serials, starts.repeat_interleave(counts, 0))
        # One copy per client: a row view would keep its whole batch alive until the batch's
        # slowest client reports (at sigma 1.5 that is every batch: 5.6 GB at C = 1000).
        for c, d in zip(clients.tolist(), deltas, strict=True):
            self.deltas[c] = d.clone()

    def close(self) -> None:
        super().close()
        self.deltas, self.pending = {}, []

    def absorb(self, weighted: torch.Tensor) -> None:
        """Buffer one weighted report; a server step when the buffer holds K."""
        self.buffer += weighted
        self.count += 1
        if self.count == self.K:
            self.x = self.opt.step(self.x, self.buffer / self.K)
            self.version += 1
            self.buffer = torch.zeros_like(self.x)
            self.count = 0

    def step(self) -> bool:
        """Process reports until one server step happened; True when the simulation is over."""
        start = self.version
        while self.version == start:
            self.advance_to(self.clock.heap[0][0])
            if self.check_done():
                return True
            client, version, _ = self.clock.pop()
            if client not in self.deltas:
                self._flush()
            delta = self.deltas.pop(client)
            tau = self.version - version
            if tau <= self.max_staleness:
                self.updates += 1
                self.absorb((1.0 + tau) ** -self.a * delta)
            self._launch(1)
        return False


class FedAsyncSimulation(AsyncSimulation):
    """FedAsync: every accepted report is applied at once (no buffer)."""

    def absorb(self, weighted: torch.Tensor) -> None:
        self.x = self.opt.step(self.x, weighted)
        self.version += 1


class SyncSimulation(Simulation):
    """FedAvg / FedAvgM: each round launches ceil(overselect * C) idle clients on the same model,
    ends at the C-th report and averages those C deltas; the late ones are cut (their trips count)."""

    def __init__(self, *args, overselect: float, **kw) -> None:
        super().__init__(*args, **kw)
        self.cohort = math.ceil(overselect * self.C)
        self.launched = np.zeros(len(self.fleet), dtype=np.int64)
        if self.cohort > len(self.fleet):
            raise BenchError(
                f"a sync round selects ceil({overselect} x {self.C}) = {self.cohort} clients but there "
                f"are {len(self.fleet)}: raise data.num_clients or lower the concurrency"
            )

    def step(self) -> bool:
        cohort = self.fleet.pick_idle(self.cohort)
        self.launched[cohort] += 1
        serials = self.fleet.serial[cohort].copy()
        self.fleet.serial[cohort] += 1
        done, duration = sync_round(cohort, self.fleet.draw(cohort), self.C)
        keep = np.isin(cohort, done)
        deltas = self.trainer.train(cohort[keep], serials[keep], self.x)
        self.trips += self.cohort
        self.advance_to(self.clock.now + duration)
        if self.check_done():
            return True
        self.x = self.opt.step(self.x, deltas.mean(0))
        self.clock.now += duration
        self.version += 1
        self.updates += self.C
        return False


ALGORITHMS = {"fedbuff": AsyncSimulation, "fedasync": FedAsyncSimulation, "sync": SyncSimulation}


def horizon(sim: dict, concurrency: int) -> float:
    """The virtual-time budget at ``concurrency``: ``sim.horizon`` lists one per ``sim.concurrency``."""
    if len(sim["horizon"]) != len(sim["concurrency"]):
        raise BenchError(
            f"sim.horizon {sim['horizon']} must list one budget per sim.concurrency {sim['concurrency']}"
        )
    return float(dict(zip(sim["concurrency"], sim["horizon"], strict=True))[concurrency])


@dataclass(frozen=True)
class Setting:
    """One simulated condition: concurrency, device-speed spread and FedBuff's buffer."""

    concurrency: int
    sigma: float
    buffer: int


def simulation(
    cfg: dict,
    algorithm: str,
    fed: Federation,
    net: FlatNet,
    x0: torch.Tensor,
    setting: Setting,
    optimizer: str,
    lr: float,
    momentum: float,
    cap: float = math.inf,
) -> Simulation:
    """One simulation of ``algorithm`` in ``setting`` at server lr ``lr``; the device speeds and
    client choices follow (run seed, concurrency, sigma), the same for every method."""
    s = cfg["sim"]
    rng = np.random.default_rng([cfg["seed"], setting.concurrency, round(1000 * setting.sigma)])
    fleet = Fleet(device_durations(fed.sizes, cfg["client"]["epochs"], setting.sigma, rng), rng)
    trainer = trainer_for(s["engine"], fed, net, cfg["client"], cfg["seed"])
    kw = dict(
        concurrency=setting.concurrency,
        server_lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        betas=s["adam_betas"],
        eps=s["adam_eps"],
        horizon=horizon(s, setting.concurrency),
        eval_every=s["eval_every"],
        hold=s["hold"],
        target=s["target_acc"],
        cap=cap,
    )
    if algorithm == "sync":
        kw["overselect"] = s["overselect"]
    else:
        kw.update(
            buffer=1 if algorithm == "fedasync" else setting.buffer,
            staleness_exponent=s["staleness_exponent"],
            max_staleness=s["max_staleness"],
        )
    return ALGORITHMS[algorithm](fed, net, trainer, fleet, x0, **kw)
