"""The cmt DataModule: synthetic scenes (cached once per generator config, shared by every method
and seed) or nuScenes read by nuscenes-devkit from ``data.root``; batches of points with their
batch index, camera images, lidar2img matrices and the ground-truth boxes."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.artifacts import cached
from bench.errors import BenchError
from bench.tasks.cmt.metric import attr_index
from bench.tasks.cmt.scenes import CLASSES, scene

TEST_OFFSET = 10**6  # test scenes are drawn from their own index range


def pack(s, classes: list[str]) -> dict:
    """A scene as the tensors a batch holds (images as uint8, points as float16 to keep it small)."""
    return {
        "points": torch.from_numpy(s.points).half(),
        "images": torch.from_numpy(np.round(s.images * 255).astype(np.uint8)),
        "lidar2img": torch.from_numpy(s.lidar2img).float(),
        "boxes": torch.from_numpy(s.boxes).float(),
        "labels": torch.from_numpy(s.labels).long(),
        "attrs": torch.tensor([attr_index(a) for a in s.attrs], dtype=torch.long),
    }


def synthetic(d: dict, split: str) -> list[dict]:
    """The split's scenes, generated once per generator config and cached (``cmt/scenes``)."""
    count = d["train_scenes"] if split == "train" else d["test_scenes"]
    gen = {
        k: v
        for k, v in d.items()
        # keys the generator reads (not the loader's or the BEV grid's)
        if k not in ("source", "root", "batch_size", "version", "cameras", "workers", "grid", "z_range")
    }

    def build(folder: Path) -> None:
        offset = 0 if split == "train" else TEST_OFFSET
        scenes = [pack(scene(gen, offset + i), list(CLASSES)) for i in range(count)]
        torch.save(scenes, folder / "scenes.pt")

    # version 3: overlapping car/pedestrian colours (2: random ones; two-part vehicles, point dropout)
    folder = cached("cmt", f"scenes_{split}", {**gen, "split": split, "count": count}, build, version=3)
    return torch.load(folder / "scenes.pt", weights_only=True)


class Scenes(Dataset):
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def collate(items: list[dict]) -> dict:
    """Points concatenated with a leading batch-index column (N, 5); images (B, N, 3, H, W) in
    [0, 1]; lidar2img (B, N, 4, 4); per-sample targets."""
    points = torch.cat(
        [
            torch.cat([torch.full((len(it["points"]), 1), float(b)), it["points"].float()], 1)
            for b, it in enumerate(items)
        ]
    )
    return {
        "points": points,
        "images": torch.stack([it["images"] for it in items]).float() / 255,
        "lidar2img": torch.stack([it["lidar2img"] for it in items]),
        "targets": [{k: it[k] for k in ("boxes", "labels", "attrs")} for it in items],
    }


class SceneDataModule(L.LightningDataModule):
    """``data.source=synthetic`` (the cpu default) or ``real`` (nuScenes under ``data.root``). The
    training order is drawn from a generator of the run's seed alone, so every method sees the same
    batches on one seed, whatever its initialisation drew."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.d = cfg["data"]
        self.order = torch.Generator().manual_seed(cfg["seed"])
        self.classes = list(cfg["data"]["classes"])
        self.train_set = self.test_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        d = self.d
        if d["source"] == "synthetic":
            unknown = set(self.classes) - set(CLASSES)
            if unknown or self.classes != list(CLASSES)[: len(self.classes)]:
                raise BenchError(f"synthetic scenes have the classes {list(CLASSES)}; got {self.classes}")
            if len(d["class_probs"]) != len(CLASSES) or abs(sum(d["class_probs"]) - 1) > 1e-6:
                raise BenchError(f"data.class_probs must be {len(CLASSES)} probabilities summing to 1")
            self.train_set, self.test_set = Scenes(synthetic(d, "train")), Scenes(synthetic(d, "test"))
        elif d["source"] == "real":
            from bench.tasks.cmt.nuscenes_data import NuScenesScenes

            self.train_set = NuScenesScenes(d, self.classes, "train")
            self.test_set = NuScenesScenes(d, self.classes, "val")
        else:
            raise BenchError(f"data.source must be synthetic or real, got {d['source']!r}")

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.d["batch_size"],
            shuffle=True,
            generator=self.order,
            collate_fn=collate,
            drop_last=True,
            num_workers=self.d["workers"],
        )

    def test_dataloader(self) -> DataLoader:
        return DataLoader(
            self.test_set, batch_size=self.d["batch_size"], collate_fn=collate, num_workers=self.d["workers"]
        )
