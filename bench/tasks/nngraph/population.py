"""The population: networks of one architecture with varied hyperparameters, weights snapshotted
at every epoch of evidence, final test accuracy as the label. The run's seed draws it (with
``population.seed``): each seed judges the predictors on a population of its own, so the seeds'
spread holds the population-to-population variation, not only the fold splits'. A shared stage,
cached by its sub-config (which holds the seed): built once per seed, read by every method.

Hyperparameters are drawn from ``population.space``, or, for the keys ``population.grid`` lists,
taken cell by cell from the grid's Cartesian product (the official driver's lr x dropout sweep).
A network whose training loss or graph weights go non-finite in an epoch is replaced by a new draw
(``population.diverged: replace``) or kept as the official driver keeps it (``keep``): its label
is the accuracy it scores where it stopped (non-finite weights predict one class), its later
snapshots repeat its last finite weights.

Trained by a plain PyTorch loop: it is the task's dataset, not a method under evaluation, and a
Trainer per tiny network would cost more than the network.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench import artifacts
from bench.errors import BenchError
from bench.tasks.nngraph import images, nets

# Columns of the hyperparameter table, in the order the hparams baseline sees them.
HPARAMS = ("log10_lr", "width", "log10_init_scale", "log2_batch_size", "weight_decay", "dropout")
VERSION = 3
DIVERGED = ("replace", "keep")


@dataclass
class Population:
    """Everything a predictor may look at, for N networks and S epochs of evidence."""

    weights: list[list[np.ndarray]]  # per network, per weighted layer: [S, *layer weight shape]
    in_channels: int
    hparams: np.ndarray  # [N, len(HPARAMS)]
    val_acc: np.ndarray  # [N, S] accuracy on held-out images after each epoch (eval mode)
    val_loss: np.ndarray  # [N, S]
    train_loss: np.ndarray  # [N, S] mean training loss of each epoch
    final_acc: np.ndarray  # [N] test accuracy after all epochs (eval mode): the label
    diverged: np.ndarray  # [N] bool: its loss went non-finite (kept by ``diverged: keep``)
    redraws: int  # draws that diverged and were replaced (``diverged: replace``)

    def __len__(self) -> int:
        return len(self.final_acc)


def sub_config(cfg: dict) -> dict:
    """What the population depends on: the data and population sections, the chosen
    architecture's spec and the run's seed, nothing else (``data.root`` only where it is read)."""
    data = {k: v for k, v in cfg["data"].items() if k != "root" or cfg["data"]["source"] in images.ON_DISK}
    return {"data": data, "population": cfg["population"], "arch": spec(cfg), "seed": cfg["seed"]}


def spec(cfg: dict) -> dict:
    """The entry of ``archs`` that ``population.arch`` names."""
    name = cfg["population"]["arch"]
    if name not in cfg["archs"]:
        raise BenchError(f"population.arch={name!r} is not in archs: choose one of {', '.join(cfg['archs'])}")
    return cfg["archs"][name]


def folder(cfg: dict) -> Path:
    """The folder of ``cfg``'s population, trained once per sub-config and cached on disk."""
    check(cfg["population"])
    return artifacts.cached("nngraph", "population", sub_config(cfg), lambda d: build(cfg, d), VERSION)


def check(p: dict) -> None:
    if p["snapshots"] < 1 or p["snapshots"] > p["epochs"]:
        raise BenchError(
            f"population.snapshots={p['snapshots']} must lie in 1..population.epochs={p['epochs']}"
        )
    if p["size"] < 2 * 2:
        raise BenchError(f"population.size={p['size']} is too small to cross-validate: use at least 4")
    if p["diverged"] not in DIVERGED:
        raise BenchError(f"population.diverged={p['diverged']!r}: use {' or '.join(DIVERGED)}")
    cells = len(grid_cells(p["grid"]))
    if cells and p["size"] % cells:
        raise BenchError(f"population.size={p['size']} is not a multiple of the grid's {cells} cells")


