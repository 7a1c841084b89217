"""emo's paper-preset fixture: a tiny ImageNet in its ImageFolder layout (JPEGs per class folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def imagefolder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    """A tiny ImageNet-layout tree: root/{train,val}/<class>/<n>.JPEG."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"n0{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (40 + i, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.JPEG")
    return root


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    imagefolder(root, classes=2)
    return [f"data.root={root}", "data.num_classes=2", "data.batch_size=2"]
