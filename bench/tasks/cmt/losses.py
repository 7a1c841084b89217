"""CMT's training targets and losses: the nuScenes box code, Hungarian matching (focal class cost +
code-weighted L1), focal + L1 losses on every decoder layer, query denoising (noised ground-truth
anchors in groups that cannot see each other), and decoding to scored boxes.

scipy's linear_sum_assignment and torchvision's sigmoid_focal_loss stand in for mmdet's
HungarianAssigner and FocalLoss: mmdet imports mmcv's compiled ops, which a CPU run must not need.
"""

from __future__ import annotations

import math

import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import sigmoid_focal_loss


def normalize_bbox(boxes: torch.Tensor) -> torch.Tensor:
    """(n, 9: x, y, z, w, l, h, yaw, vx, vy) -> the box code (cx, cy, log w, log l, cz, log h,
    sin, cos, vx, vy)."""
    x, y, z, w, length, h, yaw, vx, vy = boxes.unbind(-1)
    return torch.stack([x, y, w.log(), length.log(), z, h.log(), yaw.sin(), yaw.cos(), vx, vy], -1)


def denormalize_bbox(code: torch.Tensor) -> torch.Tensor:
    cx, cy, lw, ll, cz, lh, s, c, vx, vy = code.unbind(-1)
    return torch.stack([cx, cy, cz, lw.exp(), ll.exp(), lh.exp(), torch.atan2(s, c), vx, vy], -1)


def focal_cost(logits: torch.Tensor, labels: torch.Tensor, alpha=0.25, gamma=2.0, eps=1e-12):
    """mmdet's FocalLossCost: (Q, n) cost of assigning each query to each target's class."""
    p = logits.sigmoid()
    neg = -(1 - p + eps).log() * (1 - alpha) * p.pow(gamma)
    pos = -(p + eps).log() * alpha * (1 - p).pow(gamma)
    return (pos - neg)[:, labels]


