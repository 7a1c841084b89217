"""nngraph's paper-preset fixture: CIFAR-10's python batches, 12 images each."""

from __future__ import annotations

from pathlib import Path

from bench.datasets.formats import write_cifar10


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    write_cifar10(root)
    return [f"data.root={root}", "data.val_size=12", "data.test_size=12", "data.train_size=0"]
