"""The same evaluation through nuscenes-devkit's own code (the reference for tests and perf.py):
our rows become DetectionBox objects and DetectionEval.evaluate runs on them unchanged."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from bench.tasks.cmt.metric import ATTRIBUTES


def eval_boxes(rows: np.ndarray, classes: list[str], scored: bool):
    """Rows (sample, label, attr, score, box 9) as the devkit's EvalBoxes of DetectionBox."""
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.detection.data_classes import DetectionBox
    from pyquaternion import Quaternion

    boxes = EvalBoxes()
    by_sample: dict[str, list] = {}
    for r in rows:
        token = f"s{int(r[0])}"
        box = DetectionBox(
            sample_token=token,
            translation=tuple(float(x) for x in r[4:7]),
            size=tuple(float(x) for x in r[7:10]),
            rotation=tuple(Quaternion(axis=[0, 0, 1], angle=float(r[10])).elements),
            velocity=(float(r[11]), float(r[12])),
            detection_name=classes[int(r[1])],
            detection_score=float(r[3]) if scored else -1.0,
            attribute_name=ATTRIBUTES[int(r[2])] if r[2] >= 0 else "",
        )
        by_sample.setdefault(token, []).append(box)
    for token, items in by_sample.items():
        boxes.add_boxes(token, items)
    return boxes


def devkit_metrics(gt_rows: np.ndarray, pred_rows: np.ndarray, classes: list[str], cfg: dict):
    """nuscenes-devkit's DetectionMetrics (and metric data) for the same boxes and settings."""
    from nuscenes.eval.detection.constants import DETECTION_NAMES
    from nuscenes.eval.detection.data_classes import DetectionConfig
    from nuscenes.eval.detection.evaluate import DetectionEval

    config = DetectionConfig(
        class_range={c: 1e3 for c in DETECTION_NAMES},
        dist_fcn="center_distance",
        dist_ths=list(cfg["dist_ths"]),
        dist_th_tp=cfg["dist_th_tp"],
        min_recall=cfg["min_recall"],
        min_precision=cfg["min_precision"],
        max_boxes_per_sample=500,
        mean_ap_weight=cfg["mean_ap_weight"],
    )
    config.class_names = list(classes)  # the devkit evaluates these classes only (its loops read this)
    gt, pred = eval_boxes(gt_rows, classes, False), eval_boxes(pred_rows, classes, True)
    for token in gt.sample_tokens:  # every sample exists in both, as the devkit requires
        if token not in pred.boxes:
            pred.add_boxes(token, [])
    for token in pred.sample_tokens:
        if token not in gt.boxes:
            gt.add_boxes(token, [])
    state = SimpleNamespace(cfg=config, gt_boxes=gt, pred_boxes=pred, verbose=False)
    metrics, _ = DetectionEval.evaluate(state)
    return metrics
