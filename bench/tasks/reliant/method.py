"""The reliant methods: a teacher evaluated as is, and students distilled from it (vanilla KD, the
fairness-through-unawareness control, RELIANT's input with no bias term, or RELIANT with its SP or EO
bias term), one per graph of the preset, trained full-batch together."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.method import TrainedMethod
from bench.tasks.reliant import model as models
from bench.tasks.reliant.alpha import chosen_alpha
from bench.tasks.reliant.metrics import GraphMetrics
from bench.tasks.reliant.teacher import teacher

METRICS = ("acc", "auc", "f1", "dsp", "deo")


class GraphMethod(TrainedMethod):
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
                knowledge = teacher(g, self.arch, self.cfg)
                self.nets[name], self.soft[name] = knowledge.net, knowledge.probs

    @torch.no_grad()
    def probs(self, name: str) -> torch.Tensor:
        return self.soft[name].to(self.device)


class Student(GraphMethod):
    """A student of the ``framework``'s architecture distilled from the soft labels of its teacher
    (``teacher``, else the framework's):
    L2 between the student's softmax and the teacher's on the non-training nodes (CPF's loss;
    plus ``label_weight`` x cross-entropy on the training labels). The vanilla student sees every
    feature column (the sensitive one included), as the teacher; the ``unaware`` student sees every
    column but the sensitive one (fairness through unawareness).

    ``masked`` gives the student RELIANT's input: the features less their last ``replaces``
    columns (the framework's: official CPF overwrites the last two, GraphAKD none) and a per-node
    2-d proxy (uniform init), fed as its mean. Alone (alpha 0, no bias term, the proxy never
    moves) that is the "no bias term" control: RELIANT's input and training without its term.

    ``objective`` sp | eo adds RELIANT on top: each epoch (1) updates the student on
    [X', mean(proxy)] with loss + alpha x approximated bias, then (2) updates only the proxy on
    [X', proxy] to maximize alpha x approximated bias. The EO bias weighs each node by its chance
    of label 1 (``eo_weight``). At test time the proxy is its mean. ``alpha`` (per graph) is the
    framework's number, or chosen on validation (``bench.tasks.reliant.alpha``) when the
    framework says ``alpha: val``."""

    strict = False  # model selection: ties of the validation score go to the later epoch (CPF)

    def __init__(
        self,
        cfg: dict,
        framework: str,
        objective: str | None = None,
        alpha: float | None = None,
        masked: bool | None = None,
        teacher: str | None = None,
        unaware: bool = False,
    ):
        super().__init__(cfg)
        frameworks = cfg["model"]["frameworks"]
        if framework not in frameworks:
            raise BenchError(f"no framework {framework!r} in model.frameworks: have {', '.join(frameworks)}")
        self.framework, self.fw, self.objective = framework, frameworks[framework], objective
        self.masked = objective is not None if masked is None else masked
        self.teacher_arch, self.unaware = teacher or self.fw["teacher"], unaware
        if unaware and self.masked:
            raise BenchError("an unaware student takes no proxy: unaware excludes masked and objective")
        self.fixed_alpha = alpha
        self.epochs = cfg["optim"]["epochs"]  # the student's schedule
        self.automatic_optimization = False
        self.students = nn.ModuleDict()
        self.proxies = nn.ParameterDict()
        self.alphas: dict[str, float] = {}
        self.best: dict[str, tuple[float, dict, torch.Tensor | None]] = {}
        self.plain: dict | None = None  # graphs of a run outside a Trainer (the alpha search)

    def graphs(self) -> dict:
        return self.plain if self.plain is not None else super().graphs()

    def setup(self, stage: str) -> None:
        for name, g in self.graphs().items():
            if name in self.students:
                continue
            knowledge = teacher(g, self.teacher_arch, self.cfg)
            self.register_buffer(f"soft_{name}", knowledge.probs, persistent=False)
            self.learn_from(name, g, knowledge)
            if self.masked:
                proxy = torch.rand(g.num_nodes, 2)  # the control's stays its init
                self.proxies[name] = nn.Parameter(proxy, requires_grad=bool(self.objective))
            width = self.inputs(name).shape[1]
            self.students[name] = models.build(self.fw["student"], width, self.cfg["model"], g)
            if self.objective:
                self.alphas[name] = self.alpha(name, g)

    def learn_from(self, name: str, g, knowledge) -> None:
        """Keep what the student needs of the teacher beyond its soft labels (none here)."""

    def alpha(self, name: str, g) -> float:
        if self.fixed_alpha is not None:
            return self.fixed_alpha
        if self.fw["alpha"] == "val":
            return chosen_alpha(type(self), self.cfg, self.framework, self.teacher_arch, self.objective, g)
        return float(self.fw["alpha"])

    def configure_optimizers(self):
        s = self.cfg["optim"]["student"]
        opts = [torch.optim.Adam(self.students.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])]
        if self.objective:
            opts.append(
                torch.optim.Adam(self.proxies.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
            )
        return opts

    def backprop(self, loss: torch.Tensor) -> None:
        self.manual_backward(loss) if self._trainer is not None else loss.backward()

    def inputs(self, name: str, per_node: bool = False) -> torch.Tensor:
        """Every feature (vanilla), every feature but the sensitive one (unaware), or RELIANT's
        input: the features less their last ``replaces`` columns, then the proxy (per node in the
        proxy's step, else its mean)."""
        g = self.graphs()[name]
        if self.unaware:
            return g.x
        feats = g.features()
        if not self.masked:
            return feats
        feats = feats[:, : feats.shape[1] - self.fw["replaces"]]
        proxy = self.proxies[name] if per_node else self.proxies[name].detach().mean(0).expand(g.num_nodes, 2)
        return torch.cat([feats, proxy], 1)

    def mask(self, name: str, train: bool) -> torch.Tensor:
        """The training nodes (``train``) or the others, as a boolean mask."""
        g = self.graphs()[name]
        mask = torch.zeros(g.num_nodes, dtype=torch.bool, device=self.device)
        mask[g.train] = True
        return mask if train else ~mask

    def student_nodes(self, name: str) -> torch.Tensor:
        """Nodes of the bias term in the student's step (CPF: the non-training nodes)."""
        return self.mask(name, train=False)

    proxy_nodes = student_nodes  # ... and in the proxy's step

    def eo_weight(self, name: str) -> torch.Tensor:
        """Each node's weight in the EO term, its chance of label 1: the true label on training
        nodes, the teacher's soft output P(y = 1) elsewhere (``model.eo_labels: soft``); or, as the
        official code, every node's true label (``true``: test labels included)."""
        g = self.graphs()[name]
        y = g.y.float()
        if self.cfg["model"]["eo_labels"] == "true":
            return y
        return torch.where(self.mask(name, train=True), y, getattr(self, f"soft_{name}")[:, 1])

    def bias(self, name: str, logits: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """alpha x the approximated bias over ``nodes`` (EO: weighted by ``eo_weight``)."""
        g = self.graphs()[name]
        weight = self.eo_weight(name)[nodes] if self.objective == "eo" else None
        bias = models.approx_bias(
            logits[nodes].softmax(1), g.sens[nodes], self.cfg["model"]["legendre_degree"], weight
        )
        return self.alphas[name] * bias

    def distill_loss(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        g, soft = self.graphs()[name], getattr(self, f"soft_{name}")
        rest = self.mask(name, train=False)
        loss = (logits[rest].softmax(1) - soft[rest]).square().sum(1).mean()
        if self.fw["label_weight"]:
            loss = loss + self.fw["label_weight"] * F.cross_entropy(logits[g.train], g.y[g.train])
        return loss

    def epoch(self, epoch: int, opts: list) -> torch.Tensor:
        """One full-batch epoch over every graph: the student's step, the proxy's, model selection."""
        total = 0.0
        for name, net in self.students.items():
            net.train()
            logits = net(self.inputs(name), self.graphs()[name].edge_index)
            loss = self.distill_loss(name, logits)
            if self.objective:
                loss = loss + self.bias(name, logits, self.student_nodes(name))
            total = total + loss
        return self.student_step(total, opts)

    def student_step(self, total: torch.Tensor, opts: list) -> torch.Tensor:
        """The end of every epoch: the students' step on ``total``, the proxy's, model selection."""
        opts[0].zero_grad()
        self.backprop(total)
        opts[0].step()
        if self.objective:
            self.proxy_step(opts[-1])
        self.select()
        return total.detach()

    def proxy_step(self, opt) -> None:
        """Update only the proxy on [X, proxy] to maximize alpha x the approximated bias."""
        adversary = sum(
            -self.bias(
                name,
                net(self.inputs(name, per_node=True), self.graphs()[name].edge_index),
                self.proxy_nodes(name),
            )
            for name, net in self.students.items()
        )
        opt.zero_grad()
        self.backprop(adversary)
        opt.step()

    def training_step(self, batch, batch_idx):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        per_step = -(-self.epochs // self.cfg["optim"]["epochs"])  # the student's epochs in this step
        epochs = range(int(batch) * per_step, min((int(batch) + 1) * per_step, self.epochs))
        losses = [self.epoch(epoch, opts) for epoch in epochs]
        if losses:
            self.log("train/loss", losses[-1], prog_bar=True, batch_size=1)

    def score(self, name: str, logits: torch.Tensor) -> float:
        """The validation score model selection maximizes: accuracy (CPF)."""
        g = self.graphs()[name]
        return (logits[g.val].argmax(1) == g.y[g.val]).float().mean().item()

    @torch.no_grad()
    def select(self) -> None:
        """Keep each student's state (and proxy) of best validation score, as the official code."""
        for name, net in self.students.items():
            net.eval()
            score = self.score(name, net(self.inputs(name), self.graphs()[name].edge_index))
            best = self.best.get(name, (-float("inf"),))[0]
            if score > best or (score == best and not self.strict):
                proxy = self.proxies[name].detach().clone() if self.objective else None
                self.best[name] = (score, copy.deepcopy(net.state_dict()), proxy)

    def on_train_end(self) -> None:
        for name, (_, state, proxy) in self.best.items():
            self.students[name].load_state_dict(state)
            if proxy is not None:
                self.proxies[name].data.copy_(proxy)

    def test_step(self, batch, batch_idx):
        super().test_step(batch, batch_idx)
        if self.alphas:
            self.log_dict({f"test/{name}/alpha": a for name, a in self.alphas.items()}, batch_size=1)

    @torch.no_grad()
    def probs(self, name: str) -> torch.Tensor:
        net = self.students[name].eval()
        return net(self.inputs(name), self.graphs()[name].edge_index).softmax(1)
