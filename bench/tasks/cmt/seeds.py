"""What a cmt run's seed draws (bench/seeds.py): the initial weights and the training order. The
scenes are fixed (``Task.seed_fixed``), digested to show they stay so."""

from __future__ import annotations

from bench.seeds import batches, build, digest, set_up


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    return {
        "data": digest(datamodule.train_set.items, datamodule.test_set.items),
        "init": digest(module.state_dict()),
        "order": digest(batches(datamodule.train_dataloader())),
    }
