"""reliant's paper-preset fixture: three small graphs in the official repository's data/ layout
(Recidivism and Credit in NIFTY's CSV + edge list, Credit's edges zipped; DBLP as ``small/``:
X.npz, labels.txt, sens.txt, edgelist.txt), with split files where the official repository ships
them (bail/split, small/split)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

NODES = 60


def ring(n: int) -> np.ndarray:
    return np.stack([np.arange(n), (np.arange(n) + 1) % n], 1)


def split(folder: Path, n: int) -> None:
    """split/{train,val,test}_split.npy: 30/20/50 of the nodes in order."""
    (folder / "split").mkdir()
    a, b = int(0.3 * n), int(0.5 * n)
    for part, idx in zip(
        ("train", "val", "test"), (np.arange(a), np.arange(a, b), np.arange(b, n)), strict=True
    ):
        np.save(folder / "split" / f"{part}_split.npy", idx)


def nifty(root: Path, name: str, sens: str, label: str, extra: list[str], zipped: bool, rng) -> None:
    """<name>/<name>.csv (features, 0/1 label and sensitive columns) and its edges as floats,
    in <name>_edges.txt or zipped as <name>_edges.txt.zip."""
    folder = root / name
    folder.mkdir(parents=True)
    df = pd.DataFrame(rng.normal(size=(NODES, 4)), columns=["F1", "F2", "F3", "F4"])
    df[sens] = rng.integers(0, 2, NODES)
    df[label] = rng.integers(0, 2, NODES)
    for column in extra:
        df[column] = rng.integers(0, 2, NODES)
    df.to_csv(folder / f"{name}.csv", index=False)
    edges = folder / f"{name}_edges.txt"
    np.savetxt(edges, ring(NODES).astype(float), fmt="%.18e")
    if zipped:
        with zipfile.ZipFile(folder / f"{name}_edges.txt.zip", "w") as z:
            z.write(edges, edges.name)
        edges.unlink()


def aminer(root: Path, rng) -> None:
    """small/: X.npz (sparse data/row/col/shape), labels.txt and sens.txt (node, class), edgelist.txt."""
    folder = root / "small"
    folder.mkdir(parents=True)
    row, col = np.nonzero(rng.random((NODES, 8)) < 0.4)
    np.savez(
        folder / "X.npz", data=np.ones(len(row), np.float32), row=row, col=col, shape=np.array([NODES, 8])
    )
    nodes = np.arange(NODES)
    np.savetxt(folder / "labels.txt", np.stack([nodes, rng.integers(0, 5, NODES)], 1), fmt="%d")
    np.savetxt(folder / "sens.txt", np.stack([nodes, rng.integers(1, 4, NODES)], 1), fmt="%d")
    np.savetxt(folder / "edgelist.txt", ring(NODES), fmt="%d")
    split(folder, NODES)


def write(root: Path) -> Path:
    rng = np.random.default_rng(0)
    nifty(root, "bail", "WHITE", "RECID", [], zipped=False, rng=rng)
    split(root / "bail", NODES)
    nifty(root, "credit", "Age", "NoDefaultNextMonth", ["Single"], zipped=True, rng=rng)
    aminer(root, rng)
    return root


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    write(root)
    return [f"data.root={root}"]
