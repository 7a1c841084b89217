"""The paper's "rolled" weight graph of a CNN and its node statistics, with scipy.sparse.

Nodes: one per input channel, conv filter and fully connected neuron, layer after layer. Edges join
consecutive layers only, undirected, weighted by magnitude:
- conv weight W [out, in, kh, kw]: edge (in j, out i) = ||W[i, j, :, :]||_2;
- fully connected W [out, in]: edge = |W[i, j]|;
- the first fully connected layer after a conv sees in = channels x positions: its edge from
  channel j to neuron i is the L2 norm of W[i, j*P:(j+1)*P] over the P positions (flatten order).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh


def blocks(weights: list[np.ndarray], in_channels: int) -> list[np.ndarray]:
    """Per layer the non-negative [out, in] matrix of edge weights to the previous layer's nodes."""
    out, prev = [], in_channels
    for w in weights:
        if w.ndim == 4:
            b = np.sqrt((w.astype(np.float64) ** 2).sum(axis=(2, 3)))
        elif w.ndim == 2 and w.shape[1] == prev:
            b = np.abs(w.astype(np.float64))
        elif w.ndim == 2 and w.shape[1] % prev == 0:
            b = np.sqrt((w.astype(np.float64).reshape(w.shape[0], prev, -1) ** 2).sum(axis=2))
        else:
            raise ValueError(f"layer of shape {w.shape} does not follow a layer of {prev} nodes")
        out.append(b)
        prev = b.shape[0]
    return out


def layer_sizes(bs: list[np.ndarray]) -> list[int]:
    """Nodes per layer: the input channels, then each weighted layer's outputs."""
    return [bs[0].shape[1], *(b.shape[0] for b in bs)]


def adjacency(bs: list[np.ndarray]) -> sp.csr_matrix:
    """The symmetric sparse adjacency matrix of the layered graph."""
    sizes = layer_sizes(bs)
    starts = np.cumsum([0, *sizes])
    rows, cols, vals = [], [], []
    for layer, b in enumerate(bs):
        i, j = np.nonzero(b)  # a weight of exactly zero is no edge
        rows.append(i + starts[layer + 1])
        cols.append(j + starts[layer])
        vals.append(b[i, j])
    r, c, v = (np.concatenate(a) for a in (rows, cols, vals))
    n = starts[-1]
    a = sp.coo_matrix((v, (r, c)), shape=(n, n))
    return (a + a.T).tocsr()


def degree(a: sp.csr_matrix) -> np.ndarray:
    """Weighted degree (strength) of every node."""
    return np.asarray(a.sum(axis=1)).ravel()


def eigenvector_centrality(a: sp.csr_matrix, tol: float = 1e-10) -> np.ndarray:
    """Leading eigenvector of the weighted adjacency, non-negative, unit L2 norm (networkx's
    normalization). A layered graph is bipartite, so +lambda and -lambda tie in magnitude: ask
    for the largest algebraic eigenvalue, not the largest magnitude."""
    n = a.shape[0]
    start = degree(a) + 1.0
    try:
        _, vec = eigsh(a, k=1, which="LA", v0=start, tol=tol) if n > 2 else np.linalg.eigh(a.toarray())
    except ArpackNoConvergence:
        vec = _power(a, start, tol)
    v = np.abs(np.asarray(vec)[:, -1])  # the Perron vector has one sign; ARPACK may flip it
    return v / np.linalg.norm(v)


def _power(a: sp.csr_matrix, v: np.ndarray, tol: float, steps: int = 10_000) -> np.ndarray:
    """Power iteration on A + I (as networkx does), the fallback when ARPACK does not converge."""
    v = v / np.linalg.norm(v)
    for _ in range(steps):
        nxt = a @ v + v
        nxt /= np.linalg.norm(nxt)
        if np.abs(nxt - v).sum() < tol * len(v):
            break
        v = nxt
    return nxt[:, None]


def node_stats(weights: list[np.ndarray], in_channels: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(degree, eigenvector centrality) per layer of nodes for one snapshot."""
    bs = blocks(weights, in_channels)
    a = adjacency(bs)
    bounds = np.cumsum([0, *layer_sizes(bs)])
    deg, cen = degree(a), eigenvector_centrality(a)
    return (
        [deg[s:e] for s, e in zip(bounds, bounds[1:], strict=False)],
        [cen[s:e] for s, e in zip(bounds, bounds[1:], strict=False)],
    )
