"""doorping's figure: DM distillation iterations per second, batched over classes (one forward
pass for all classes' real and synthetic images) vs the reference per-class loop of the same loss.
Goal: >= 3x. Run: ``python -m bench.tasks.doorping.perf``."""

from __future__ import annotations

import time

import torch

from bench.tasks.doorping.distill import dm_loss, dm_loss_loop
from bench.tasks.doorping.model import ConvNet

CLASSES, IPC, BATCH, SIZE, WIDTH = 10, 10, 128, 28, 32  # the cpu preset's DM shapes


def iterations_per_s(loss_fn, iters: int, device: str) -> float:
    """DM iterations/s: a fresh net, the loss, one SGD step on the synthetic images."""
    real = torch.randn(CLASSES, BATCH, 1, SIZE, SIZE, device=device)
    syn = torch.randn(CLASSES, IPC, 1, SIZE, SIZE, device=device, requires_grad=True)
    opt = torch.optim.SGD([syn], lr=1.0, momentum=0.5)
    t0 = time.perf_counter()
    for _ in range(iters):
        net = ConvNet(1, CLASSES, SIZE, WIDTH, 3, 192).to(device).requires_grad_(False)
        loss = loss_fn(net, real, syn)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - t0)


def main(iters: int = 20) -> float:
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    iterations_per_s(dm_loss, 2, device)  # warm-up
    batched = iterations_per_s(dm_loss, iters, device)
    loop = iterations_per_s(dm_loss_loop, iters, device)
    ratio = batched / loop
    print(
        f"DM iterations/s on {device} ({torch.get_num_threads()} threads): batched {batched:.2f}, "
        f"per-class loop {loop:.2f}, ratio {ratio:.2f}x (goal >= 3x)"
    )
    return ratio


if __name__ == "__main__":
    main()
