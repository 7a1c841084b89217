"""``make perf`` figure of nngraph: weighted degree + eigenvector centrality of the same weight
graphs with scipy.sparse (graphs.py) and with networkx. Goal: scipy >= 10x faster."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import torch

from bench.tasks.nngraph import graphs
from bench.tasks.nngraph.nets import ConvChain

# The paper's LeNet on CIFAR-10 (3 + 6 + 16 + 120 + 84 + 10 nodes); a handful of random inits.
SHAPE, CONVS, HIDDEN = (3, 32, 32), [[6, 5, 0, 2], [16, 5, 0, 2]], [120, 84]
GRAPHS = 5


def to_networkx(a) -> nx.Graph:
    """The same weighted graph as networkx holds it."""
    return nx.from_scipy_sparse_array(a, edge_attribute="weight")


def networkx_stats(g: nx.Graph, numpy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """networkx's weighted degree and eigenvector centrality (its power iteration at its default
    tolerance, or with ``numpy`` its ARPACK-based variant)."""
    n = g.number_of_nodes()
    deg = dict(g.degree(weight="weight"))
    if numpy:
        cen = nx.eigenvector_centrality_numpy(g, weight="weight")
    else:
        cen = nx.eigenvector_centrality(g, max_iter=10_000, weight="weight")
    return np.array([deg[i] for i in range(n)]), np.array([cen[i] for i in range(n)])


def lenet_weights(seed: int) -> list[np.ndarray]:
    torch.manual_seed(seed)
    net = ConvChain(SHAPE, CONVS, HIDDEN, 10, dropout=0.0)
    return [layer.weight.detach().numpy() for layer in net.layers()]


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: one graph (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    count = 1 if tiny else GRAPHS
    snaps = [lenet_weights(s) for s in range(count)]
    mats = [graphs.adjacency(graphs.blocks(w, SHAPE[0])) for w in snaps]
    nx_graphs = [to_networkx(a) for a in mats]
    t0 = time.perf_counter()
    ours = [(graphs.degree(a), graphs.eigenvector_centrality(a)) for a in mats]
    t1 = time.perf_counter()
    theirs = [networkx_stats(g) for g in nx_graphs]
    t2 = time.perf_counter()
    [networkx_stats(g, numpy=True) for g in nx_graphs]
    t3 = time.perf_counter()
    err = max(np.abs(o[i] - t[i]).max() for o, t in zip(ours, theirs, strict=True) for i in (0, 1))
    n, m = mats[0].shape[0], mats[0].nnz // 2
    print(
        f"degree + eigenvector centrality, {count} LeNet graphs ({n} nodes, {m} edges): scipy.sparse "
        f"{(t1 - t0) / count * 1e3:.2f} ms, networkx {(t2 - t1) / count * 1e3:.1f} ms per graph: "
        f"ratio {(t2 - t1) / (t1 - t0):.0f}x (goal >= 10), max abs difference {err:.1e}; "
        f"networkx's ARPACK variant (eigenvector_centrality_numpy): {(t3 - t2) / (t1 - t0):.1f}x"
    )


if __name__ == "__main__":
    main()
