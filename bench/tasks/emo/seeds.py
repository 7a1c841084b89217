"""What an emo run's seed draws (bench/seeds.py): the bundled subsets (drawn by the run's seed), the
initial weights and the training order."""

from __future__ import annotations

from bench.seeds import batches, build, digest, set_up


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    splits = datamodule.splits
    return {
        "data": digest([splits[s].tensors for s in ("train", "val", "test")]),
        "init": digest(module.state_dict()),
        "order": digest(batches(datamodule.train_dataloader())),
    }
