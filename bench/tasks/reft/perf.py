"""reft's figure: fine-tuning throughput (training images per second) of RefT against plain
Mask2Former fine-tuning, the cpu preset's model and fine-tuning settings on one thread, on the
10-shot novel set (the smoke preset's scenes). RefT's cost is its support episode per step (a
no-grad pass over ``finetune.support_batch`` support images) and the two cross-attentions."""

from __future__ import annotations

import time

import torch

from bench.config import resolve
from bench.tasks.reft.base import Episodes
from bench.tasks.reft.data import FewShotCocoDataModule
from bench.tasks.reft.method import finetune_step
from bench.tasks.reft.model import FewShotMask2Former

WARMUP, STEPS = 3, 20


def images_per_s(refs: tuple[str, ...], cfg: dict, dm, warmup: int = WARMUP, steps: int = STEPS) -> float:
    torch.manual_seed(0)
    model = FewShotMask2Former(cfg["model"], dm.num_classes, refs)
    f = cfg["finetune"] | cfg["methods"][cfg["method"]]
    data = dm.kshot(10, 0, novel_only=True)
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith(tuple(f["freeze"]["fsis"]))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=f["lr"])
    gen = torch.Generator().manual_seed(0)
    episodes = Episodes(data)
    model.train()
    model.backbone.eval()
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        finetune_step(model, data, episodes, f, gen, opt, params, None, dm.num_base)
    return steps * f["batch_size"] / (time.perf_counter() - t0)


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: one step after one warm-up step (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    warmup, steps = (1, 1) if tiny else (WARMUP, STEPS)
    torch.set_num_threads(1)
    cfg = resolve("reft", ["preset=cpu"])
    smoke = resolve("reft", ["preset=smoke"])
    dm = FewShotCocoDataModule(smoke)
    dm.setup()
    base = images_per_s((), cfg, dm, warmup, steps)
    reft = images_per_s(("feature", "instance"), cfg, dm, warmup, steps)
    f = cfg["finetune"]
    print(
        f"reft fine-tuning, cpu-preset model at {cfg['data']['size']}px, batch {f['batch_size']}, "
        f"support batch {f['support_batch']}, 1 thread: mask2former_ft {base:.1f} images/s, "
        f"reft {reft:.1f} images/s; reft / mask2former_ft = {reft / base:.2f}x"
    )


if __name__ == "__main__":
    main()
