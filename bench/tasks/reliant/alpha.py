"""RELIANT's alpha chosen on validation, once per (framework, teacher, objective, graph) and cached
so that every seed shares it: the search runs on the split, teacher and student seed
``alpha_search.seed``, a seed the preset does not judge (its split and teacher are not any judged
seed's). Every seed's test nodes are the same (``data.test_seed``) and never among the search's
training or validation nodes, so a shared choice reads no test label of any seed.

The official code fixes alpha per command line and tunes the student's other hyper-parameters with
optuna on validation accuracy (CPF's ``hypersearch.py``). Validation accuracy alone always prefers
the weakest debiasing, so the choice here is the constrained one: among ``model.alpha_search.grid``,
the alpha whose student has the smallest targeted gap on the validation nodes (dSP for sp, dEO for
eo) while both its validation accuracy and AUC stay within ``tolerance`` of the vanilla-KD
student's (same split and teacher); the smallest alpha if none does.
"""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager

import torch

from bench.artifacts import cache_root, cached
from bench.tasks.reliant.data import split_data
from bench.tasks.reliant.graphs import FairGraph, resplit
from bench.tasks.reliant.metrics import GraphMetrics

GAP = {"sp": "dsp", "eo": "deo"}


@contextmanager
def locked(stage: str):
    """One builder per stage at a time: concurrent seeds wait for the first one's result."""
    path = cache_root() / "reliant" / f".{stage}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def validation(
    cls, cfg: dict, framework: str, teacher: str, objective: str | None, alpha: float | None, g: FairGraph
):
    """Train ``cls``'s student on ``g`` alone at ``cfg``'s seed, outside a Trainer, and return its
    validation metrics."""
    with torch.random.fork_rng(devices=[]):  # the calling run's random stream is left as it was
        torch.manual_seed(cfg["seed"])
        method = cls(cfg, framework, objective=objective, alpha=alpha, teacher=teacher)
        method.plain = {g.name: g}
        method.setup("fit")
        opts = method.configure_optimizers()
        for epoch in range(method.epochs):
            method.epoch(epoch, opts)
        method.on_train_end()
        prob = method.probs(g.name)[g.val, 1]
    return {k: float(v) for k, v in GraphMetrics()(prob, g.y[g.val], g.sens[g.val]).items()}


def search_config(cfg: dict, framework: str, teacher: str, g: FairGraph) -> dict:
    return {
        "graph": g.name,
        "split_seed": g.split_seed,
        "seed": cfg["seed"],
        "framework": framework,
        "teacher": teacher,
        "data": {k: v for k, v in cfg["data"].items() if k != "datasets"},
        "model": cfg["model"],
        "optim": cfg["optim"],
    }


def stored(stage: str, sub: dict, compute) -> dict:
    """``compute()``'s json result, cached under ``stage`` and built by one process at a time."""

    def build(folder) -> None:
        (folder / "result.json").write_text(json.dumps(compute()))

    with locked(stage):
        return json.loads((cached("reliant", stage, sub, build) / "result.json").read_text())


def chosen_alpha(cls, cfg: dict, framework: str, teacher: str, objective: str, g: FairGraph) -> float:
    search = cfg["model"]["alpha_search"]
    cfg = {**cfg, "seed": search["seed"]}  # the search's split, teacher and student seed
    g = resplit(g, split_data(cfg), search["seed"])
    gap, tolerance = GAP[objective], search["tolerance"]
    sub = search_config(cfg, framework, teacher, g)
    reference = stored(
        f"kd_val_{framework}_{teacher}_{g.name}",
        sub,
        lambda: validation(cls, cfg, framework, teacher, None, None, g),
    )

    def compute() -> dict:
        trials = {
            str(a): validation(cls, cfg, framework, teacher, objective, float(a), g) for a in search["grid"]
        }
        ok = [a for a, m in trials.items() if all(m[u] >= reference[u] - tol for u, tol in tolerance.items())]
        best = min(ok, key=lambda a: trials[a][gap]) if ok else min(trials, key=float)
        return {"alpha": float(best), "reference": reference, "trials": trials}

    return stored(
        f"alpha_{framework}_{teacher}_{objective}_{g.name}", {**sub, "objective": objective}, compute
    )["alpha"]
