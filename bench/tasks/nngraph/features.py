"""Design matrices: the summaries of epochs 1..k a predictor may see, one row per network."""

from __future__ import annotations

import numpy as np

from bench.tasks.nngraph.summaries import GRAPH_FAMILIES

# Pseudo-family of the epoch-k-accuracy baseline: held-out accuracy after epoch k alone.
EPOCH_ACC = "epoch_acc"


def design(
    tables: dict[str, np.ndarray], families: tuple[str, ...], k: int, delta_from: int | None
) -> np.ndarray:
    """[N, F] features from epochs 1..k. Graph families give their levels at epochs 1..k and, with
    ``delta_from`` = d, the changes since epoch d at epochs d+1..k (absolute degree is dominated by
    the initialization; its change is not)."""
    n, parts = len(tables["final_acc"]), []
    for family in families:
        if family == EPOCH_ACC:
            parts.append(tables["curve"][:, k - 1, :1])
        elif family == "hparams":
            parts.append(tables["hparams"][:, 0])
        else:
            x = tables[family][:, :k]
            parts.append(x.reshape(n, -1))
            if family in GRAPH_FAMILIES and delta_from is not None and k > delta_from:
                change = x[:, delta_from:] - x[:, delta_from - 1 : delta_from]
                parts.append(change.reshape(n, -1))
    return np.concatenate(parts, axis=1)


def labels(final_acc: np.ndarray) -> np.ndarray:
    """Good (1) / bad (0): final accuracy above the population's median. Networks tied at the
    median (only tiny test sets make ties) are split by index, so the halves stay balanced."""
    n = len(final_acc)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(final_acc, kind="stable")] = np.arange(n)
    return (rank >= (n + 1) // 2).astype(np.int64)
