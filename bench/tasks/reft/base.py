"""Base training, the stage every method and seed shares: a plain Mask2Former trained on the
base classes (novel instances stay in the images, unannotated, as in TFA's COCO protocol) with
RefT's two references trained on base-class support episodes (each dropped on a share of the
steps, so the same base serves plain fine-tuning and every RefT variant), and the base classes'
references computed from base images, stored for iFSIS (which sees no base data afterwards).
Cached by ``bench.artifacts.cached`` under its own sub-config; its training checkpoints itself
into the stage's progress folder, so a killed build resumes."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from bench import artifacts
from bench.tasks.reft.data import SYNTHETIC_KEYS, Instances, collate
from bench.tasks.reft.model import REFS, FewShotMask2Former

# The base stage's artifact version: a change of what the stage computes for one sub-config.
VERSION = 2


def on(device: torch.device, images: torch.Tensor, targets: list[dict]) -> tuple[torch.Tensor, list[dict]]:
    return images.to(device), [{k: v.to(device) for k, v in t.items()} for t in targets]


def fetch(ds: Instances, idx: list[int], device: torch.device) -> tuple[torch.Tensor, list[dict]]:
    return on(device, *collate([ds[i] for i in idx]))


class Episodes:
    """Query batches and support episodes drawn from one set of images, never sharing an image:
    the query batch first (``n_query`` distinct images, one image kept back for the support when
    a support is asked for), then one support image (not in the query) for each class the query
    holds, in a random order, then random other images, up to ``n_support``.

    With a ``support_gen``, the support's random choices come from it alone and one image is kept
    back whether a support is asked for or not: the query batches ``gen`` yields are then the same
    for a method with references and one without (a paired comparison)."""

    def __init__(self, ds: Instances) -> None:
        self.n = len(ds)
        self.classes = [
            sorted({ds.index[a["category_id"]] for a in ds.anns.get(im["id"], [])}) for im in ds.images
        ]
        self.holders: dict[int, list[int]] = {}
        for i, cs in enumerate(self.classes):
            for c in cs:
                self.holders.setdefault(c, []).append(i)

    def draw(
        self, n_query: int, n_support: int, gen: torch.Generator, support_gen: torch.Generator | None = None
    ) -> tuple[list[int], list[int]]:
        sgen = gen if support_gen is None else support_gen
        perm = torch.randperm(self.n, generator=gen).tolist()
        keep = (n_support > 0 or support_gen is not None) and self.n > 1
        nq = min(n_query, self.n - keep)
        query, taken = perm[:nq], set(perm[:nq])
        support: list[int] = []
        wanted = sorted({c for i in query for c in self.classes[i]})
        for j in torch.randperm(len(wanted), generator=sgen).tolist():
            if len(support) >= n_support:
                break
            free = [i for i in self.holders[wanted[j]] if i not in taken]
            if free:
                pick = free[int(torch.randint(len(free), (1,), generator=sgen))]
                support.append(pick)
                taken.add(pick)
        support += [i for i in perm[nq:] if i not in taken][: max(0, n_support - len(support))]
        return query, support


@contextmanager
def own_stream(device: torch.device, gen: torch.Generator):
    """Run the block on a global random state seeded from ``gen``, then restore the caller's."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        yield


def support_sums(model, ds: Instances, device: torch.device, idx: list[int] | None = None) -> tuple:
    """``encode_support``'s per-class sums and counts over images ``idx`` of ``ds`` (all: None)."""
    idx = list(range(len(ds))) if idx is None else idx
    sums = None
    for i in range(0, len(idx), 16):
        part = model.encode_support(*fetch(ds, idx[i : i + 16], device))
        sums = part if sums is None else tuple(a + p for a, p in zip(sums, part, strict=True))
    return sums


def episode(
    model, ds, episodes: Episodes, n_query: int, n_support: int, refs, gen, extra=None, support_gen=None
):
    """One training episode: a query batch and, when ``refs`` is not empty, a support episode
    from other images whose per-class means (plus the per-class sums ``extra``) are the bank the
    query's forward uses. Returns (query images, targets, forward output, refs used).

    With a ``support_gen`` (``Episodes.draw``), the support pass (its flips, its matching's point
    samples) also draws from a global random state of its own, seeded from ``support_gen``: the
    run's global stream (the query's flips, the loss's point samples) is left as a method without
    references leaves it."""
    device = model.centres.device
    query, support = episodes.draw(n_query, n_support if refs else 0, gen, support_gen)
    images, targets = fetch(ds, query, device)
    bank = None
    if refs and support:
        if support_gen is None:
            sums = support_sums(model, ds, device, support)
        else:
            with own_stream(device, support_gen):
                sums = support_sums(model, ds, device, support)
        if extra is not None:
            sums = tuple(a + b for a, b in zip(sums, extra, strict=True))
        bank = model.bank_from(*sums)
    else:
        refs = ()
    return images, targets, model(images, refs=refs, bank=bank), refs


