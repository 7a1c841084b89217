"""The reliant methods: a teacher evaluated as is, and students distilled from it (vanilla KD, or
RELIANT with its SP or EO bias term), one per graph of the preset, trained full-batch together."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.method import BenchMethod
from bench.tasks.reliant import model as models
from bench.tasks.reliant.metrics import GraphMetrics
from bench.tasks.reliant.teacher import teacher

METRICS = ("acc", "auc", "f1", "dsp", "deo")


class GraphMethod(BenchMethod):
    """Shared test protocol: per graph, metrics on its test nodes logged as ``test/<graph>/<m>``,
    and their means over graphs as ``test/<m>``."""

    def graphs(self) -> dict:
        return self.trainer.datamodule.graphs

    def on_fit_start(self) -> None:
        for g in self.graphs().values():  # full-batch graphs follow the module to its device
            for k in ("x", "sens", "y", "edge_index", "train", "val", "test"):
                setattr(g, k, getattr(g, k).to(self.device))

    on_test_start = on_fit_start

    def probs(self, name: str) -> torch.Tensor:
        raise NotImplementedError

    def test_step(self, batch, batch_idx):
        means = {k: [] for k in METRICS}
        for name, g in self.graphs().items():
            values = GraphMetrics().to(self.device)(self.probs(name)[g.test, 1], g.y[g.test], g.sens[g.test])
            for k in METRICS:
                self.log(f"test/{name}/{k}", values[k], batch_size=1)
                means[k].append(values[k])
        self.log_dict({f"test/{k}": torch.stack(v).mean() for k, v in means.items()}, batch_size=1)


class Teacher(GraphMethod):
    """The cached teacher GNN (``arch``), trained on the labels with the sensitive attribute."""

    trains = False

    def __init__(self, cfg: dict, arch: str) -> None:
        super().__init__(cfg)
        self.arch = arch
        self.nets = nn.ModuleDict()
        self.soft: dict[str, torch.Tensor] = {}

    def setup(self, stage: str) -> None:
        for name, g in self.graphs().items():
            if name not in self.nets:
                self.nets[name], self.soft[name] = teacher(g, self.arch, self.cfg)

    @torch.no_grad()
    def probs(self, name: str) -> torch.Tensor:
        return self.soft[name].to(self.device)


class Student(GraphMethod):
    """A student of the ``framework``'s architecture distilled from its teacher's soft labels:
    L2 between the student's softmax and the teacher's on the non-training nodes (plus
    ``label_weight`` x cross-entropy on the training labels).

    ``objective`` sp | eo adds RELIANT: the two sensitive columns become a learnable per-node
    2-d proxy. Each step (1) updates the student on [X, mean(proxy)] with loss + alpha x approximated
    bias, then (2) updates only the proxy on [X, proxy] to maximize alpha x approximated bias. The EO
    bias is restricted to nodes with label 1. At test time the proxy is its mean."""

    def __init__(self, cfg: dict, framework: str, objective: str | None = None) -> None:
        super().__init__(cfg)
        frameworks = cfg["model"]["frameworks"]
        if framework not in frameworks:
            raise BenchError(f"no framework {framework!r} in model.frameworks: have {', '.join(frameworks)}")
        self.fw, self.objective = frameworks[framework], objective
        self.automatic_optimization = False
        self.students = nn.ModuleDict()
        self.proxies = nn.ParameterDict()
        self.best: dict[str, tuple[float, dict, torch.Tensor | None]] = {}

    def setup(self, stage: str) -> None:
        for name, g in self.graphs().items():
            if name in self.students:
                continue
            _, soft = teacher(g, self.fw["teacher"], self.cfg)
            self.register_buffer(f"soft_{name}", soft, persistent=False)
            self.students[name] = models.build(self.fw["student"], g.x.shape[1] + 2, self.cfg["model"], g)
            if self.objective:
                self.proxies[name] = nn.Parameter(torch.rand(g.num_nodes, 2))

    def configure_optimizers(self):
        s = self.cfg["optim"]["student"]
        opts = [torch.optim.Adam(self.students.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])]
        if self.objective:
            opts.append(
                torch.optim.Adam(self.proxies.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
            )
        return opts

    def inputs(self, name: str, per_node: bool = False) -> torch.Tensor:
        g = self.graphs()[name]
        if not self.objective:
            return g.features()
        proxy = self.proxies[name] if per_node else self.proxies[name].detach().mean(0).expand(g.num_nodes, 2)
        return torch.cat([g.x, proxy], 1)

    def non_train(self, name: str) -> torch.Tensor:
        g = self.graphs()[name]
        mask = torch.ones(g.num_nodes, dtype=torch.bool, device=self.device)
        mask[g.train] = False
        return mask

    def bias_nodes(self, name: str) -> torch.Tensor:
        """Nodes of the bias term: the non-training nodes (EO: those with label 1, the label being the
        teacher's prediction unless ``model.eo_labels=true``)."""
        g, soft = self.graphs()[name], getattr(self, f"soft_{name}")
        mask = self.non_train(name)
        if self.objective == "eo":
            y = g.y if self.cfg["model"]["eo_labels"] == "true" else soft.argmax(1)
            mask &= y == 1
        return mask

    def bias(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        nodes = self.bias_nodes(name)
        sens = self.graphs()[name].sens[nodes]
        return models.approx_bias(logits[nodes].softmax(1), sens, self.cfg["model"]["legendre_degree"])

    def training_step(self, batch, batch_idx):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        alpha = self.fw["alpha"]
        total = 0.0
        for name, net in self.students.items():
            g, soft = self.graphs()[name], getattr(self, f"soft_{name}")
            net.train()
            logits = net(self.inputs(name), g.edge_index)
            rest = self.non_train(name)
            loss = (logits[rest].softmax(1) - soft[rest]).square().sum(1).mean()
            if self.fw["label_weight"]:
                loss = loss + self.fw["label_weight"] * F.cross_entropy(logits[g.train], g.y[g.train])
            if self.objective:
                loss = loss + alpha * self.bias(name, logits)
            total = total + loss
        opts[0].zero_grad()
        self.manual_backward(total)
        opts[0].step()
        if self.objective:
            adversary = sum(
                -alpha
                * self.bias(name, net(self.inputs(name, per_node=True), self.graphs()[name].edge_index))
                for name, net in self.students.items()
            )
            opts[1].zero_grad()
            self.manual_backward(adversary)
            opts[1].step()
        self.select()
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=1)
        return total.detach()

    @torch.no_grad()
    def select(self) -> None:
        """Keep each student's state of best validation accuracy (ties: the later), as the official code."""
        for name, net in self.students.items():
            g = self.graphs()[name]
            net.eval()
            acc = (net(self.inputs(name), g.edge_index)[g.val].argmax(1) == g.y[g.val]).float().mean().item()
            if name not in self.best or acc >= self.best[name][0]:
                proxy = self.proxies[name].detach().clone() if self.objective else None
                self.best[name] = (acc, copy.deepcopy(net.state_dict()), proxy)

    def on_train_end(self) -> None:
        for name, (_, state, proxy) in self.best.items():
            self.students[name].load_state_dict(state)
            if proxy is not None:
                self.proxies[name].data.copy_(proxy)

    @torch.no_grad()
    def probs(self, name: str) -> torch.Tensor:
        net = self.students[name].eval()
        return net(self.inputs(name), self.graphs()[name].edge_index).softmax(1)
