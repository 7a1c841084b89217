"""What a reft run's seed draws (bench/seeds.py): the K-shot sets of its phases (TFA's K-shot files
of the seed; the scenes, the test images and the base stage are shared by every seed), the first
phase's start (the base weights with the novel classes' fresh classifier rows), and the first
phase's order: its query batches, and the state its generator and the global random state (the
flips, the loss's point samples, the next phase's fresh rows) are left in after its first steps,
which are run (the smoke preset's first phase is two steps)."""

from __future__ import annotations

import torch

from bench.seeds import ORDER_BATCHES, build, digest, set_up


def draws(cfg: dict, method: str) -> dict[str, str]:
    seed = cfg["seed"]
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    sets = {f"{p}_k{k}": datamodule.kshot(k, seed, novel_only=p != "gfsis") for p, k in module.todo}
    data = digest(
        {
            name: [[im["id"] for im in ds.images], sorted(a["id"] for v in ds.anns.values() for a in v)]
            for name, ds in sets.items()
        },
        [im["id"] for im in datamodule.test.images],
    )
    module._start(*module.todo[0])
    ph, f = module.phase, module.f
    init = digest(module.model.state_dict())
    steps = min(f["steps"], ORDER_BATCHES)
    gen = torch.Generator().manual_seed(0)
    gen.set_state(ph["gen"].get_state())
    queries = [ph["episodes"].draw(f["batch_size"], 0, gen, torch.Generator())[0] for _ in range(steps)]
    for _ in range(steps):
        module.step()
    return {
        "data": data,
        "init": init,
        "order": digest(queries, ph["gen"].get_state(), torch.get_rng_state()),
    }
