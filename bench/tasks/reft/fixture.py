"""reft's paper-preset fixture: COCO 2014 in its published layout with TFA's few-shot split files
(cocosplit/), four categories of which two are novel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from bench.tasks.reft.scenes import tfa_kshot

CATS = [
    {"id": 1, "name": "person"},
    {"id": 3, "name": "car"},
    {"id": 17, "name": "cat"},
    {"id": 67, "name": "dining table"},
]


def _coco(folder: Path, sub: str, ids: range, rng) -> dict:
    """Images 40 x 56 (JPEG, as COCO's) with 1-2 polygon instances each."""
    (folder / "coco" / sub).mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for iid in ids:
        name = f"COCO_{sub}_{iid:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / "coco" / sub / name)
        images.append({"id": iid, "file_name": name, "height": 40, "width": 56})
        for j in range(1 + iid % 2):
            x, y = 4 + 20 * j, 6
            poly = [x, y, x + 14, y, x + 14, y + 20, x, y + 20]
            cat = CATS[(iid + j) % len(CATS)]["id"]
            anns.append(
                {
                    "id": iid * 10 + j,
                    "image_id": iid,
                    "category_id": cat,
                    "segmentation": [poly],
                    "bbox": [x, y, 14, 20],
                    "area": 280.0,
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": anns, "categories": CATS}


def write_coco(root: Path) -> Path:
    """COCO 2014 with TFA's splits in TFA's layout, two novel classes (one name with a space)."""
    rng = np.random.default_rng(0)
    split = root / "cocosplit" / "datasplit"
    split.mkdir(parents=True)
    train = _coco(root, "trainval2014", range(1, 25), rng)
    (split / "trainvalno5k.json").write_text(json.dumps(train))
    (split / "5k.json").write_text(json.dumps(_coco(root, "val2014", range(100, 106), rng)))
    for (k, name), coco in tfa_kshot(train, [10], 0).items():
        (root / "cocosplit" / f"full_box_{k}shot_{name}_trainval.json").write_text(json.dumps(coco))
    return root


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    write_coco(root)
    # the shrunk shots are smoke's [10]: the figure shows a phase that runs
    return [f"data.root={root}", "data.novel=[cat,dining table]", "figure.phase=gfsis_k10"]
