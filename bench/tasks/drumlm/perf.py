"""drumlm's figure: fine-tuning throughput of SmolLM2-135M on groove text, LoRA vs full.

Each mode runs in a fresh process (so its peak memory is its own): the cached fp32 checkpoint,
AdamW on the trainable parameters, batches of generated groove text; tokens per second of
training steps after one warm-up step, and the process's peak memory (RSS on CPU, allocated on a
GPU). Goal: LoRA faster and lighter than full fine-tuning.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from queue import SimpleQueue

BATCH, TOKENS, STEPS = 4, 256, 3
LORA = {"r": 16, "alpha": 32, "dropout": 0.05, "modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def measure(mode: str, queue, steps: int = STEPS, tokens: int = TOKENS) -> None:
    import numpy as np
    import torch

    from bench.tasks.drumlm import grooves, notation
    from bench.tasks.drumlm.lm import smollm

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = smollm({"finetune": mode, "lora": LORA}, pretrained=True)
    model.to(device).train()
    rng = np.random.default_rng(0)
    cfg = {"core_flips": 2, "mutation_rate": 0.02, "fill_every": 4}
    text = "".join("".join(notation.to_example(grooves.groove(rng, 6, cfg)[0])) for _ in range(BATCH * 2))
    ids = (
        torch.tensor(tok(text, add_special_tokens=False).input_ids[: BATCH * tokens])
        .view(BATCH, tokens)
        .to(device)
    )
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    queue.put((BATCH * tokens * steps / sum(times[1:]), peak, trainable, device))


def run(
    mode: str, steps: int = STEPS, tokens: int = TOKENS, fresh: bool = True
) -> tuple[float, float, int, str]:
    """``measure`` in a fresh process (``fresh``: its peak memory is its own), else in this one."""
    if not fresh:
        queue = SimpleQueue()
        measure(mode, queue, steps, tokens)
        return queue.get()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(mode, queue, steps, tokens))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: one timed step of 16 tokens per row, in this process (seconds,
    for the test that every perf.py runs; its numbers mean nothing)."""
    from bench.tasks.drumlm.pretrain import smollm_folder

    steps, tokens = (1, 16) if tiny else (STEPS, TOKENS)
    smollm_folder()  # build the cached checkpoint before timing anything
    lora, full = run("lora", steps, tokens, not tiny), run("full", steps, tokens, not tiny)
    print(
        f"SmolLM2-135M fine-tuning on groove text, batch {BATCH} x {tokens} tokens on {lora[3]}: "
        f"LoRA r={LORA['r']} {lora[0]:,.0f} tokens/s, peak {lora[1]:,.0f} MB, {lora[2]:,} trainable; "
        f"full {full[0]:,.0f} tokens/s, peak {full[1]:,.0f} MB, {full[2]:,} trainable; "
        f"speed ratio LoRA/full {lora[0] / full[0]:.2f}x, memory ratio {lora[1] / full[1]:.2f} "
        "(goal: LoRA faster and lighter)"
    )


if __name__ == "__main__":
    main()
