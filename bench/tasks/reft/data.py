"""COCO instances with TFA's few-shot splits, read from one layout (see ``scenes.py``): the
synthetic scenes written into the cache (``data.source=synthetic``) or real COCO under
``data.root`` (``data.source=real``). Classes are indexed base first, then novel."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch.utils.data import DataLoader, Dataset

from bench import artifacts
from bench.errors import BenchError
from bench.tasks.reft.scenes import write_synthetic

SYNTHETIC_KEYS = (
    "canvas",
    "objects",
    "item_size",
    "mask_threshold",
    "min_area",
    "novel_items",
    "train_images",
    "test_images",
    "scene_seed",
    "kshot_seeds",
    "shots_written",
)
IMAGE_DIRS = ("coco/trainval2014", "coco/val2014", "coco/train2014")


def ann_mask(seg, h: int, w: int) -> np.ndarray:
    """A COCO segmentation (polygons, RLE or uncompressed RLE) as a bool [h, w] mask."""
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(bool)


class Instances(Dataset):
    """Images of a COCO dict resized (longer side ``size``) and zero-padded to ``size`` x ``size``;
    each item is ``{"image": float [3, S, S], "labels": long [n], "masks": bool [n, S, S],
    "iscrowd": long [n]}`` with labels the contiguous class index."""

    def __init__(self, coco: dict, folder: Path, index: dict[int, int], d: dict, flip: bool) -> None:
        self.images = [im for im in coco["images"]]
        self.anns: dict[int, list[dict]] = {}
        for a in coco["annotations"]:
            if a["category_id"] in index:
                self.anns.setdefault(a["image_id"], []).append(a)
        self.folder, self.index, self.size, self.flip = folder, index, d["size"], flip
        self.lsj = d["lsj"] if flip else None  # training sets only, as the flip
        self.mean = torch.tensor(d["mean"]).view(3, 1, 1)
        self.std = torch.tensor(d["std"]).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def _path(self, name: str) -> Path:
        for sub in IMAGE_DIRS:
            if (p := self.folder / sub / name).exists():
                return p
        raise BenchError(f"image {name} not found under {self.folder}/{{{','.join(IMAGE_DIRS)}}}")

    def __getitem__(self, i: int) -> dict:
        im = self.images[i]
        h, w, s = im["height"], im["width"], self.size
        scale = s / max(h, w)
        y0 = x0 = 0
        if self.lsj:  # mmdet's large-scale jittering: RandomResize(ratio_range), then RandomCrop
            lo, hi = self.lsj
            scale *= lo + (hi - lo) * float(torch.rand(()))
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        if self.lsj:
            y0, x0 = (int(torch.randint(n - s + 1, ())) if n > s else 0 for n in (nh, nw))
        ch, cw = min(nh - y0, s), min(nw - x0, s)
        pil = Image.open(self._path(im["file_name"])).convert("RGB").resize((nw, nh), Image.BILINEAR)
        pixels = torch.from_numpy(np.asarray(pil, np.float32) / 255).permute(2, 0, 1)
        image = torch.zeros(3, s, s)
        image[:, :ch, :cw] = pixels[:, y0 : y0 + ch, x0 : x0 + cw]
        anns = self.anns.get(im["id"], [])
        masks = torch.zeros(len(anns), s, s, dtype=torch.bool)
        for j, a in enumerate(anns):
            m = Image.fromarray(ann_mask(a["segmentation"], h, w)).resize((nw, nh), Image.NEAREST)
            masks[j, :ch, :cw] = torch.from_numpy(np.array(m))[y0 : y0 + ch, x0 : x0 + cw]
        if self.flip and torch.rand(()) < 0.5:
            image, masks = image.flip(-1), masks.flip(-1)
        keep = masks.flatten(1).any(1)
        return {
            "image": (image - self.mean) / self.std,
            "labels": torch.tensor([self.index[a["category_id"]] for a in anns], dtype=torch.long)[keep],
            "masks": masks[keep],
            "iscrowd": torch.tensor([a.get("iscrowd", 0) for a in anns], dtype=torch.long)[keep],
        }


def collate(items: list[dict]) -> tuple[torch.Tensor, list[dict]]:
    return torch.stack([it.pop("image") for it in items]), items


class FewShotCocoDataModule(L.LightningDataModule):
    """Base training set (base annotations only), TFA K-shot sets per (K, seed, classes), and the
    test set (every class annotated). Training draws its own episodes from these sets (see
    ``base.py``); the test loader serves the test set."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.d, self.batch = cfg["data"], cfg["data"]["test_batch_size"]
        self.folder: Path | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.folder is not None:
            return
        d = self.d
        if d["source"] == "synthetic":
            sub = {k: d[k] for k in SYNTHETIC_KEYS}
            self.folder = artifacts.cached("reft", "scenes", sub, lambda f: write_synthetic(f, sub))
        elif d["source"] == "real":
            if not d["root"]:
                raise BenchError(
                    "data.root is not set: point it (or BENCH_DATA) at COCO with TFA's cocosplit/"
                )
            self.folder = Path(d["root"])
        else:
            raise BenchError(f"data.source must be synthetic or real, got {d['source']!r}")
        train, test = (self._json(f"cocosplit/datasplit/{n}.json") for n in ("trainvalno5k", "5k"))
        names = {c["name"]: c["id"] for c in train["categories"]}
        if missing := [n for n in d["novel"] if n not in names]:
            raise BenchError(f"data.novel names {missing} are not categories of trainvalno5k.json")
        novel = [names[n] for n in d["novel"]]
        base = [c["id"] for c in train["categories"] if c["name"] not in d["novel"]]
        self.class_names = [n for i in base + novel for n, j in names.items() if j == i]
        self.num_base, self.num_classes = len(base), len(base) + len(novel)
        self.index = {cid: i for i, cid in enumerate(base + novel)}
        self.base_index = {cid: self.index[cid] for cid in base}
        self.base_train = Instances(train, self.folder, self.base_index, d, flip=True)
        self.base_train.images = [im for im in train["images"] if im["id"] in self.base_train.anns]
        if d["eval_split"] == "heldout":
            test = self._heldout(train)
        elif d["eval_split"] != "test":
            raise BenchError(f"data.eval_split must be test or heldout, got {d['eval_split']!r}")
        test["images"] = sorted(test["images"], key=lambda im: im["id"])[: d["test_limit"]]
        self.test = Instances(test, self.folder, self.index, d, flip=False)

    def _heldout(self, train: dict) -> dict:
        """The training images in no K-shot file (of any seed and K), every class annotated: the
        split the fine-tuning lr and steps are chosen on, so that the test images choose nothing.
        Base training saw these images, with base annotations only."""
        shots: set[int] = set()
        for path in sorted(self.folder.glob("cocosplit/**/full_box_*shot_*_trainval.json")):
            shots |= {im["id"] for im in json.loads(path.read_text())["images"]}
        return train | {"images": [im for im in train["images"] if im["id"] not in shots]}

    def _json(self, rel: str) -> dict:
        path = self.folder / rel
        if not path.exists():
            raise BenchError(
                f"{path} not found: expected COCO with TFA's splits (cocosplit/datasplit, K-shot files)"
            )
        try:
            coco = json.loads(path.read_text())
            _ = coco["images"], coco["annotations"], coco["categories"]
        except (ValueError, KeyError, TypeError) as e:
            raise BenchError(f"{path} is not a COCO instances JSON ({e!r})") from None
        return coco

    def kshot(self, k: int, seed: int, novel_only: bool) -> Instances:
        """TFA's K-shot set of seed ``seed`` for the novel classes (or every class), merged."""
        sub = "cocosplit" if seed == 0 else f"cocosplit/seed{seed}"
        wanted = self.class_names[self.num_base :] if novel_only else self.class_names
        images, anns, seen = {}, [], set()
        for name in wanted:
            rel = f"{sub}/full_box_{k}shot_{name}_trainval.json"
            if not (self.folder / rel).exists():
                raise BenchError(
                    f"{self.folder / rel} not found: no {k}-shot split of seed {seed} "
                    "(synthetic data: see data.kshot_seeds and data.shots_written)"
                )
            coco = self._json(rel)
            images |= {im["id"]: im for im in coco["images"]}
            anns += [a for a in coco["annotations"] if a["id"] not in seen]
            seen |= {a["id"] for a in coco["annotations"]}
        index = {cid: i for cid, i in self.index.items() if not novel_only or i >= self.num_base}
        coco = {"images": list(images.values()), "annotations": anns}
        return Instances(coco, self.folder, index, self.d, flip=True)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=self.batch, collate_fn=collate)
