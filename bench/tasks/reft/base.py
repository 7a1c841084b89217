"""Base training, the stage every method and seed shares: a plain Mask2Former trained on the
base classes (novel instances stay in the images, unannotated, as in TFA's COCO protocol), and
the base classes' references computed from base images, stored for iFSIS (which sees no base
data afterwards). Cached by ``bench.artifacts.cached`` under its own sub-config."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from bench import artifacts
from bench.tasks.reft.data import SYNTHETIC_KEYS, Instances, collate
from bench.tasks.reft.model import FewShotMask2Former


def on(device: torch.device, images: torch.Tensor, targets: list[dict]) -> tuple[torch.Tensor, list[dict]]:
    return images.to(device), [{k: v.to(device) for k, v in t.items()} for t in targets]


def draw_batch(
    ds: Instances, n: int, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, list[dict]]:
    idx = torch.randint(len(ds), (n,), generator=gen).tolist()
    return on(device, *collate([ds[i] for i in idx]))


def chunks(ds: Instances, size: int, device: torch.device):
    for i in range(0, len(ds), size):
        yield on(device, *collate([ds[j] for j in range(i, min(i + size, len(ds)))]))


def train_steps(model, ds, steps: int, o: dict, gen: torch.Generator) -> float:
    """``steps`` AdamW steps of Mask2Former's loss on batches drawn from ``ds``: linear warm-up
    over ``o["warmup"]`` steps, then linear decay to zero; Mask2Former's grad-norm clipping.
    Returns images per second."""
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    opt = torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"])
    warm = o["warmup"]

    def factor(s: int) -> float:
        return min(1.0, (s + 1) / warm if warm else 1.0) * (1 - s / steps)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        images, targets = draw_batch(ds, o["batch_size"], gen, device)
        loss = sum(model.loss(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, o["clip"])
        opt.step()
        sched.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"base training loss became {float(loss)}")
    return steps * o["batch_size"] / (time.perf_counter() - t0)


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
    sub.__dict__ |= ds.__dict__ | {"images": chosen, "flip": False}
    return sub


def base_stage(cfg: dict, dm) -> Path:
    """The cached base model (``model.pt``) and base references (``bank.pt``)."""
    d = cfg["data"]
    data_key = {k: d[k] for k in SYNTHETIC_KEYS} if d["source"] == "synthetic" else {"root": str(d["root"])}
    data_key |= {"novel": d["novel"], "size": d["size"]}
    sub = {"data": data_key, "model": cfg["model"], "base": cfg["base"]}

    def build(folder: Path) -> None:
        b = cfg["base"]
        torch.manual_seed(b["seed"])
        gen = torch.Generator().manual_seed(b["seed"])
        gpu = cfg["trainer"]["accelerator"] != "cpu" and torch.cuda.is_available()
        device = torch.device("cuda" if gpu else "cpu")
        model = FewShotMask2Former(cfg["model"], dm.num_classes).to(device)
        rate = train_steps(model, dm.base_train, b["steps"], b, gen)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "model.pt")
        model.eval()
        sums = None
        for images, targets in chunks(
            per_class_subset(dm.base_train, b["bank_images"], dm.num_base), 16, device
        ):
            part = model.encode_support(images, targets)
            sums = part if sums is None else tuple(a + p for a, p in zip(sums, part, strict=True))
        bank = dict(zip(("centres", "squeries", "count"), (x.cpu() for x in sums), strict=True))
        torch.save(bank, folder / "bank.pt")
        (folder / "train_images_per_s.txt").write_text(f"{rate:.3f}\n")

    return artifacts.cached("reft", "base", sub, build)
