"""reliant's paper-preset fixture: a small graph in NIFTY's published layout (a CSV of node
features, labels and the sensitive attribute, and an edge list)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def nifty(root: Path, name: str = "bail", nodes: int = 60, sens: str = "WHITE", label: str = "RECID") -> Path:
    """A small dataset in NIFTY's published layout: <name>.csv (features, label and sensitive
    columns) and <name>_edges.txt (node pairs written as floats, as NIFTY's files are)."""
    rng = np.random.default_rng(0)
    folder = root / name
    folder.mkdir(parents=True)
    df = pd.DataFrame(rng.normal(size=(nodes, 4)), columns=["AGE", "TIME", "PRIORS", "EDUC"])
    df[sens] = rng.integers(0, 2, nodes)
    df[label] = rng.integers(0, 2, nodes)
    df.to_csv(folder / f"{name}.csv", index=False)
    pairs = np.stack([np.arange(nodes), (np.arange(nodes) + 1) % nodes], 1).astype(float)
    np.savetxt(folder / f"{name}_edges.txt", pairs, fmt="%.18e")
    return root


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    nifty(root)
    return [f"data.root={root}", "data.datasets=[bail]"]
