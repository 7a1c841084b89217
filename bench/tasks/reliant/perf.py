"""``make perf`` figure of reliant: GCN training epochs per second with torch-geometric's sparse
message passing over a dense-adjacency implementation of the same GCN, on the cpu preset's COMPAS
graph (full batch, same weights, same optimizer, same threads)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from bench.config import resolve
from bench.tasks.reliant.graphs import compas
from bench.tasks.reliant.model import GCN

EPOCHS, REPEATS = 10, 2


class DenseGCN(nn.Module):
    """The same two-layer GCN as ``model.GCN``, propagating with D^-1/2 (A + I) D^-1/2 as a dense matrix."""

    def __init__(self, sparse: GCN, adj: torch.Tensor) -> None:
        super().__init__()
        self.lin1, self.lin2 = (
            nn.Linear(*sparse.conv1.lin.weight.T.shape),
            nn.Linear(*sparse.conv2.lin.weight.T.shape),
        )
        self.lin1.load_state_dict({"weight": sparse.conv1.lin.weight, "bias": sparse.conv1.bias})
        self.lin2.load_state_dict({"weight": sparse.conv2.lin.weight, "bias": sparse.conv2.bias})
        self.dropout = sparse.dropout
        a = adj + torch.eye(adj.shape[0])
        d = a.sum(1).rsqrt()
        self.register_buffer("norm_adj", d[:, None] * a * d[None, :])

    def forward(self, x: torch.Tensor, edge_index=None) -> torch.Tensor:
        # GCNConv: A_hat (X W) + b
        h = self.norm_adj @ F.linear(x, self.lin1.weight) + self.lin1.bias
        h = F.dropout(F.relu(h), self.dropout, self.training)
        return self.norm_adj @ F.linear(h, self.lin2.weight) + self.lin2.bias


def epochs_per_s(
    net: nn.Module, x, edge_index, y, train, epochs: int = EPOCHS, repeats: int = REPEATS
) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(epochs):
            loss = F.cross_entropy(net(x, edge_index)[train], y[train])
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, epochs / (time.perf_counter() - t0))
    return best


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: one epoch of each (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    epochs, repeats = (1, 1) if tiny else (EPOCHS, REPEATS)
    cfg = resolve("reliant", [])
    g = compas({**cfg["data"], "split_seed": cfg["seed"]})  # the split a seed-0 run deals
    x, ei = g.features(), g.edge_index
    torch.manual_seed(0)
    sparse = GCN(x.shape[1], cfg["model"]["gcn"]["hidden"], 0.0)
    adj = torch.zeros(g.num_nodes, g.num_nodes)
    adj[ei[0], ei[1]] = 1.0
    dense = DenseGCN(sparse, adj)
    sparse.eval(), dense.eval()
    with torch.no_grad():
        assert torch.allclose(sparse(x, ei), dense(x), atol=1e-4), "dense and sparse GCN disagree"
    s = epochs_per_s(sparse.train(), x, ei, g.y, g.train, epochs, repeats)
    d = epochs_per_s(dense.train(), x, ei, g.y, g.train, epochs, repeats)
    print(
        f"GCN on COMPAS ({g.num_nodes} nodes, {ei.shape[1]} edges), {torch.get_num_threads()} threads: "
        f"torch-geometric sparse {s:.1f} epochs/s, dense adjacency {d:.1f} epochs/s, ratio {s / d:.2f}"
    )


if __name__ == "__main__":
    main()
