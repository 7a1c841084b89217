"""doorping's figure: DM distillation iterations per second, batched over classes (one forward
pass for all classes' real and synthetic images) vs the reference per-class loop of the same loss
(goal >= 3x), each with the networks in the default (NCHW) and channels_last memory formats.
Run: ``python -m bench.tasks.doorping.perf``."""

from __future__ import annotations

import time

import torch

from bench.tasks.doorping.distill import dm_loss, dm_loss_loop
from bench.tasks.doorping.model import ConvNet

CLASSES, IPC, BATCH, SIZE, WIDTH = 10, 10, 64, 28, 32  # version 2's DM cpu shapes


def iterations_per_s(loss_fn, iters: int, device: str, fmt: torch.memory_format) -> float:
    """DM iterations/s: a fresh net, the loss, one SGD step on the synthetic images."""
    real = torch.randn(CLASSES, BATCH, 1, SIZE, SIZE, device=device)
    syn = torch.randn(CLASSES, IPC, 1, SIZE, SIZE, device=device, requires_grad=True)
    opt = torch.optim.SGD([syn], lr=1.0, momentum=0.5)
    t0 = time.perf_counter()
    for _ in range(iters):
        net = ConvNet(1, CLASSES, SIZE, WIDTH, 3, 192).to(device, memory_format=fmt).requires_grad_(False)
        loss = loss_fn(net, real, syn)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - t0)


def main(tiny: bool = False, iters: int = 10, reps: int = 3) -> float:
    """Best of ``reps`` interleaved measurements of each variant; returns batched / loop (NCHW).
    ``tiny``: one iteration once (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    if tiny:
        iters, reps = 1, 1
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    variants = {
        (name, fmt_name): (fn, fmt)
        for name, fn in (("batched", dm_loss), ("loop", dm_loss_loop))
        for fmt_name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last))
    }
    iterations_per_s(dm_loss, 2, device, torch.contiguous_format)  # warm-up
    best = dict.fromkeys(variants, 0.0)
    for _ in range(reps):
        for key, (fn, fmt) in variants.items():
            best[key] = max(best[key], iterations_per_s(fn, iters, device, fmt))
    print(f"DM iterations/s on {device} ({torch.get_num_threads()} threads), best of {reps}:")
    for fmt in ("nchw", "channels_last"):
        b, lp = best[("batched", fmt)], best[("loop", fmt)]
        print(f"  {fmt:>13}: batched {b:.2f}, per-class loop {lp:.2f}, batched/loop {b / lp:.2f}x")
    for name in ("batched", "loop"):
        gain = best[(name, "channels_last")] / best[(name, "nchw")]
        print(f"  channels_last speed-up of the {name} path: {gain:.2f}x")
    ratio = best[("batched", "nchw")] / best[("loop", "nchw")]
    print(f"figure: batched vs per-class loop {ratio:.2f}x (goal >= 3x)")
    return ratio


if __name__ == "__main__":
    main()
