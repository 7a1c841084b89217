"""doorping's paper-preset fixture: CIFAR-10's python batches, 30 images each."""

from __future__ import annotations

from pathlib import Path

from bench.datasets.formats import write_cifar10


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    write_cifar10(root, per_batch=30)
    return [f"data.root={root}", "data.train_per_class=12", "data.image_size=32", "data.test_size=30"] + [
        "distill.batch_real=4"
    ]
