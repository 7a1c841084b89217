"""The lr follows the global batch: per-device batch x devices x nodes x accumulation."""

from __future__ import annotations

import pytest

from bench.config import resolve
from bench.optim import global_batch, scaled_lr, world_size


def test_emo_paper_lr_on_eight_devices_is_the_official_6e_3() -> None:
    cfg = resolve("emo", ["preset=paper", "method=emo_1m", "trainer.devices=8"])
    lr = scaled_lr(cfg["optim"]["lr"], cfg["optim"]["lr_batch"], cfg["data"]["batch_size"], cfg["trainer"])
    assert lr == pytest.approx(6e-3)


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ({"devices": 1}, 32),
        ({"devices": [0, 1, 2, 3]}, 128),
        ({"devices": "0,1"}, 64),
        ({"devices": 2, "num_nodes": 2, "accumulate_grad_batches": 4}, 512),
        ({"devices": "auto", "accelerator": "cpu"}, 32),
    ],
)
def test_global_batch_counts_every_process_and_accumulation(trainer: dict, expected: int) -> None:
    assert global_batch(32, trainer) == expected


def test_the_trainers_world_size_wins_over_the_config() -> None:
    assert world_size({"devices": "auto"}) >= 1
    assert global_batch(16, {"devices": "auto"}, processes=8) == 128
