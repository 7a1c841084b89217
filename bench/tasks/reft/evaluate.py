"""COCO AP restricted to novel (nAP) and base (bAP) classes, and the page figure.

COCOeval averages precision over categories (each evaluated on its own, maxDets per image and
category), so AP over a class subset is the mean of the per-class APs over that subset's classes
that have ground truth (-1 marks a class without any)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import masks_to_boxes


def new_metric() -> MeanAveragePrecision:
    return MeanAveragePrecision(iou_type=("bbox", "segm"), class_metrics=True, backend="pycocotools")


def targets_for_map(targets: list[dict]) -> list[dict]:
    """The loader's targets as torchmetrics wants them (boxes xyxy from the masks)."""
    return [
        {
            "boxes": masks_to_boxes(t["masks"]),
            "labels": t["labels"],
            "masks": t["masks"],
            "iscrowd": t["iscrowd"],
        }
        for t in targets
    ]


def split_ap(result: dict, num_base: int, num_classes: int) -> dict[str, float]:
    """``{nap,bap}_{segm,bbox}`` in COCO points (x100); NaN when a split has no annotated class."""
    out = {}
    classes = result["classes"].reshape(-1).tolist()
    for kind in ("segm", "bbox"):
        per = result[f"{kind}_map_per_class"].reshape(-1).tolist()
        for name, lo, hi in (("nap", num_base, num_classes), ("bap", 0, num_base)):
            vals = [ap for c, ap in zip(classes, per, strict=True) if lo <= c < hi and ap >= 0]
            out[f"{name}_{kind}"] = 100 * sum(vals) / len(vals) if vals else float("nan")
    return out


def draw(path: Path, images: torch.Tensor, preds: list[dict], names: list[str], d: dict, thr: float) -> None:
    """Test images with the predicted masks (score > ``thr``) overlaid and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean, std = torch.tensor(d["mean"]).view(3, 1, 1), torch.tensor(d["std"]).view(3, 1, 1)
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.5), squeeze=False)
    colours = plt.get_cmap("tab20")
    for ax, img, p in zip(axes[0], images, preds, strict=True):
        rgb = (img * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(rgb)
        for j, (m, lab, s) in enumerate(zip(p["masks"], p["labels"], p["scores"], strict=True)):
            if s < thr:
                continue
            colour = colours(j % 20)
            overlay = torch.zeros(*m.shape, 4)
            overlay[m] = torch.tensor(colour[:3] + (0.5,), dtype=overlay.dtype)
            ax.imshow(overlay.numpy())
            ys, xs = m.nonzero(as_tuple=True)
            ax.text(
                float(xs.min()),
                float(ys.min()),
                f"{names[lab]} {s:.2f}",
                fontsize=5,
                color=colour,
                va="bottom",
            )
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