def train_steps(
    model, ds, steps: int, o: dict, gen: torch.Generator, state: Path | None = None, every_s: float = 600.0
) -> float:
    """``steps`` AdamW steps of Mask2Former's loss on batches drawn from ``ds``: linear warm-up
    over ``o["warmup"]`` steps, then linear decay to zero (or, with ``o["milestones"]``, mmdet's
    step decay), the backbone's lr times ``o["backbone_lr_mult"]``; Mask2Former's grad-norm
    clipping. Each
    reference is dropped on a share ``o["ref_drop"]`` of the steps (independently), so the base
    model learns to work with both, either and neither. Returns images per second.

    With ``state`` (a file), the loop's whole state (model, optimizer, schedule, step, the episode
    generator and the global random state the flips draw from) is saved there every ``every_s``
    seconds and, when the file exists, training continues from it: a killed paper-scale base stage
    (368,750 steps) resumes where it stopped and ends as an uninterrupted one."""
    params = [p for p in model.parameters() if p.requires_grad]
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    groups = [{"params": backbone, "lr": o["lr"] * o["backbone_lr_mult"]}, {"params": rest}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=o["lr"], weight_decay=o["weight_decay"])
    warm, milestones = o["warmup"], o["milestones"]
    episodes = Episodes(ds)

    def factor(s: int) -> float:
        """Warm-up, then mmdet's step decay (x0.1 at each milestone) or, without milestones, a
        linear decay to zero."""
        decay = 0.1 ** sum(s >= m for m in milestones) if milestones else 1 - s / steps
        return min(1.0, (s + 1) / warm if warm else 1.0) * decay

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    start = 0
    if state is not None and state.exists():
        start = _restore(torch.load(state, weights_only=False), model, opt, sched, gen)
    model.train()
    t0 = saved = time.perf_counter()
    for step in range(start, steps):
        refs = tuple(r for r in REFS if float(torch.rand((), generator=gen)) >= o["ref_drop"])
        images, targets, out, _ = episode(model, ds, episodes, o["batch_size"], o["support_batch"], refs, gen)
        loss = sum(model.loss(images, targets, out).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, o["clip"])
        opt.step()
        sched.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"base training loss became {float(loss)}")
        if state is not None and step + 1 < steps and time.perf_counter() - saved >= every_s:
            torch.save(_snapshot(step + 1, model, opt, sched, gen), state.with_suffix(".tmp"))
            os.replace(state.with_suffix(".tmp"), state)
            saved = time.perf_counter()
    return (steps - start) * o["batch_size"] / (time.perf_counter() - t0)


def _snapshot(step: int, model, opt, sched, gen: torch.Generator) -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return {
        "step": step,
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "gen": gen.get_state(),
        "rng": torch.get_rng_state(),
        "cuda_rng": cuda,
    }


def _restore(snap: dict, model, opt, sched, gen: torch.Generator) -> int:
    model.load_state_dict(snap["model"])
    opt.load_state_dict(snap["opt"])
    sched.load_state_dict(snap["sched"])
    gen.set_state(snap["gen"])
    torch.set_rng_state(snap["rng"])
    if snap["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(snap["cuda_rng"])
    return snap["step"]


def per_class_subset(ds: Instances, per_class: int, num_classes: int) -> Instances:
    """The first images holding each class, ``per_class`` of them per class (for references)."""
    chosen, counts = [], [0] * num_classes
    for im in ds.images:
        labels = {ds.index[a["category_id"]] for a in ds.anns.get(im["id"], [])}
        if any(counts[c] < per_class for c in labels):
            chosen.append(im)
            for c in labels:
                counts[c] += 1
    sub = Instances.__new__(Instances)
    sub.__dict__ |= ds.__dict__ | {"images": chosen, "flip": False, "lsj": None}
    return sub


def base_stage(cfg: dict, dm) -> Path:
    """The cached base model (``model.pt``) and base references (``bank.pt``)."""
    d = cfg["data"]
    # the scenes' keys less the K-shot files' (base training reads none): more seeds, same base
    scenes = [k for k in SYNTHETIC_KEYS if k not in ("kshot_seeds", "shots_written")]
    data_key = {k: d[k] for k in scenes} if d["source"] == "synthetic" else {"root": str(d["root"])}
    data_key |= {"novel": d["novel"], "size": d["size"], "lsj": d["lsj"]}
    sub = {"data": data_key, "model": cfg["model"], "base": cfg["base"]}

    def build(folder: Path) -> None:
        gpu = cfg["trainer"]["accelerator"] != "cpu" and torch.cuda.is_available()
        device = torch.device("cuda" if gpu else "cpu")
        # on a random state of its own: a run that builds the stage goes on as one that reads it
        with torch.random.fork_rng(devices=[device] if gpu else []):
            train_base(folder, device)

    def train_base(folder: Path, device: torch.device) -> None:
        b = cfg["base"]
        torch.manual_seed(b["seed"])
        gen = torch.Generator().manual_seed(b["seed"])
        model = FewShotMask2Former(cfg["model"], dm.num_classes, REFS).to(device)
        t0 = time.perf_counter()
        state = artifacts.progress("reft", "base", sub, version=VERSION) / "train.pt"
        rate = train_steps(model, dm.base_train, b["steps"], b, gen, state)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "model.pt")
        subset = per_class_subset(dm.base_train, b["bank_images"], dm.num_base)
        sums = support_sums(model, subset, device)
        bank = dict(zip(("centres", "squeries", "count"), (x.cpu() for x in sums), strict=True))
        torch.save(bank, folder / "bank.pt")
        (folder / "train_images_per_s.txt").write_text(f"{rate:.3f}\n")
        (folder / "build_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")

    return artifacts.cached("reft", "base", sub, build, version=VERSION)
