"""The methods as loop methods: each ``step`` is one server update of the current simulation. A run
simulates each setting it studies (every concurrency of ``sim.concurrency``; at the highest one
every ``sim.sigmas`` and, for FedBuff, every ``sim.buffers``), searches the server lr per setting on
the val split, and reports the test-split figures of the chosen lr."""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics.classification import MulticlassAccuracy

from bench.errors import BenchError
from bench.method import LoopMethod, count_params
from bench.tasks.asyncfl.algorithms import Setting, Simulation, simulation
from bench.tasks.asyncfl.local import trainer_for
from bench.tasks.asyncfl.model import FlatNet, build_net

STUDIES = ("concurrency", "sigma", "buffer")


def settings(sim: dict, algorithm: str, studies: list[str]) -> dict[str, Setting]:
    """Metric label -> setting. ``c{C}``: each concurrency at the main sigma and buffer;
    ``sigma{s}`` and ``k{K}``: at the highest concurrency. Labels of one setting share its
    simulation (``sigma1`` is ``c1000``); a sync method has no buffer, so its ``k{K}`` are its
    highest-C setting."""
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown or "concurrency" not in studies:
        raise BenchError(f"studies {studies} must include concurrency and choose from {STUDIES}")
    conc = sorted(sim["concurrency"])
    if not conc or conc[0] < 1:
        raise BenchError(f"sim.concurrency must list positive integers, got {sim['concurrency']}")
    hi, sigma, k = conc[-1], float(sim["speed_sigma"]), sim["buffer"]

    def make(c: int, s: float, b: int) -> Setting:
        return Setting(c, float(s), b if algorithm == "fedbuff" else k)

    out = {f"c{c}": make(c, sigma, k) for c in conc}
    if "sigma" in studies:
        out |= {f"sigma{s:g}": make(hi, s, k) for s in sim["sigmas"]}
    if "buffer" in studies:
        out |= {f"k{b}": make(hi, sigma, b) for b in sim["buffers"]}
    return out


class LrWalk:
    """The server-lr search of one setting and one momentum arm, on the arm's sorted lr grid: start
    at ``start`` (the middle, or the choice of the nearest setting searched before) and evaluate
    the neighbours of the best point until neither is better (a local minimum of time to target
    on val). While no candidate has reached the target, final accuracy cannot say which way the
    target lies (a too-large lr at equal device speeds ends near a too-small one), so the walk goes
    on to the nearest untried point until one reaches or the grid is exhausted. A best point at
    either end of the grid means the grid is too narrow: ``on_edge`` says so and the tests fail
    on it."""

    def __init__(self, momentum: float, grid: list[float]) -> None:
        if not grid or sorted(grid) != list(grid) or len(set(grid)) != len(grid):
            raise BenchError(f"an lr_grid must be increasing and non-empty, got {grid}")
        self.momentum, self.grid = momentum, list(grid)
        self.start = len(grid) // 2
        self.done: dict[int, Simulation] = {}

    @staticmethod
    def key(sim: Simulation, target: float) -> tuple[float, float]:
        """Order of preference: sooner at the target on val, then higher last val accuracy."""
        t, _, _, reached = sim.trace.to_target("val", target)
        return (t if reached and not sim.diverged else math.inf, -sim.trace.val[-1] if sim.trace.val else 0.0)

    def best(self, target: float) -> int | None:
        return min(self.done, key=lambda i: (self.key(self.done[i], target), i)) if self.done else None

    def best_key(self, target: float) -> tuple[float, float]:
        return self.key(self.done[self.best(target)], target)

    def next(self, target: float) -> int | None:
        """The grid index to simulate next; None when the walk is over."""
        b = self.best(target)
        if b is None:
            return self.start
        untried = [n for n in range(len(self.grid)) if n not in self.done]
        if math.isinf(self.best_key(target)[0]):
            return min(untried, key=lambda n: (abs(n - b), n), default=None)
        return next((n for n in (b - 1, b + 1) if n in untried), None)

    def on_edge(self, target: float) -> bool:
        return len(self.grid) > 1 and self.best(target) in (0, len(self.grid) - 1)


