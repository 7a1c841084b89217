"""emo data paths: the bundled Fashion-MNIST subset and the real ImageFolder format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.emo.data import ImageDataModule


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


def test_bundled_subset_is_fixed_resized_and_three_channel() -> None:
    cfg = resolve("emo", ["preset=smoke", "data.image_size=40"])
    dm = ImageDataModule(cfg)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 40, 40) and y.max() < 10
    assert len(dm.splits["train"]) == 64 and len(dm.splits["test"]) == 64
    again = ImageDataModule(resolve("emo", ["preset=smoke", "data.image_size=40", "seed=5"]))
    again.setup()
    assert (again.splits["test"].tensors[1] == dm.splits["test"].tensors[1]).all()


def test_real_imagefolder_runs_end_to_end(bench_run, tmp_path: Path) -> None:
    root = imagefolder(tmp_path / "imagenet")
    code, record = bench_run(
        "emo",
        "preset=smoke",
        "method=emo_1m",
        "data.source=real",
        f"data.root={root}",
        "data.num_classes=2",
        "data.batch_size=2",
    )
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["config"]["data"]["source"] == "real"
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0


def test_real_imagefolder_with_other_class_count_is_refused(tmp_path: Path) -> None:
    root = imagefolder(tmp_path / "imagenet", classes=3)
    dm = ImageDataModule(resolve("emo", ["preset=smoke", "data.source=real", f"data.root={root}"]))
    with pytest.raises(BenchError, match="data.num_classes=3"):
        dm.setup()