class DetectionLoss:
    """Matching, per-layer losses and denoising queries with the paper's weights (``loss`` = the
    preset's ``loss`` section)."""

    def __init__(self, loss: dict, pc_range: list[float], num_classes: int) -> None:
        self.l, self.pc_range, self.num_classes = loss, pc_range, num_classes
        self.code_weights = torch.tensor(loss["code_weights"])

    @torch.no_grad()
    def match(self, code, logits, gt_code, gt_labels):
        if len(gt_labels) == 0:
            return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
        w = self.code_weights[:8].to(code)
        cost = self.l["match_cls"] * focal_cost(logits, gt_labels) + self.l["match_l1"] * torch.cdist(
            code[:, :8] * w, gt_code[:, :8] * w, p=1
        )
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)

    def layer_loss(self, code, logits, targets):
        """Focal + L1 of one decoder layer's (B, Q, ...) outputs after Hungarian matching."""
        labels = torch.full(logits.shape[:2], self.num_classes, dtype=torch.long, device=logits.device)
        pred, tgt = [], []
        for b, t in enumerate(targets):
            gt_code = normalize_bbox(t["boxes"])
            rows, cols = self.match(code[b], logits[b], gt_code, t["labels"])
            labels[b, rows] = t["labels"][cols]
            pred.append(code[b, rows])
            tgt.append(gt_code[cols])
        pos = sum(len(t["labels"]) for t in targets)
        neg = labels.numel() - pos
        cls = self.focal(logits, labels) / max(pos + 0.1 * neg, 1.0)
        box = self.l1(torch.cat(pred), torch.cat(tgt)) / max(pos, 1)
        return cls, box

    def focal(self, logits, labels):
        onehot = torch.nn.functional.one_hot(labels, self.num_classes + 1)[..., :-1].to(logits)
        return sigmoid_focal_loss(logits, onehot, alpha=0.25, gamma=2.0, reduction="sum")

    def l1(self, pred, tgt):
        keep = torch.isfinite(tgt).all(-1)
        return ((pred[keep] - tgt[keep]).abs() * self.code_weights.to(pred)).sum()

    def dn_queries(self, targets, queries: int, device):
        """Denoising anchors (CmtHead.prepare_for_dn): ``groups`` noised copies of each scene's
        ground-truth centres (uniform noise up to half the box size per axis); a copy whose noise
        norm exceeds ``split`` is labelled no-object. Returns the anchors (B, pad, 3), the
        attention mask over [dn | matching] queries, and the targets of each dn query."""
        counts = [len(t["labels"]) for t in targets]
        single = max(counts)
        if single == 0 or self.l["dn_groups"] == 0:
            return None
        groups = min(self.l["dn_groups"], queries // single)
        lo = torch.tensor(self.pc_range[:3], device=device)
        hi = torch.tensor(self.pc_range[3:], device=device)
        pad = single * groups
        ref = torch.zeros(len(targets), pad, 3, device=device)
        labels = torch.full((len(targets), pad), -1, dtype=torch.long, device=device)
        boxes = torch.zeros(len(targets), pad, 9, device=device)
        for b, t in enumerate(targets):
            n = counts[b]
            if n == 0:
                continue
            box = t["boxes"].repeat(groups, 1)
            noise = torch.rand(groups * n, 3, device=device) * 2 - 1
            center = box[:, :3] + noise * box[:, 3:6] / 2 * self.l["dn_noise_scale"]
            lab = t["labels"].repeat(groups).clone()
            lab[noise.norm(dim=1) > self.l["dn_split"]] = self.num_classes
            idx = (
                torch.arange(n, device=device)[None] + single * torch.arange(groups, device=device)[:, None]
            ).flatten()
            ref[b, idx] = ((center - lo) / (hi - lo)).clamp(0, 1)
            labels[b, idx], boxes[b, idx] = lab, box
        size = pad + queries
        mask = torch.zeros(size, size, dtype=torch.bool, device=device)
        mask[pad:, :pad] = True  # matching queries cannot see the denoising ones
        for g in range(groups):  # denoising groups cannot see each other
            s, e = single * g, single * (g + 1)
            mask[s:e, :s] = True
            mask[s:e, e:pad] = True
        return ref, mask, labels, boxes

    def dn_loss(self, code, logits, labels, boxes):
        """Focal + L1 of the denoising queries (padding slots, label -1, excluded)."""
        real = labels >= 0
        n = int(real.sum())
        if n == 0:
            return code.sum() * 0, code.sum() * 0
        cls = self.focal(logits[real], labels[real]) / max(n * math.pi / 6 * self.l["dn_split"] ** 3, 1.0)
        box = self.l1(code[real], normalize_bbox(boxes[real])) / n
        return cls, box

    def __call__(self, outs, targets, dn=None):
        """The total loss over every decoder layer (and its denoising part) and its parts."""
        parts = {"cls": 0.0, "box": 0.0, "dn_cls": 0.0, "dn_box": 0.0}
        for code, logits in outs:
            if dn is not None:
                pad = dn[0].shape[1]
                dc, db = self.dn_loss(code[:, :pad], logits[:, :pad], dn[2], dn[3])
                parts["dn_cls"] = parts["dn_cls"] + dc
                parts["dn_box"] = parts["dn_box"] + db
                code, logits = code[:, pad:], logits[:, pad:]
            c, b = self.layer_loss(code, logits, targets)
            parts["cls"] = parts["cls"] + c
            parts["box"] = parts["box"] + b
        total = self.l["cls_weight"] * (parts["cls"] + self.l["dn_weight"] * parts["dn_cls"]) + self.l[
            "bbox_weight"
        ] * (parts["box"] + self.l["dn_weight"] * parts["dn_box"])
        return total, parts


def decode(code: torch.Tensor, logits: torch.Tensor, max_num: int) -> list[dict]:
    """The last layer's (B, Q, ...) outputs as the top ``max_num`` (query, class) pairs by sigmoid
    score per sample (MultiTaskBBoxCoder; no NMS): boxes (n, 9), scores, labels."""
    out = []
    c = logits.shape[-1]
    for b in range(code.shape[0]):
        scores, idx = logits[b].sigmoid().flatten().topk(min(max_num, logits[b].numel()))
        out.append({"boxes": denormalize_bbox(code[b, idx // c]), "scores": scores, "labels": idx % c})
    return out
