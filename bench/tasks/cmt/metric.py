"""The nuScenes detection metric (mAP over centre-distance thresholds, TP errors, NDS) as a
torchmetrics Metric, computed exactly as nuscenes-devkit's ``accumulate`` / ``calc_ap`` /
``calc_tp`` / ``DetectionMetrics`` do (tests check it against them to 1e-6), on arrays instead of
per-box Python objects. Hand-written because the devkit is the reference and is far slower (see
perf.py); mmdet3d's NuScenesMetric only wraps the devkit through JSON files.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

# nuscenes.eval.detection.constants.ATTRIBUTE_NAMES, in order; -1 = no attribute ('').
ATTRIBUTES = (
    "pedestrian.moving",
    "pedestrian.sitting_lying_down",
    "pedestrian.standing",
    "cycle.with_rider",
    "cycle.without_rider",
    "vehicle.moving",
    "vehicle.parked",
    "vehicle.stopped",
)
TP_METRICS = ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err")
SHORT = {"trans_err": "ate", "scale_err": "ase", "orient_err": "aoe", "vel_err": "ave", "attr_err": "aae"}
NELEM = 101  # recall sampling points, as DetectionMetricData.nelem


def attr_index(name: str) -> int:
    return ATTRIBUTES.index(name) if name else -1


def predicted_attribute(name: str, speed: float) -> str:
    """The attribute a detector without an attribute head reports, from its velocity: mmdet3d's
    rule for nuScenes (moving above 0.2 m/s, else the class's default)."""
    default = {
        "car": "vehicle.parked",
        "truck": "vehicle.parked",
        "construction_vehicle": "vehicle.parked",
        "trailer": "vehicle.parked",
        "bus": "vehicle.moving",
        "pedestrian": "pedestrian.moving",
        "motorcycle": "cycle.without_rider",
        "bicycle": "cycle.without_rider",
    }.get(name, "")
    vehicles = ("car", "construction_vehicle", "bus", "truck", "trailer")
    if speed > 0.2:
        if name in vehicles:
            return "vehicle.moving"
        return "cycle.with_rider" if name in ("bicycle", "motorcycle") else default
    if name == "pedestrian":
        return "pedestrian.standing"
    return "vehicle.stopped" if name == "bus" else default


def cummean(x: np.ndarray) -> np.ndarray:
    """Cumulative mean ignoring NaNs (all NaN: ones), as nuscenes.eval.common.utils.cummean."""
    if np.isnan(x).all():
        return np.ones(len(x))
    total, count = np.nancumsum(x.astype(float)), np.cumsum(~np.isnan(x))
    return np.divide(total, count, out=np.zeros_like(total), where=count != 0)


def no_predictions() -> dict:
    zeros, ones = np.zeros(NELEM), np.ones(NELEM)
    return {"precision": zeros, "confidence": zeros, **{k: ones for k in TP_METRICS}}


def candidates(gt: dict, pred: dict) -> tuple[np.ndarray, list]:
    """The global score order of one class's predictions (nuscenes sorts (score, index) pairs and
    reverses, so ties go to the later prediction) and, per sample holding both, its predictions in
    that order, its ground truths and their centre distances as nested lists (computed once for
    every threshold)."""
    n = len(pred["sample"])
    order = np.lexsort((np.arange(n), pred["score"]))[::-1]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    groups = []
    for s in np.intersect1d(np.unique(pred["sample"]), np.unique(gt["sample"])):
        p = np.flatnonzero(pred["sample"] == s)
        p = p[np.argsort(rank[p])]
        g = np.flatnonzero(gt["sample"] == s)
        diff = pred["xy"][p, None, :] - gt["xy"][None, g, :]
        groups.append((rank[p].tolist(), p.tolist(), g.tolist(), np.sqrt((diff * diff).sum(-1)).tolist()))
    return order, groups


def accumulate(gt: dict, pred: dict, dist_th: float, period: float, cand: tuple | None = None) -> dict:
    """Greedy matching of one class's predictions (by descending score) to the nearest unmatched
    ground-truth centre of the same sample within ``dist_th``; precision, confidence and cumulative
    TP errors resampled at 101 recall points. ``gt``/``pred``: arrays of one class (sample, xy,
    size, yaw, vel, attr; pred also score). Samples are independent, so each is matched on its own
    in the global order (nuscenes-devkit loops over every prediction and ground truth in Python)."""
    npos = len(gt["sample"])
    if npos == 0:
        return no_predictions()
    order, groups = cand if cand is not None else candidates(gt, pred)
    n = len(order)
    tp = np.zeros(n)
    matches = []  # (rank, prediction, ground truth)
    for ranks, preds, gts, dists in groups:
        free = [True] * len(gts)
        for r, i, row in zip(ranks, preds, dists, strict=True):
            best, j = np.inf, -1
            for k, d in enumerate(row):
                if free[k] and d < best:
                    best, j = d, k
            if best < dist_th:
                free[j] = False
                tp[r] = 1
                matches.append((r, i, gts[j]))
    matches.sort()
    matched_pred = [m[1] for m in matches]
    matched_gt = [m[2] for m in matches]
    if not matched_pred:
        return no_predictions()
    p, g = np.array(matched_pred), np.array(matched_gt)
    d = pred["xy"][p] - gt["xy"][g]
    v = pred["vel"][p] - gt["vel"][g]
    lo = np.minimum(gt["size"][g], pred["size"][p])
    inter = lo.prod(1)
    iou = inter / (gt["size"][g].prod(1) + pred["size"][p].prod(1) - inter)
    yaw = (gt["yaw"][g] - pred["yaw"][p] + period / 2) % period - period / 2
    yaw = np.where(yaw > np.pi, yaw - 2 * np.pi, yaw)
    gt_attr = gt["attr"][g]
    attr = np.where(gt_attr < 0, np.nan, (gt_attr == pred["attr"][p]).astype(float))
    errors = {
        "trans_err": np.sqrt((d * d).sum(1)),
        "vel_err": np.sqrt((v * v).sum(1)),
        "scale_err": 1 - iou,
        "orient_err": np.abs(yaw),
        "attr_err": 1 - attr,
    }
    match_conf = pred["score"][p]
    conf = pred["score"][order]
    tps, fps = np.cumsum(tp), np.cumsum(1 - tp)
    rec_interp = np.linspace(0, 1, NELEM)
    rec = tps / float(npos)
    out = {
        "precision": np.interp(rec_interp, rec, tps / (fps + tps), right=0),
        "confidence": np.interp(rec_interp, rec, conf, right=0),
    }
    for key, err in errors.items():
        out[key] = np.interp(out["confidence"][::-1], match_conf[::-1], cummean(err)[::-1])[::-1]
    return out


def calc_ap(md: dict, min_recall: float, min_precision: float) -> float:
    prec = md["precision"][round(100 * min_recall) + 1 :] - min_precision
    prec[prec < 0] = 0
    return float(np.mean(prec)) / (1.0 - min_precision)


def calc_tp(md: dict, min_recall: float, metric: str) -> float:
    first = round(100 * min_recall) + 1
    nonzero = np.nonzero(md["confidence"])[0]
    last = nonzero[-1] if len(nonzero) else 0
    return 1.0 if last < first else float(np.mean(md[metric][first : last + 1]))


def evaluate(gt: dict, pred: dict, classes: list[str], cfg: dict) -> dict:
    """NDS, mAP, APs per threshold and TP errors over ``classes`` from flat numpy arrays (``label``
    indexes ``classes``), with the devkit's rules for cones (no attribute, velocity, orientation)
    and barriers (no attribute, velocity; orientation modulo pi)."""
    aps, tps = {}, {}
    for c, name in enumerate(classes):
        g = {k: v[gt["label"] == c] for k, v in gt.items()}
        p = {k: v[pred["label"] == c] for k, v in pred.items()}
        period = np.pi if name == "barrier" else 2 * np.pi
        cand = candidates(g, p)
        mds = {th: accumulate(g, p, th, period, cand) for th in cfg["dist_ths"]}
        aps[name] = {th: calc_ap(md, cfg["min_recall"], cfg["min_precision"]) for th, md in mds.items()}
        md = (
            mds[cfg["dist_th_tp"]]
            if cfg["dist_th_tp"] in mds
            else accumulate(g, p, cfg["dist_th_tp"], period)
        )
        tps[name] = {}
        for m in TP_METRICS:
            skip = (name == "traffic_cone" and m in ("attr_err", "vel_err", "orient_err")) or (
                name == "barrier" and m in ("attr_err", "vel_err")
            )
            tps[name][m] = np.nan if skip else calc_tp(md, cfg["min_recall"], m)
    mean_ap = float(np.mean([np.mean(list(a.values())) for a in aps.values()]))
    errors = {m: float(np.nanmean([tps[n][m] for n in classes])) for m in TP_METRICS}
    scores = [max(0.0, 1.0 - e) for e in errors.values()]
    w = cfg["mean_ap_weight"]
    out = {"nds": (w * mean_ap + float(np.sum(scores))) / (w + len(scores)), "map": mean_ap}
    out.update({SHORT[m]: e for m, e in errors.items()})
    for th in cfg["dist_ths"]:
        out[f"ap_{th:g}m"] = float(np.mean([aps[n][th] for n in classes]))
    out.update({f"ap_{n}": float(np.mean(list(aps[n].values()))) for n in classes})
    return out


class NuScenesDetection(Metric):
    """nuScenes detection metric over a test set. ``update(preds, targets)`` takes per-sample dicts:
    preds ``boxes`` (n, 9: x, y, z, w, l, h, yaw, vx, vy), ``scores``, ``labels``, ``attrs``
    (indices into ATTRIBUTES, -1 none); targets the same without scores. ``compute()`` returns
    nds, map, ate, ase, aoe, ave, aae, ap_<th>m and ap_<class>. With ``class_range`` (class: metres)
    it keeps, as the devkit's ``filter_eval_boxes``, only the boxes of each class whose centre lies
    closer than its range (xy distance from the sensor origin; the devkit's from the ego's)."""

    full_state_update = False

    def __init__(self, classes: list[str], cfg: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classes, self.cfg = list(classes), cfg
        self.add_state("pred", default=[], dist_reduce_fx="cat")
        self.add_state("gt", default=[], dist_reduce_fx="cat")
        self.add_state("samples", default=torch.tensor(0.0), dist_reduce_fx="sum")
        ranges = cfg["class_range"] or {}
        self.ranges = torch.tensor([float(ranges.get(c, "inf")) for c in self.classes], dtype=torch.float64)

    def update(self, preds: list[dict], targets: list[dict]) -> None:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        for p, t in zip(preds, targets, strict=True):
            sample = float(rank * 1e7 + len(self.pred))  # unique per sample across ranks
            self.pred.append(self._rows(p, sample, scored=True))
            self.gt.append(self._rows(t, sample, scored=False))
            self.samples += 1

    def _rows(self, d: dict, sample: float, scored: bool) -> torch.Tensor:
        n = len(d["labels"])
        cols = [
            torch.full((n, 1), sample, dtype=torch.float64),
            d["labels"].reshape(n, 1).double(),
            d["attrs"].reshape(n, 1).double(),
            (d["scores"] if scored else torch.zeros(n)).reshape(n, 1).double(),
            d["boxes"].reshape(n, 9).double(),
        ]
        out = torch.cat([c.to(self.device) for c in cols], 1)
        near = out[:, 4:6].norm(dim=1) < self.ranges.to(out.device)[out[:, 1].long()]
        return out[near]

    def compute(self) -> dict[str, torch.Tensor]:
        gt, pred = (rows(x) for x in (self.gt, self.pred))
        out = evaluate(arrays(gt), arrays(pred), self.classes, self.cfg)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


def rows(state: list | torch.Tensor) -> np.ndarray:
    """A list state (or its synced concatenation) as one float64 array of rows."""
    if isinstance(state, list):
        return torch.cat(state).cpu().numpy() if state else np.zeros((0, 13))
    return state.cpu().numpy()


def arrays(rows: np.ndarray) -> dict:
    """Rows (sample, label, attr, score, box 9) as the named arrays ``evaluate`` reads."""
    return {
        "sample": rows[:, 0].astype(np.int64),
        "label": rows[:, 1].astype(np.int64),
        "attr": rows[:, 2].astype(np.int64),
        "score": rows[:, 3],
        "xy": rows[:, 4:6],
        "size": rows[:, 7:10],
        "yaw": rows[:, 10],
        "vel": rows[:, 11:13],
    }
