"""What an asyncfl run's seed draws (bench/seeds.py): the federation (the clients' partition and
the val/test split), the initial model, and the clients' local example orders (hashed from the
seed, the client and its launch serial, so every algorithm's client sees the same batches)."""

from __future__ import annotations

import numpy as np

from bench.seeds import build, digest, set_up
from bench.tasks.asyncfl.local import LocalTrainer

CLIENTS = 4  # the first clients' first launches: enough to tell two orders apart


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    fed = module.fed
    trainer = LocalTrainer(fed, module.flat, cfg["client"], cfg["seed"])
    first = trainer.batch_of(np.arange(CLIENTS), np.zeros(CLIENTS, dtype=np.int64))
    return {
        "data": digest(fed.x, fed.y, fed.index, fed.offsets, fed.x_val, fed.y_val, fed.x_test, fed.y_test),
        "init": digest(module.x0),
        "order": digest(first),
    }
