"""The offline data: Fashion-MNIST items pasted on small canvases as instances, written in the
exact layout of COCO with TFA's few-shot splits (what the paper preset reads), so one reader
serves both. 15 classes: the 10 items upright (base) and 5 items turned 90 degrees (novel).

``<folder>/cocosplit/datasplit/{trainvalno5k,5k}.json``: all instances annotated (RLE masks);
``<folder>/cocosplit[/seed<s>]/full_box_<K>shot_<name>_trainval.json``: TFA's K-shot files (K
instances of one class, only that class annotated); ``<folder>/coco/{trainval2014,val2014}/``: PNGs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from bench.datasets import fashion_mnist

ITEMS = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def categories(novel_items: list[int]) -> list[dict]:
    """COCO categories: ids 1-10 the upright items (base), then ``rot_<item>`` (novel)."""
    names = list(ITEMS) + [f"rot_{ITEMS[i]}" for i in novel_items]
    return [{"id": i + 1, "name": n, "supercategory": "fashion"} for i, n in enumerate(names)]


def _scene(rng, pools, cats, d) -> tuple[np.ndarray, list[dict]]:
    """One canvas and its instances; later items occlude earlier ones (their masks shrink)."""
    s = d["canvas"]
    level = rng.uniform(0.0, 0.25)
    img = np.clip(level + rng.normal(0, 0.04, (s, s, 3)), 0, 1)
    masks, labels = [], []
    for _ in range(rng.integers(d["objects"][0], d["objects"][1] + 1)):
        c = int(rng.integers(len(cats)))
        item = pools[c][rng.integers(len(pools[c]))]
        size = int(rng.integers(d["item_size"][0], d["item_size"][1] + 1))
        alpha = np.asarray(Image.fromarray(item).resize((size, size), Image.BILINEAR), np.float32) / 255
        y, x = rng.integers(0, s - size + 1, 2)
        m = np.zeros((s, s), bool)
        m[y : y + size, x : x + size] = alpha > d["mask_threshold"]
        if m.sum() < d["min_area"]:
            continue
        colour = rng.uniform(0.45, 1.0, 3)
        patch = img[y : y + size, x : x + size]
        a = alpha[..., None]
        img[y : y + size, x : x + size] = a * colour + (1 - a) * patch
        masks = [old & ~m for old in masks]
        masks.append(m)
        labels.append(cats[c]["id"])
    anns = []
    for m, cid in zip(masks, labels, strict=True):
        if m.sum() < d["min_area"]:
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        rle["counts"] = rle["counts"].decode()
        anns.append({"category_id": cid, "segmentation": rle, "bbox": [x, y, w, h], "area": float(m.sum())})
    return (img * 255).astype(np.uint8), anns


def _write_split(folder: Path, sub: str, name: str, n: int, rng, pools, cats, d, id0: int) -> dict:
    images, anns = [], []
    (folder / "coco" / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, objs = _scene(rng, pools, cats, d)
        iid = id0 + i
        fname = f"{name}_{iid:07d}.png"
        Image.fromarray(img).save(folder / "coco" / sub / fname)
        images.append({"id": iid, "file_name": fname, "height": img.shape[0], "width": img.shape[1]})
        for o in objs:
            anns.append({"id": len(anns) + id0 * 10 + 1, "image_id": iid, "iscrowd": 0, **o})
    return {"images": images, "annotations": anns, "categories": cats}


def tfa_kshot(coco: dict, shots: list[int], seed: int) -> dict[tuple[int, str], dict]:
    """TFA's sampling: per class, images containing it are drawn in a random order and kept while
    the class's instance count stays <= K, until it reaches K; only that class is annotated."""
    rng = np.random.default_rng(seed)
    by_img: dict[int, dict[int, list[dict]]] = {}
    for a in coco["annotations"]:
        by_img.setdefault(a["category_id"], {}).setdefault(a["image_id"], []).append(a)
    images = {im["id"]: im for im in coco["images"]}
    out = {}
    for cat in coco["categories"]:
        holders = by_img.get(cat["id"], {})
        order = rng.permutation(sorted(holders))
        for k in shots:
            chosen, count = [], 0
            for iid in order:
                if count + len(holders[iid]) <= k:
                    chosen.append(int(iid))
                    count += len(holders[iid])
                if count == k:
                    break
            out[(k, cat["name"])] = {
                "images": [images[i] for i in chosen],
                "annotations": [a for i in chosen for a in holders[i]],
                "categories": coco["categories"],
            }
    return out


def write_synthetic(folder: Path, d: dict) -> None:
    """Write the whole synthetic dataset for data config ``d`` into ``folder``."""
    cats = categories(d["novel_items"])
    rng = np.random.default_rng(d["scene_seed"])
    split = {}
    for fm_split, sub, name, n, id0 in (
        ("train", "trainval2014", "trainvalno5k", d["train_images"], 1),
        ("test", "val2014", "5k", d["test_images"], 10_000_000),
    ):
        x, y = fashion_mnist.load(fm_split)
        pools = [x[y == i] for i in range(len(ITEMS))]
        pools += [np.rot90(x[y == i], 1, axes=(1, 2)).copy() for i in d["novel_items"]]
        split[name] = _write_split(folder, sub, name, n, rng, pools, cats, d, id0)
    out = folder / "cocosplit"
    (out / "datasplit").mkdir(parents=True, exist_ok=True)
    for name, coco in split.items():
        (out / "datasplit" / f"{name}.json").write_text(json.dumps(coco))
    for seed in range(d["kshot_seeds"]):
        sub = out if seed == 0 else out / f"seed{seed}"
        sub.mkdir(exist_ok=True)
        for (k, cname), coco in tfa_kshot(split["trainvalno5k"], d["shots_written"], seed).items():
            (sub / f"full_box_{k}shot_{cname}_trainval.json").write_text(json.dumps(coco))
