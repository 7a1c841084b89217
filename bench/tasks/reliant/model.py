"""Teachers and students (torch-geometric): GCN, GraphSAGE, CPF's PLP student, GraphAKD's SGC
student, an MLP; and the degree-n Legendre approximation of the step function that makes RELIANT's
bias term differentiable."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from numpy.polynomial import legendre
from torch import nn
from torch_geometric.nn import GCNConv, SAGEConv, SGConv
from torch_geometric.utils import add_self_loops, softmax


class TwoLayer(nn.Module):
    """Two graph convolutions, ReLU and dropout between them. ``embed`` is the first layer's output
    before the activation: the hidden embedding a teacher hands to GraphAKD (as CPF's teachers
    keep it)."""

    conv1: nn.Module
    conv2: nn.Module
    dropout: float

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.conv1(x, edge_index)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.relu(self.embed(x, edge_index)), self.dropout, self.training)
        return self.conv2(x, edge_index)


class GCN(TwoLayer):
    """Two graph convolutions (Kipf & Welling)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float, out_dim: int = 2) -> None:
        super().__init__()
        self.conv1, self.conv2, self.dropout = GCNConv(in_dim, hidden), GCNConv(hidden, out_dim), dropout


class SAGE(TwoLayer):
    """Two GraphSAGE convolutions with the given aggregator."""

    def __init__(self, in_dim: int, hidden: int, dropout: float, aggr: str, out_dim: int = 2) -> None:
        super().__init__()
        self.conv1, self.conv2 = SAGEConv(in_dim, hidden, aggr=aggr), SAGEConv(hidden, out_dim, aggr=aggr)
        self.dropout = dropout


class SGC(nn.Module):
    """GraphAKD's student: three simplified graph convolutions (propagate K times, then linear),
    sizes in -> hidden -> hidden -> classes with K = 1, ``hops``, 1; ReLU after the first two and
    dropout before the second and third. ``embed`` is the hidden embedding after the second (the
    one GraphAKD's embedding discriminators judge)."""

    def __init__(self, in_dim: int, hidden: int, hops: int, dropout: float, out_dim: int = 2) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [SGConv(in_dim, hidden, K=1), SGConv(hidden, hidden, K=hops), SGConv(hidden, out_dim, K=1)]
        )
        self.dropout = dropout

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.relu(self.convs[0](x, edge_index)), self.dropout, self.training)
        return F.relu(self.convs[1](x, edge_index))

    def head(self, emb: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.convs[2](F.dropout(emb, self.dropout, self.training), edge_index)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, edge_index), edge_index)


class MLP(nn.Module):
    """A graph-free student: Linear -> ReLU -> dropout -> Linear."""

    def __init__(self, in_dim: int, hidden: int, dropout: float, out_dim: int = 2) -> None:
        super().__init__()
        self.lin1, self.lin2, self.dropout = nn.Linear(in_dim, hidden), nn.Linear(hidden, out_dim), dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        x = F.dropout(
            F.relu(self.lin1(F.dropout(x, self.dropout, self.training))), self.dropout, self.training
        )
        return self.lin2(x)


