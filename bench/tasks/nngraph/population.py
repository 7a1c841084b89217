"""The population: networks of one architecture with varied hyperparameters, weights snapshotted
at every epoch of evidence, final test accuracy as the label. The run's seed draws it (with
``population.seed``): each seed judges the predictors on a population of its own, so the seeds'
spread holds the population-to-population variation, not only the fold splits'. A shared stage,
cached by its sub-config (which holds the seed): built once per seed, read by every method.

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
VERSION = 1


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


def train_one(net: torch.nn.Module, h: dict, p: dict, splits: images.Splits, seed: int) -> dict | None:
    """Train one network; its snapshots and curves, or None if its loss stopped being finite."""
    dev = next(net.parameters()).device
    x, y = (torch.from_numpy(a).to(dev) for a in splits.train)
    vx, vy = (torch.from_numpy(a).to(dev) for a in splits.val)
    tx, ty = (torch.from_numpy(a).to(dev) for a in splits.test)
    opt = torch.optim.SGD(
        net.parameters(), lr=h["lr"], momentum=p["momentum"], weight_decay=h["weight_decay"]
    )
    gen = torch.Generator().manual_seed(seed)
    snaps: list[list[np.ndarray]] = []
    curve = {"val_acc": [], "val_loss": [], "train_loss": []}
    for epoch in range(p["epochs"]):
        order, total = torch.randperm(len(x), generator=gen).to(dev), 0.0
        for i in range(0, len(x), h["batch_size"]):
            idx = order[i : i + h["batch_size"]]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if not math.isfinite(total):
            return None
        if epoch < p["snapshots"]:
            snaps.append([layer.weight.detach().cpu().numpy().copy() for layer in net.layers()])
            acc, vloss = evaluate(net, vx, vy, p["eval_batch"])
            curve["val_acc"].append(acc)
            curve["val_loss"].append(vloss if math.isfinite(vloss) else float(np.log(1e6)))
            curve["train_loss"].append(total / len(x))
    final, _ = evaluate(net, tx, ty, p["eval_batch"])
    return {"snaps": snaps, "final_acc": final, **curve}


def build(cfg: dict, folder: Path) -> None:
    """Train ``population.size`` networks into ``folder``; a diverged draw is replaced by a new one."""
    p, splits = cfg["population"], images.load(cfg["data"])
    threads = torch.get_num_threads()
    # Networks this small run fastest on one thread; two threads on a shared machine ran ~8x slower.
    torch.set_num_threads(p["threads"])
    try:
        _build(p, spec(cfg), splits, folder, device(cfg["trainer"]["accelerator"]), cfg["seed"])
    finally:
        torch.set_num_threads(threads)


def device(accelerator: str) -> torch.device:
    """Where the population trains: the Trainer's accelerator setting (``auto``: a GPU if any).
    Not part of the cache key: devices differ only in floating-point rounding."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _build(
    p: dict, arch: dict, splits: images.Splits, folder: Path, dev: torch.device, run_seed: int
) -> None:
    classes = int(max(splits.train[1].max(), splits.test[1].max())) + 1
    rng = np.random.default_rng([p["seed"], run_seed])
    rows, curves, redraws = [], {"val_acc": [], "val_loss": [], "train_loss": [], "final_acc": []}, 0
    (folder / "weights").mkdir()
    while len(rows) < p["size"]:
        if redraws > p["max_redraws"]:
            raise BenchError(f"over {p['max_redraws']} networks diverged: narrow population.space.lr")
        h = draw(p["space"], rng)
        seed = int(rng.integers(2**31))
        torch.manual_seed(seed)
        net = make_net(arch, splits.shape, classes, h).to(dev)
        out = train_one(net, h, p, splits, seed)
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
    )
