"""Per-network, per-epoch summaries the predictors read, one table [N, S, F] per feature family.

- ``degree`` / ``centrality``: distribution statistics of the node statistic within each layer of
  nodes of the weight graph (graphs.py), every snapshot.
- ``weights``: the same statistics of |W| within each weighted layer: magnitudes without the
  graph's aggregation into nodes (the "raw weight statistics" baseline).
- ``curve``: held-out accuracy, held-out loss and training loss after each epoch.
- ``hparams``: the hyperparameters (constant over epochs).
Beside them, ``final_acc`` (the label), ``diverged`` (per network) and ``redraws`` (diverged draws
replaced), which the predictors report but never see as features.
Cached as a stage keyed by the population's sub-config.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import artifacts
from bench.tasks.nngraph import graphs, population

GRAPH_FAMILIES = ("degree", "centrality", "weights")
VERSION = 2


# Summaries are clipped to this magnitude: a kept diverged network's last finite weights can be huge,
# and the forests read their features as float32.
LIMIT = 1e30


def describe(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    q25, q50, q75 = np.quantile(values, (0.25, 0.5, 0.75))
    stats = np.array([values.mean(), values.std(), values.min(), values.max(), q25, q50, q75])
    return np.clip(np.nan_to_num(stats, posinf=LIMIT, neginf=-LIMIT), -LIMIT, LIMIT)


def of_network(weights: list[np.ndarray], in_channels: int) -> dict[str, np.ndarray]:
    """[S, F] per graph family for one network's snapshots (``weights[l]`` is [S, *shape])."""
    rows: dict[str, list] = {f: [] for f in GRAPH_FAMILIES}
    for s in range(weights[0].shape[0]):
        snap = [w[s] for w in weights]
        deg, cen = graphs.node_stats(snap, in_channels)
        rows["degree"].append(np.concatenate([describe(d) for d in deg]))
        rows["centrality"].append(np.concatenate([describe(c) for c in cen]))
        rows["weights"].append(np.concatenate([describe(np.abs(w).ravel()) for w in snap]))
    return {f: np.stack(r) for f, r in rows.items()}


def build(pop: population.Population, folder: Path) -> None:
    per_net = [of_network(w, pop.in_channels) for w in pop.weights]
    tables = {f: np.stack([n[f] for n in per_net]) for f in GRAPH_FAMILIES}
    tables["curve"] = np.stack([pop.val_acc, pop.val_loss, pop.train_loss], axis=2)
    tables["hparams"] = pop.hparams[:, None, :]
    extra = {"final_acc": pop.final_acc, "diverged": pop.diverged, "redraws": np.array([pop.redraws])}
    np.savez(folder / "summaries.npz", **extra, **tables)


def get(cfg: dict) -> dict[str, np.ndarray]:
    """The summary tables of ``cfg``'s population (built and cached on first use), plus final_acc,
    diverged and redraws."""
    pop_dir = population.folder(cfg)
    key = {**population.sub_config(cfg), "population_version": population.VERSION}
    folder = artifacts.cached(
        "nngraph", "summaries", key, lambda d: build(population.read(pop_dir), d), VERSION
    )
    with np.load(folder / "summaries.npz") as z:
        return {name: z[name] for name in z.files}