class FederatedMethod(LoopMethod):
    """One federated algorithm (``fedbuff`` | ``fedasync`` | ``sync``) across its settings; the
    preset's ``methods:`` section of this method arrives as keyword arguments: the server
    ``optimizer``, the momentum ``arms`` (each its own lr grid; several arms are tuned together,
    the best per setting chosen on val) and the ``studies`` it runs.

    Its state is the lr searches (each finished simulation's trace and model) and the running
    simulation; the federation and the model's functional form are rebuilt by ``setup``."""

    def __init__(
        self, cfg: dict, algorithm: str, optimizer: str, arms: list[dict], studies: list[str]
    ) -> None:
        super().__init__(cfg)
        self.algorithm, self.optimizer = algorithm, optimizer
        d = cfg["data"]
        self.target = cfg["sim"]["target_acc"]
        self.labels = settings(cfg["sim"], algorithm, studies)
        if not arms:
            raise BenchError("a method needs at least one arm {momentum, lr_grid}")
        self.walks = {
            s: [LrWalk(float(a["momentum"]), a["lr_grid"]) for a in arms]
            for s in dict.fromkeys(self.labels.values())
        }
        hi = self.labels[f"c{max(cfg['sim']['concurrency'])}"]
        order = sorted(self.walks, key=lambda s: (s.concurrency != hi.concurrency, distance(s, hi)))
        order = sorted(order, key=lambda s: s.concurrency)
        self.queue = [(s, i) for s in order for i in range(len(arms))]
        self.net = build_net(cfg["model"]["arch"], d["input_dim"], d["num_classes"], cfg["model"]["hidden"])
        self.flat = FlatNet(self.net)
        self.sim: Simulation | None = None
        self.running: tuple[LrWalk, int] | None = None  # the walk and grid index of ``sim``

    def setup(self, datamodule) -> None:
        self.datamodule, self.fed = datamodule, datamodule.fed
        if (dim := self.fed.x.shape[1]) != self.cfg["data"]["input_dim"]:
            raise BenchError(f"examples have {dim} features, data.input_dim={self.cfg['data']['input_dim']}")
        self.x0 = self.flat.flatten()

    def state_dict(self) -> dict:
        return {"walks": self.walks, "queue": self.queue, "sim": self.sim, "running": self.running}

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)
        if self.sim is not None:
            cfg = self.cfg
            trainer = trainer_for(cfg["sim"]["engine"], self.fed, self.flat, cfg["client"], cfg["seed"])
            self.sim.attach(self.fed, self.flat, trainer)

    def _cap(self, setting: Setting) -> float:
        """The best val time to target found so far in this setting (over all arms)."""
        return min((w.best_key(self.target)[0] for w in self.walks[setting] if w.done), default=math.inf)

    def _start_next(self) -> bool:
        """Start the next simulation of the lr searches; False when every search is over."""
        while self.queue:
            setting, arm = self.queue[0]
            walk = self.walks[setting][arm]
            if not walk.done:  # warm start: the lr chosen in the nearest setting searched so far
                searched = [s for s, w in self.walks.items() if w[arm].done and s != setting]
                if searched:
                    near = min(searched, key=lambda s: distance(s, setting))
                    walk.start = self.walks[near][arm].best(self.target)
            i = walk.next(self.target)
            if i is None:
                self.queue.pop(0)
                continue
            self.sim = simulation(
                self.cfg,
                self.algorithm,
                self.fed,
                self.flat,
                self.x0,
                setting,
                self.optimizer,
                walk.grid[i],
                walk.momentum,
                cap=self._cap(setting),
            )
            self.running = (walk, i)
            return True
        return False

    def step(self) -> bool:
        """One server update of the running simulation (the first one started on the first step);
        True when the last simulation of every lr search is over. A diverging server lr is a
        result of the search (that candidate is never chosen), not a diverged run."""
        if self.sim is None:
            self._start_next()
        if not self.sim.step():
            return False
        walk, i = self.running
        walk.done[i] = self.sim
        if walk.best(self.target) == i:  # a candidate for the choice: its test curve is needed
            self.sim.fill_test()
        self.sim.close()
        self.sim = self.running = None
        return not self._start_next()

    def results(self) -> dict[str, float]:
        """The chosen lr's test figures per setting; ``acc``: the highest concurrency's chosen
        model on the test loader."""
        chosen: dict[Setting, tuple[LrWalk, Simulation]] = {}
        for setting, walks in self.walks.items():
            pick = min((w for w in walks if w.done), key=lambda w: w.best_key(self.target))
            chosen[setting] = (pick, pick.done[pick.best(self.target)])
        hi = self.labels[f"c{max(self.cfg['sim']['concurrency'])}"]
        net = self.net.to(self.device)
        self.flat.load(chosen[hi][1].x)
        acc = MulticlassAccuracy(self.cfg["data"]["num_classes"], average="micro").to(self.device)
        with torch.no_grad():
            for x, y in self.datamodule.test_dataloader():
                acc.update(net(x.to(self.device)), y.to(self.device))
        return {"acc": float(acc.compute())} | self.summary(chosen)

    def summary(self, chosen: dict[Setting, tuple[LrWalk, Simulation]]) -> dict[str, float]:
        """Per setting label: time, updates and downloads to the target on test (time and downloads
        also as logs: the speedup claims are ratios, judged on log differences), whether it was
        reached, final accuracy, the chosen lr and momentum; then the run-level figures."""
        out = {}
        for label, setting in self.labels.items():
            walk, sim = chosen[setting]
            t, updates, trips, reached = sim.trace.to_target("test", self.target)
            out |= {f"time_{label}": t, f"updates_{label}": updates, f"trips_{label}": trips}
            out[f"log_time_{label}"] = math.log(max(t, sim.trace.dt))
            out[f"log_trips_{label}"] = math.log(max(trips, 1))
            out |= {f"reached_{label}": float(reached), f"acc_{label}": sim.trace.test[-1]}
            out |= {f"lr_{label}": sim.opt.lr, f"momentum_{label}": walk.momentum}
        conc = sorted(self.cfg["sim"]["concurrency"])
        lo, hi = f"c{conc[0]}", f"c{conc[-1]}"
        out |= {
            "time_to_target_lo": out[f"time_{lo}"],
            "time_to_target_hi": out[f"time_{hi}"],
            "updates_to_target_hi": out[f"updates_{hi}"],
            "scaling": out[f"time_{lo}"] / max(out[f"time_{hi}"], 1e-9),
            "log_scaling": out[f"log_time_{lo}"] - out[f"log_time_{hi}"],
            "lr_edges": float(sum(w.on_edge(self.target) for w, _ in chosen.values())),
        }
        return out | idle_bias(chosen[self.labels[hi]][1])

    def cost(self) -> dict:
        return {"params": count_params(self.net)}


def distance(a: Setting, b: Setting) -> float:
    """How far apart two settings are (decades of C and K, units of sigma), for warm starts."""
    log = math.log10
    return abs(log(a.concurrency / b.concurrency)) + abs(a.sigma - b.sigma) + abs(log(a.buffer / b.buffer))


def idle_bias(sim: Simulation) -> dict[str, float]:
    """How far client selection favours fast devices: ``idle_bias`` = the population's mean device
    time over the launch-weighted mean (1 = unbiased; > 1 = the throughput it adds), and
    ``fast_share`` = the share of launches going to the fastest quartile (0.25 = unbiased)."""
    d, n = sim.fleet.durations, sim.launched
    fast = d <= np.quantile(d, 0.25)
    return {
        "idle_bias": float(d.mean() / (np.dot(n, d) / n.sum())),
        "fast_share": float(n[fast].sum() / n.sum()),
    }
