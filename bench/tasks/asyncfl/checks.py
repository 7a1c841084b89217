"""The exactness checks a run judges by itself (run claims), also asserted by the tests:
FedBuff with K = 1 is FedAsync bit for bit, and one client run sequentially (C = K = 1, server
lr 1, no momentum) is centralised minibatch SGD."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from bench.tasks.asyncfl.data import Federation
from bench.tasks.asyncfl.local import local_order
from bench.tasks.asyncfl.model import FlatNet, build_net


def _net(cfg: dict) -> FlatNet:
    d, m = cfg["data"], cfg["model"]
    return FlatNet(build_net(m["arch"], d["input_dim"], d["num_classes"], m["hidden"]))


def k1_vs_fedasync(cfg: dict, fed: Federation, x0: torch.Tensor) -> float:
    """Max |x_fedbuff(K=1) - x_fedasync| after ``checks.steps`` server steps (0 when exact),
    also over every evaluation of the two traces."""
    from bench.tasks.asyncfl.method import simulation

    ck = cfg["checks"]
    c = copy.deepcopy(cfg)
    c["sim"].update(buffer=1, horizon=1e9, stop_at_target=False)
    c["method"] = "fedbuff"
    lr = c["methods"]["fedbuff"]["lr_grid"][0]
    sims = [simulation(c, a, fed, _net(c), x0, ck["concurrency"], lr) for a in ("fedbuff", "fedasync")]
    for sim in sims:
        for _ in range(ck["steps"]):
            sim.step()
    a, b = sims
    trace = max(
        abs(p - q) for p, q in zip(a.trace.val + a.trace.time, b.trace.val + b.trace.time, strict=True)
    )
    return max(float((a.x - b.x).abs().max()), trace, abs(a.updates - b.updates))


def sequential_vs_sgd(cfg: dict, fed: Federation, x0: torch.Tensor) -> float:
    """Max |x_sim - x_sgd| after ``checks.steps`` rounds of one client holding ``checks.examples``
    examples, against torch.optim.SGD over the same minibatches."""
    from bench.tasks.asyncfl.method import simulation

    ck, cl = cfg["checks"], cfg["client"]
    n = ck["examples"]
    one = Federation(
        fed.x[:n],
        fed.y[:n],
        np.arange(n),
        np.array([0, n]),
        fed.x_val,
        fed.y_val,
        fed.x_test,
        fed.y_test,
        fed.classes,
    )
    c = copy.deepcopy(cfg)
    c["sim"].update(horizon=1e9, stop_at_target=False)
    c["methods"]["fedbuff"].update(optimizer="sgd", momentum=0.0)
    c["method"] = "fedbuff"
    sim = simulation(c, "fedasync", one, _net(c), x0, 1, 1.0)
    for _ in range(ck["steps"]):
        sim.step()
    ref = _net(c)
    ref.load(x0)
    opt = torch.optim.SGD(ref.net.parameters(), lr=cl["lr"])
    for r in range(ck["steps"]):
        for row in local_order(cfg["seed"], 0, r, n, cl["epochs"], cl["batch_size"]):
            idx = torch.from_numpy(row[row >= 0])
            opt.zero_grad()
            F.cross_entropy(ref.net(one.x[idx]), one.y[idx]).backward()
            opt.step()
    return float((sim.x - ref.flatten()).abs().max())


def run_all(cfg: dict, fed: Federation, x0: torch.Tensor) -> dict[str, dict]:
    k1 = k1_vs_fedasync(cfg, fed, x0)
    seq = sequential_vs_sgd(cfg, fed, x0)
    tol = cfg["checks"]["sgd_atol"]
    return {
        "k1_equals_fedasync": {"holds": k1 == 0.0, "value": k1, "bound": 0.0},
        "sequential_equals_sgd": {"holds": seq <= tol, "value": seq, "bound": tol},
    }
