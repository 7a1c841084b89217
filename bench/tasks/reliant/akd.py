"""GraphAKD's student (Adversarial Knowledge Distillation, He et al. 2022) as RELIANT's official code
trains it: an SGC generator against three discriminators fed by the teacher's logits and hidden
embedding, with RELIANT's bias term on the training nodes and its proxy step on every node."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import add_self_loops

from bench.errors import BenchError
from bench.tasks.reliant.method import Student


def real(score: torch.Tensor) -> torch.Tensor:
    """BCE(sigmoid(score), 1), computed on the score for stability."""
    return F.binary_cross_entropy_with_logits(score, torch.ones_like(score))


def fake(score: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(score, torch.zeros_like(score))


class LogitD(nn.Module):
    """Logit discriminator: a residual linear layer, ReLU, then n_class + 1 outputs (the class
    scores and, last, real/fake)."""

    def __init__(self, n_class: int) -> None:
        super().__init__()
        self.lin, self.out = nn.Linear(n_class, n_class), nn.Linear(n_class, n_class + 1, bias=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(logits + self.lin(logits)))


class EmbD(nn.Module):
    """Embedding discriminator: a diagonal-weighted dot product of L2-normalised embeddings, scaled.
    ``local``: per edge (u, v) between emb_u and emb_v; ``glob``: per node against a summary."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.d = nn.Parameter(torch.ones(hidden))
        self.scale = nn.Parameter(torch.full((1,), 0.5))

    def local(self, emb: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        e = F.normalize(emb, dim=1)
        return (e[edge_index[0]] * self.d * e[edge_index[1]]).sum(1) * self.scale

    def glob(self, emb: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        return (F.normalize(emb, dim=1) * self.d) @ summary * self.scale


class Discriminators(nn.Module):
    def __init__(self, hidden: int, n_class: int = 2) -> None:
        super().__init__()
        self.logit, self.local, self.glob = LogitD(n_class), EmbD(hidden), EmbD(hidden)

    def loss(self, stu_logits, stu_emb, tea_logits, tea_emb, edges, y_train, train) -> torch.Tensor:
        """The discriminators' loss: tell the teacher (real) from the detached student (fake), and
        classify the training nodes from either's logits."""
        stu_logits, stu_emb = stu_logits.detach(), stu_emb.detach()
        pos, neg = self.logit(tea_logits), self.logit(stu_logits)
        adv = real(pos[:, -1]) + fake(neg[:, -1])
        cls = F.cross_entropy(pos[train, :-1], y_train) + F.cross_entropy(neg[train, :-1], y_train)
        loss = 0.5 * (adv + cls)
        loss = loss + real(self.local.local(tea_emb, edges)) + fake(self.local.local(stu_emb, edges))
        tea_sum, stu_sum = summary(tea_emb), summary(stu_emb)
        loss = loss + real(self.glob.glob(tea_emb, tea_sum)) + fake(self.glob.glob(stu_emb, tea_sum))
        return loss + real(self.glob.glob(stu_emb, stu_sum)) + fake(self.glob.glob(tea_emb, stu_sum))

    def generator_loss(self, stu_logits, stu_emb, tea_logits, tea_emb, edges, y_train, train) -> torch.Tensor:
        """The student's adversarial terms: fool the logit discriminator (and be classified right by
        it), L1 to the teacher's logits, fool the local and global embedding discriminators."""
        neg = self.logit(stu_logits)
        loss = 0.5 * (F.cross_entropy(neg[train, :-1], y_train) + real(neg[:, -1]))
        loss = loss + (stu_logits - tea_logits).abs().sum() / len(tea_logits)
        loss = loss + real(self.local.local(stu_emb, edges))
        loss = loss + real(self.glob.glob(stu_emb, summary(tea_emb)))
        stu_sum = summary(stu_emb)
        return loss + real(self.glob.glob(stu_emb, stu_sum)) + fake(self.glob.glob(tea_emb, stu_sum))


def summary(emb: torch.Tensor) -> torch.Tensor:
    """A graph's summary vector: sigmoid of the mean embedding, as a column."""
    return torch.sigmoid(emb.mean(0)).unsqueeze(-1)


class AKDStudent(Student):
    """GraphAKD: each epoch, on the student's logits and embedding from its input (``inputs``),
    (every ``d_critic`` epochs) one discriminator step, then (every ``g_critic`` epochs) one
    student step on cross-entropy + the adversarial terms (+ alpha x approximated bias on the
    training nodes) and RELIANT's proxy step on every node. Keeps the state of lowest validation
    cross-entropy. Its schedule is its own (``optim.akd.epochs``: the official 600), spread over
    the DataModule's ``optim.epochs`` steps."""

    strict = True

    def __init__(self, cfg: dict, framework: str, **options) -> None:
        super().__init__(cfg, framework, **options)
        self.discriminators = nn.ModuleDict()
        self.akd = cfg["optim"]["akd"]
        self.epochs = self.akd["epochs"]

    def learn_from(self, name: str, g, knowledge) -> None:
        hidden = self.cfg["model"][self.fw["student"]]["hidden"]
        if knowledge.emb.shape[1] != hidden:
            raise BenchError(
                f"GraphAKD needs the teacher's embedding ({knowledge.emb.shape[1]}) as wide as the student's "
                f"({hidden}): set model.{self.teacher_arch}.hidden = model.{self.fw['student']}.hidden"
            )
        self.register_buffer(f"logits_{name}", knowledge.logits, persistent=False)
        self.register_buffer(f"emb_{name}", knowledge.emb, persistent=False)
        # GraphAKD's graph carries self-loops, so its local discriminator sees them as edges too.
        self.register_buffer(f"loops_{name}", add_self_loops(g.edge_index)[0], persistent=False)
        self.discriminators[name] = Discriminators(hidden)

    def configure_optimizers(self):
        a = self.akd
        opts = [
            torch.optim.Adam(
                self.students.parameters(), lr=a["lr"] * a["student_lr_scale"], weight_decay=a["weight_decay"]
            ),
            torch.optim.Adam(self.discriminators.parameters(), lr=a["lr"], weight_decay=a["weight_decay"]),
        ]
        if self.objective:
            opts.append(
                torch.optim.Adam(self.proxies.parameters(), lr=a["lr"], weight_decay=a["weight_decay"])
            )
        return opts

    def student_nodes(self, name: str) -> torch.Tensor:
        return self.mask(name, train=True)

    def proxy_nodes(self, name: str) -> torch.Tensor:
        return torch.ones_like(self.mask(name, train=True))

    def epoch(self, epoch: int, opts: list) -> torch.Tensor:
        outs = {}
        for name, net in self.students.items():
            g = self.graphs()[name]
            net.train()
            emb = net.embed(self.inputs(name), g.edge_index)
            outs[name] = (net.head(emb, g.edge_index), emb)

        def terms(name: str) -> tuple:
            g = self.graphs()[name]
            train = self.mask(name, train=True)
            return (
                getattr(self, f"logits_{name}"),
                getattr(self, f"emb_{name}"),
                getattr(self, f"loops_{name}"),
                g.y[train],
                train,
            )

        if epoch % self.akd["d_critic"] == 0:
            loss_d = sum(self.discriminators[n].loss(*outs[n], *terms(n)) for n in self.students)
            opts[1].zero_grad()
            self.backprop(loss_d)
            opts[1].step()
        total = torch.zeros((), device=self.device)
        if epoch % self.akd["g_critic"] == 0:
            for name, (logits, emb) in outs.items():
                knowledge = terms(name)
                y_train, train = knowledge[-2:]
                loss = F.cross_entropy(logits[train], y_train)
                loss = loss + self.discriminators[name].generator_loss(logits, emb, *knowledge)
                if self.objective:
                    loss = loss + self.bias(name, logits, self.student_nodes(name))
                total = total + loss
            return self.student_step(total, opts)
        self.select()
        return total.detach()

    def score(self, name: str, logits: torch.Tensor) -> float:
        """Minus the validation cross-entropy (GraphAKD keeps the state of lowest validation loss)."""
        g = self.graphs()[name]
        return -F.cross_entropy(logits[g.val], g.y[g.val]).item()
