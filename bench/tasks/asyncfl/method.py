"""The methods as LightningModules with manual optimization: each ``training_step`` is one server
update of the current simulation. A run simulates every concurrency in ``sim.concurrency`` with
every server lr of the method's grid, picks per concurrency the lr that reaches the target
soonest on the val split, and reports the test-split figures of that choice."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from bench.errors import BenchError
from bench.method import BenchMethod
from bench.tasks.asyncfl import checks
from bench.tasks.asyncfl.algorithms import ALGORITHMS, Simulation
from bench.tasks.asyncfl.local import trainer_for
from bench.tasks.asyncfl.model import FlatNet, build_net
from bench.tasks.asyncfl.simulator import Fleet, device_durations


def simulation(
    cfg: dict, algorithm: str, fed, net: FlatNet, x0: torch.Tensor, conc: int, lr: float
) -> Simulation:
    """One simulation of ``algorithm`` at concurrency ``conc`` and server lr ``lr``; the device
    speeds and client choices follow the run seed, the same for every method."""
    s, m = cfg["sim"], cfg["methods"][cfg["method"]]
    rng = np.random.default_rng([cfg["seed"], conc])
    fleet = Fleet(device_durations(fed.sizes, cfg["client"]["epochs"], s["speed_sigma"], rng), rng)
    trainer = trainer_for(s["engine"], fed, net, cfg["client"], cfg["seed"])
    kw = dict(
        concurrency=conc,
        server_lr=lr,
        optimizer=m["optimizer"],
        momentum=m["momentum"],
        betas=s["adam_betas"],
        eps=s["adam_eps"],
        horizon=s["horizon"],
        eval_every=s["eval_every"],
        target=s["target_acc"],
        stop_at_target=s["stop_at_target"],
    )
    if algorithm == "sync":
        kw["overselect"] = s["overselect"]
    else:
        kw.update(
            buffer=1 if algorithm == "fedasync" else s["buffer"],
            staleness_exponent=s["staleness_exponent"],
            max_staleness=s["max_staleness"],
        )
    return ALGORITHMS[algorithm](fed, net, trainer, fleet, x0, **kw)


class FederatedMethod(BenchMethod):
    """One federated algorithm (``fedbuff`` | ``fedasync`` | ``sync``) across concurrencies."""

    def __init__(self, cfg: dict, algorithm: str, lr_grid: list[float], **server) -> None:
        # server: the rest of methods.<name> (optimizer, momentum), read by simulation()
        super().__init__(cfg)
        self.automatic_optimization = False
        self.algorithm = algorithm
        d, s = cfg["data"], cfg["sim"]
        if not s["concurrency"] or any(c < 1 for c in s["concurrency"]):
            raise BenchError(f"sim.concurrency must list positive integers, got {s['concurrency']}")
        self.net = build_net(cfg["model"]["arch"], d["input_dim"], d["num_classes"], cfg["model"]["hidden"])
        self.flat = FlatNet(self.net)
        self.grid = [(c, lr) for c in sorted(s["concurrency"]) for lr in lr_grid]
        self.results: dict[tuple[int, float], Simulation] = {}
        self.sim: Simulation | None = None
        self.test_acc = MulticlassAccuracy(d["num_classes"], average="micro")
        self.summary = torch.nn.ModuleDict()
        self._claims: dict[str, dict] = {}

    def setup(self, stage: str) -> None:
        if stage == "fit":
            fed = self.trainer.datamodule.fed
            if fed.x.shape[1] != self.cfg["data"]["input_dim"]:
                raise BenchError(
                    f"examples have {fed.x.shape[1]} features, data.input_dim={self.cfg['data']['input_dim']}"
                )
            self.x0 = self.flat.flatten()

    def training_step(self, batch, batch_idx):
        if self.sim is None:
            c, lr = self.grid[len(self.results)]
            fed = self.trainer.datamodule.fed
            self.sim = simulation(self.cfg, self.algorithm, fed, self.flat, self.x0, c, lr)
        sim = self.sim
        if sim.step():
            self.results[(sim.C, sim.opt.lr)] = sim
            self.sim = None
            if len(self.results) == len(self.grid):
                self.trainer.should_stop = True
        # The run's divergence watch reads a "loss": the model's norm turns inf/nan if it diverges.
        return {"loss": sim.x.norm()}

    def on_fit_end(self) -> None:
        self.chosen = self._choose()
        hi = self.chosen[max(self.chosen)]
        self.flat.load(hi.x)
        if self.cfg["method"] in self.cfg["checks"]["methods"]:
            self._claims = checks.run_all(self.cfg, self.trainer.datamodule.fed, self.x0)

    def _choose(self) -> dict[int, Simulation]:
        """Per concurrency, the lr reaching the target soonest on val (ties: higher final val acc)."""
        target = self.cfg["sim"]["target_acc"]
        best: dict[int, Simulation] = {}
        for (c, _), sim in self.results.items():
            key = (sim.trace.to_target("val", target)[0], -sim.trace.val[-1])
            if c not in best or key < (best[c].trace.to_target("val", target)[0], -best[c].trace.val[-1]):
                best[c] = sim
        return best

    def summary_values(self) -> dict[str, float]:
        target, out = self.cfg["sim"]["target_acc"], {}
        for c, sim in sorted(self.chosen.items()):
            t, u, reached = sim.trace.to_target("test", target)
            out |= {f"time_c{c}": t, f"updates_c{c}": u, f"reached_c{c}": float(reached)}
            out |= {
                f"acc_c{c}": sim.trace.test[-1],
                f"lr_c{c}": sim.opt.lr,
                f"trips_c{c}": sim.trace.trips[-1],
            }
        lo, hi = min(self.chosen), max(self.chosen)
        out |= {
            "time_to_target_lo": out[f"time_c{lo}"],
            "time_to_target_hi": out[f"time_c{hi}"],
            "updates_to_target_hi": out[f"updates_c{hi}"],
            "scaling": out[f"time_c{lo}"] / out[f"time_c{hi}"],
        }
        return out

    def on_test_start(self) -> None:
        for k in self.summary_values():
            if k not in self.summary:
                self.summary[k] = MeanMetric().to(self.device)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_acc(self.net(x), y)
        self.log("test/acc", self.test_acc)
        if batch_idx == 0:
            for k, v in self.summary_values().items():
                self.summary[k].update(v)
                self.log(f"test/{k}", self.summary[k])

    def configure_optimizers(self):
        return None

    def claims(self) -> dict[str, dict]:
        return self._claims
