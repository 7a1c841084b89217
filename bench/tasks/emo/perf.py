"""emo's figure: the step time of ``bench run emo`` (Lightning, callbacks, logging) over a bare
PyTorch loop on the same EMO-1M, data, optimizer (emo's own parameter groups) and thread count.
Goal: <= 1.03."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

ARGS = [
    "preset=smoke",
    "method=emo_1m",
    "data.train_size=1536",
    "data.batch_size=64",
    "data.val_size=64",
    "logger=none",
]


def bare_step_s(cfg: dict) -> float:
    """Median step time of a plain PyTorch loop doing what the emo method does."""
    import torch

    from bench.tasks.emo.data import ImageDataModule
    from bench.tasks.emo.model import build_model

    torch.manual_seed(cfg["seed"])
    data = ImageDataModule(cfg)
    data.setup()
    model = build_model("emo_1m", num_classes=10).to(memory_format=torch.channels_last)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg["optim"]["label_smoothing"])
    o = cfg["optim"]
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"],
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    model.train()
    starts = []
    for x, y in data.train_dataloader():
        starts.append(time.perf_counter())
        loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss.item()  # Lightning reads the loss back each step too
    return statistics.median(b - a for a, b in zip(starts, starts[1:], strict=False))


def bench_step_s() -> float:
    from bench.run import execute

    record, _ = execute("emo", ARGS, force=True)
    return record["cost"]["step_s"]


def main() -> None:
    from bench.config import resolve

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_RUNS"] = tmp
        cfg = resolve("emo", ARGS)
        # Alternate and keep the best of two of each, so warm-up and noise hit both alike.
        bare, ours = bare_step_s(cfg), bench_step_s()
        bare, ours = min(bare, bare_step_s(cfg)), min(ours, bench_step_s())
    print(
        f"emo_1m step, batch 64 at 32x32: bare PyTorch {bare * 1e3:.1f} ms, bench run "
        f"{ours * 1e3:.1f} ms, ratio {ours / bare:.3f} (goal <= 1.03)"
    )
