"""The teacher: a GNN trained on the labels once per (graph and split, architecture, options, seed)
and shared by every student method of that seed through ``bench.artifacts.cached``, with the
knowledge students distill: its logits, soft labels and hidden embedding on every node.

The teacher is trained under ``torch.random.fork_rng``: building it (a cold cache) leaves the
calling run's random stream as it was, so a student's init does not depend on whether its
teacher was cached."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.artifacts import cached
from bench.tasks.reliant import model as models
from bench.tasks.reliant.graphs import FairGraph

# 2: the teacher also keeps its logits and hidden embedding (GraphAKD's discriminators judge them).
# 3: trained in a forked random stream, seeded per run; the sensitive column is one feature.
VERSION = 3


@dataclass
class Knowledge:
    net: nn.Module
    logits: torch.Tensor  # (N, 2)
    emb: torch.Tensor  # (N, hidden): the first layer's output before its activation

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(1)


def teacher_seed(cfg: dict) -> int:
    """``optim.teacher.seed``, or the run's seed where the preset leaves it null."""
    seed = cfg["optim"]["teacher"]["seed"]
    return cfg["seed"] if seed is None else seed


def train_teacher(graph: FairGraph, arch: str, cfg: dict) -> nn.Module:
    """Cross-entropy on the training nodes, Adam, the state with the best validation accuracy;
    in a random stream of its own seeded with ``teacher_seed``, the caller's left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(teacher_seed(cfg))
        return fit(graph, arch, cfg)


def fit(graph: FairGraph, arch: str, cfg: dict) -> nn.Module:
    t = cfg["optim"]["teacher"]
    x, ei = graph.features(), graph.edge_index
    net = models.build(arch, x.shape[1], cfg["model"], graph)
    opt = torch.optim.Adam(net.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
    best, state = -1.0, None
    for _ in range(t["epochs"]):
        net.train()
        loss = F.cross_entropy(net(x, ei)[graph.train], graph.y[graph.train])
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(x, ei)[graph.val].argmax(1) == graph.y[graph.val]).float().mean().item()
        if acc >= best:
            best, state = acc, copy.deepcopy(net.state_dict())
    net.load_state_dict(state)
    return net.eval()


def teacher(graph: FairGraph, arch: str, cfg: dict) -> Knowledge:
    """The cached teacher of ``graph`` and its knowledge on every node."""
    data = {k: v for k, v in cfg["data"].items() if k != "datasets"}
    sub = {
        "graph": graph.name,
        "data": data,
        "split_seed": graph.split_seed,
        "arch": arch,
        "model": cfg["model"][arch],
        "optim": cfg["optim"]["teacher"],
        "seed": teacher_seed(cfg),
    }

    def build(folder) -> None:
        net = train_teacher(graph, arch, cfg)
        x, ei = graph.features(), graph.edge_index
        with torch.no_grad():
            logits, emb = net(x, ei), net.embed(x, ei)
        torch.save({"state": net.state_dict(), "logits": logits, "emb": emb}, folder / "teacher.pt")

    folder = cached("reliant", f"teacher_{graph.name}_{arch}", sub, build, version=VERSION)
    saved = torch.load(folder / "teacher.pt")
    net = models.build(arch, graph.features().shape[1], cfg["model"], graph)
    net.load_state_dict(saved["state"])
    return Knowledge(net.eval(), saved["logits"], saved["emb"])
