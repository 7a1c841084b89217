"""What a drumlm run's seed draws (bench/seeds.py): the training order, and the initial weights of
a model trained from scratch. The grooves and the pretrained weights are fixed
(``Task.seed_fixed``), digested to show they stay so."""

from __future__ import annotations

from bench.seeds import batches, build, digest, set_up


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    splits = datamodule.splits
    return {
        "data": digest({k: [(g.name, g.prompt, g.completion) for g in v] for k, v in splits.items()}),
        "init": digest(module.state_dict()),
        "order": digest([[g.name for g in batch] for (batch,) in batches(datamodule.train_dataloader())]),
    }