class PLP(nn.Module):
    """CPF's student: Parameterized Label Propagation mixed with a feature MLP.

    Each of ``layers`` rounds propagates label distributions along edges with attention
    softmax_j(a . x_j) over a node's in-neighbours (the inductive variant: the score depends on
    the source's features), then mixes in MLP(x) with a learnable per-node gate
    sigmoid(g_i); training nodes are clamped to their one-hot labels after every round.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        layers: int,
        feat_drop: float,
        attn_drop: float,
        num_nodes: int,
        train_idx: torch.Tensor,
        y: torch.Tensor,
        out_dim: int = 2,
    ) -> None:
        super().__init__()
        self.layers, self.attn_drop = layers, attn_drop
        self.attn = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(1, in_dim), gain=nn.init.calculate_gain("relu"))
        )
        self.gate = nn.Parameter(torch.zeros(num_nodes, 1))
        self.mlp = nn.Sequential(
            nn.Dropout(feat_drop),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Dropout(feat_drop),
            nn.Linear(hidden, out_dim),
        )
        self.feat_drop = nn.Dropout(feat_drop)
        mask = torch.zeros(num_nodes, 1, dtype=torch.bool)
        mask[train_idx] = True
        onehot = F.one_hot(y, out_dim).float() * mask
        init = torch.where(mask, onehot, torch.full_like(onehot, 1.0 / out_dim))
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("onehot", onehot, persistent=False)
        self.register_buffer("init", init, persistent=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.shape[0])
        src, dst = edge_index
        score = (self.feat_drop(x) * self.attn).sum(-1)[src]
        alpha = F.dropout(softmax(score, dst, num_nodes=x.shape[0]), self.attn_drop, self.training)
        gate = torch.sigmoid(self.gate)
        feat = self.mlp(x)
        h = self.init
        for _ in range(self.layers):
            prop = torch.zeros_like(h).index_add_(0, dst, h[src] * alpha.unsqueeze(-1))
            h = F.relu(gate * prop + (1 - gate) * feat)
            h = torch.where(self.mask, self.onehot, h)
        return h


def build(arch: str, in_dim: int, m: dict, graph=None) -> nn.Module:
    """``arch`` in gcn | sage | sgc | plp | mlp with its options ``m[arch]``."""
    o = m[arch]
    if arch == "gcn":
        return GCN(in_dim, o["hidden"], o["dropout"])
    if arch == "sage":
        return SAGE(in_dim, o["hidden"], o["dropout"], o["aggr"])
    if arch == "sgc":
        return SGC(in_dim, o["hidden"], o["hops"], o["dropout"])
    if arch == "mlp":
        return MLP(in_dim, o["hidden"], o["dropout"])
    if arch == "plp":
        return PLP(
            in_dim,
            o["hidden"],
            o["layers"],
            o["feat_drop"],
            o["attn_drop"],
            graph.num_nodes,
            graph.train,
            graph.y,
        )
    raise ValueError(f"unknown architecture {arch!r}")


@cache
def step_coefficients(degree: int) -> tuple[float, ...]:
    """Coefficients of h on P_0..P_degree as the official code has them: c_0 = 1/2 and
    c_n = integral_0^1 P_n(x) dx (1/2, -1/8, 1/16, -5/128, 7/256 for odd n <= 9). This is the
    least-squares Legendre series of the step without its (2n + 1)/2 factors: a smooth, monotone
    surrogate on [-1, 1] (0.07 at x = -1, 0.93 at 1) without the series' Gibbs overshoot."""
    coef = [0.5]
    for n in range(1, degree + 1):
        integral = legendre.Legendre.basis(n).integ()
        coef.append(float(integral(1.0) - integral(0.0)))
    return tuple(float(c) for c in np.round(coef, 15))


def soft_step(p: torch.Tensor, degree: int) -> torch.Tensor:
    """h(p): the degree-``degree`` Legendre approximation of 1[p > 0.5], evaluated at x = 2p - 1."""
    x = 2 * p - 1
    coef = step_coefficients(degree)
    # Bonnet's recursion: (n + 1) P_{n+1} = (2n + 1) x P_n - n P_{n-1}
    prev, cur = torch.ones_like(x), x
    out = coef[0] * prev + (coef[1] * cur if degree >= 1 else 0)
    for n in range(1, degree):
        prev, cur = cur, ((2 * n + 1) * x * cur - n * prev) / (n + 1)
        out = out + coef[n + 1] * cur
    return out


def approx_bias(
    probs: torch.Tensor, sens: torch.Tensor, degree: int, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """RELIANT's differentiable bias: sum over classes of (mean_{s=0} h(p) - mean_{s=1} h(p))^2.
    ``weight`` (per node, >= 0) makes the group means weighted ones: the EO term weighs each node
    by its probability of label 1 (1/0 where the label is known, the teacher's soft output where
    it is not)."""
    h = soft_step(probs, degree)
    w = torch.ones_like(h[:, 0]) if weight is None else weight
    g0, g1 = w * (sens == 0), w * (sens == 1)
    if g0.sum() <= 0 or g1.sum() <= 0:
        return probs.sum() * 0.0
    return ((g0 @ h) / g0.sum() - (g1 @ h) / g1.sum()).square().sum()