def grid_cells(grid: dict | None) -> list[dict]:
    """The Cartesian product of ``population.grid`` (key -> values), first key slowest; [] if none."""
    cells: list[dict] = [{}] if grid else []
    for key, values in (grid or {}).items():
        cells = [{**c, key: v} for c in cells for v in values]
    return cells


def draw(space: dict, rng: np.random.Generator) -> dict:
    """One network's hyperparameters: log-uniform lr and init scale, uniform dropout, choices else."""

    def log_uniform(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    return {
        "lr": log_uniform(*space["lr"]),
        "width": float(rng.choice(space["width"])),
        "init_scale": log_uniform(*space["init_scale"]),
        "batch_size": int(rng.choice(space["batch_size"])),
        "weight_decay": float(rng.choice(space["weight_decay"])),
        "dropout": float(rng.uniform(*space["dropout"])),
    }


def hparam_row(h: dict) -> list[float]:
    return [
        math.log10(h["lr"]),
        h["width"],
        math.log10(h["init_scale"]),
        math.log2(h["batch_size"]),
        h["weight_decay"],
        h["dropout"],
    ]


def make_net(arch: dict, shape: tuple, classes: int, h: dict) -> torch.nn.Module:
    net = nets.build(arch, shape, classes, h["width"], h["dropout"])
    with torch.no_grad():
        for layer in net.layers():
            layer.weight.mul_(h["init_scale"])
    return net


@torch.no_grad()
def evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float]:
    """(accuracy, mean loss) in eval mode: dropout off (the official code leaves it on)."""
    net.eval()
    logits = torch.cat([net(x[i : i + batch]) for i in range(0, len(x), batch)])
    net.train()
    return (logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item()


def graph_weights(net: torch.nn.Module) -> list[torch.Tensor]:
    """The weights of the layers the graph is made of."""
    return [layer.weight for layer in net.layers()]


def finite(weights: list[torch.Tensor]) -> bool:
    """Every weight finite: a step can leave them non-finite after the epoch's last finite loss."""
    return all(bool(torch.isfinite(w).all()) for w in weights)


def augment(x: torch.Tensor, black: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The official training augmentation, per image: a random crop of the image padded with
    ``pad`` black pixels on every side, back to its size, then a horizontal flip with p = 0.5
    (torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip)."""
    n, c, h, w = x.shape
    padded = black.view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad : pad + h, pad : pad + w] = x
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = (dx[:, None] + torch.arange(w)).to(x.device)
    cols = torch.where(flip.to(x.device)[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def train_one(
    net: torch.nn.Module, h: dict, p: dict, splits: images.Splits, seed: int, aug: bool
) -> dict | None:
    """Train one network; its snapshots, curves and label. If its loss or its graph weights stop
    being finite in an epoch: None (``diverged: replace``), or training stops there and its later
    snapshots repeat the weights it had before the diverging epoch (``keep``). ``aug``: crop and
    flip each training batch."""
    dev = next(net.parameters()).device
    black = torch.from_numpy(splits.black).to(dev)
    x, y = (torch.from_numpy(a).to(dev) for a in splits.train)
    vx, vy = (torch.from_numpy(a).to(dev) for a in splits.val)
    tx, ty = (torch.from_numpy(a).to(dev) for a in splits.test)
    opt = torch.optim.SGD(
        net.parameters(), lr=h["lr"], momentum=p["momentum"], weight_decay=h["weight_decay"]
    )
    gen = torch.Generator().manual_seed(seed)
    snaps: list[list[np.ndarray]] = []
    curve = {"val_acc": [], "val_loss": [], "train_loss": []}
    cap = float(np.log(1e6))  # the loss recorded where it is not finite
    diverged = False
    for epoch in range(p["epochs"]):
        if diverged and epoch >= p["snapshots"]:
            break
        if not diverged:
            last = [w.detach().cpu().numpy().copy() for w in graph_weights(net)]
            order, total = torch.randperm(len(x), generator=gen).to(dev), 0.0
            for i in range(0, len(x), h["batch_size"]):
                idx = order[i : i + h["batch_size"]]
                batch = augment(x[idx], black, gen) if aug else x[idx]
                loss = F.cross_entropy(net(batch), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            if not (math.isfinite(total) and finite(graph_weights(net))):
                if p["diverged"] == "replace":
                    return None
                diverged = True
        if epoch < p["snapshots"]:
            snaps.append(last if diverged else [w.detach().cpu().numpy().copy() for w in graph_weights(net)])
            acc, vloss = evaluate(net, vx, vy, p["eval_batch"])
            curve["val_acc"].append(acc)
            curve["val_loss"].append(vloss if math.isfinite(vloss) else cap)
            curve["train_loss"].append(cap if diverged else total / len(x))
    final, _ = evaluate(net, tx, ty, p["eval_batch"])
    return {"snaps": snaps, "final_acc": final, "diverged": diverged, **curve}


def build(cfg: dict, folder: Path) -> None:
    """Train ``population.size`` networks into ``folder`` (diverged draws as ``population.diverged`` says)."""
    p, splits = cfg["population"], images.load(cfg["data"])
    threads = torch.get_num_threads()
    # Networks this small run fastest on one thread; two threads on a shared machine ran ~8x slower.
    torch.set_num_threads(p["threads"])
    try:
        dev = device(cfg["trainer"]["accelerator"])
        _build(p, spec(cfg), splits, folder, dev, cfg["seed"], cfg["data"]["augment"])
    finally:
        torch.set_num_threads(threads)


def device(accelerator: str) -> torch.device:
    """Where the population trains: the Trainer's accelerator setting (``auto``: a GPU if any).
    Not part of the cache key: devices differ only in floating-point rounding."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _build(
    p: dict, arch: dict, splits: images.Splits, folder: Path, dev: torch.device, run_seed: int, aug: bool
) -> None:
    classes = int(max(splits.train[1].max(), splits.test[1].max())) + 1
    rng = np.random.default_rng([p["seed"], run_seed])
    keys = ("val_acc", "val_loss", "train_loss", "final_acc", "diverged")
    rows, curves, redraws, cells = [], {k: [] for k in keys}, 0, grid_cells(p["grid"])
    (folder / "weights").mkdir()
    while len(rows) < p["size"]:
        if redraws > p["max_redraws"]:
            raise BenchError(f"over {p['max_redraws']} networks diverged: narrow population.space.lr")
        h = {**draw(p["space"], rng), **(cells[len(rows) % len(cells)] if cells else {})}
        seed = int(rng.integers(2**31))
        torch.manual_seed(seed)
        net = make_net(arch, splits.shape, classes, h).to(dev)
        out = train_one(net, h, p, splits, seed, aug)
        if out is None:
            redraws += 1
            continue
        layers = {f"l{j}": np.stack([s[j] for s in out["snaps"]]) for j in range(len(out["snaps"][0]))}
        np.savez(folder / "weights" / f"{len(rows):05d}.npz", **layers)
        rows.append(hparam_row(h))
        for key in curves:
            curves[key].append(out[key])
    np.savez(folder / "population.npz", hparams=np.array(rows), **{k: np.array(v) for k, v in curves.items()})
    (folder / "meta.json").write_text(json.dumps({"redraws": redraws, "in_channels": splits.shape[0]}))


def read(folder: Path) -> Population:
    table = np.load(folder / "population.npz")
    meta = json.loads((folder / "meta.json").read_text())
    files = sorted((folder / "weights").glob("*.npz"))
    weights = []
    for f in files:
        with np.load(f) as z:
            weights.append([z[f"l{j}"] for j in range(len(z.files))])
    return Population(
        weights=weights,
        in_channels=meta["in_channels"],
        hparams=table["hparams"],
        val_acc=table["val_acc"],
        val_loss=table["val_loss"],
        train_loss=table["train_loss"],
        final_acc=table["final_acc"],
        diverged=table["diverged"],
        redraws=meta["redraws"],
    )
