"""``make perf``: harness overhead, measured against baselines in the same process.

1. Step time of ``bench run emo`` (Lightning, callbacks, logging) over a bare PyTorch loop on the
   same model, data, optimizer and thread count: goal <= 1.03.
2. ``bench list`` wall time (goal < 0.5 s) and that it imports no torch.
3. Each task's own figure: ``bench/tasks/<name>/perf.py`` with a ``main()`` that prints it
   (``python -m bench.perf TASK ...`` limits this part to the tasks named).
"""

from __future__ import annotations

import importlib
import os
import statistics
import subprocess
import sys
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
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
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


def list_wall_s(repeats: int = 5) -> tuple[float, bool]:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from bench.cli import main; main(['list']); "
        "print('torch' in sys.modules, file=sys.stderr)",
    ]
    times, imported = [], False
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        imported |= out.stderr.strip().endswith("True")
    return min(times), imported


def main(only: list[str]) -> None:
    """Harness figures, then the figure of every task (or of the tasks named)."""
    from bench.config import resolve
    from bench.registry import TASKS_DIR, get_task, tasks

    for name in only:
        get_task(name)
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
    wall, imported = list_wall_s()
    print(f"bench list: {wall:.3f} s (goal < 0.5), torch imported: {imported}")
    for name in only or tasks():
        if (TASKS_DIR / name / "perf.py").exists():
            print(f"--- {name}", flush=True)
            importlib.import_module(f"bench.tasks.{name}.perf").main()


if __name__ == "__main__":
    main(sys.argv[1:])
