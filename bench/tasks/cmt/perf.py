"""``make perf`` figure of cmt: our nuScenes metric (NuScenesDetection) against nuscenes-devkit's
own evaluation (DetectionEval.evaluate on DetectionBox objects) on the same predictions, the size of
the cpu preset's test set (250 scenes, 100 boxes each): NDS equal to 1e-6, and the speed ratio."""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.config import resolve
from bench.tasks.cmt.devkit import devkit_metrics
from bench.tasks.cmt.metric import NuScenesDetection, attr_index, predicted_attribute

SCENES, PER_SCENE, REPEATS = 250, 100, 2


def fake_test_set(classes: list[str], seed: int = 0, scenes: int = SCENES) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of 3-10 boxes per scene and detections around it (noisy matches plus clutter),
    as rows (sample, label, attr, score, box 9)."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for s in range(scenes):
        n = int(rng.integers(3, 11))
        g = np.zeros((n, 13))
        g[:, 0], g[:, 1] = s, rng.integers(0, len(classes), n)
        g[:, 4:6], g[:, 6] = rng.uniform(-20, 20, (n, 2)), -1.0
        g[:, 7:10] = rng.uniform(0.6, 4.5, (n, 3))
        g[:, 10], g[:, 11:13] = rng.uniform(-np.pi, np.pi, n), rng.normal(0, 2, (n, 2))
        g[:, 2] = [
            attr_index(predicted_attribute(classes[int(c)], float(np.hypot(*v))))
            for c, v in zip(g[:, 1], g[:, 11:13], strict=True)
        ]
        p = np.zeros((PER_SCENE, 13))
        src = rng.integers(0, n, PER_SCENE)
        p[:] = g[src]
        p[:, 4:6] += rng.normal(0, 1.0, (PER_SCENE, 2)) * rng.choice([0.3, 5.0], (PER_SCENE, 1))
        p[:, 7:10] *= rng.uniform(0.8, 1.2, (PER_SCENE, 3))
        p[:, 10] += rng.normal(0, 0.3, PER_SCENE)
        p[:, 3] = rng.random(PER_SCENE)
        gts.append(g)
        preds.append(p)
    return np.concatenate(gts), np.concatenate(preds)


def ours(gt: np.ndarray, pred: np.ndarray, classes: list[str], cfg: dict) -> float:
    metric = NuScenesDetection(classes, cfg)
    for s in range(int(gt[:, 0].max()) + 1):
        g, p = torch.from_numpy(gt[gt[:, 0] == s]), torch.from_numpy(pred[pred[:, 0] == s])
        metric.update(
            [{"labels": p[:, 1], "attrs": p[:, 2], "scores": p[:, 3], "boxes": p[:, 4:]}],
            [{"labels": g[:, 1], "attrs": g[:, 2], "boxes": g[:, 4:]}],
        )
    return float(metric.compute()["nds"])


def best_time(fn, *args) -> tuple[float, float]:
    times, value = [], None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        value = fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times), value


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: five scenes (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    cfg = resolve("cmt", [])
    classes, ev = list(cfg["data"]["classes"]), cfg["eval"]
    scenes = 5 if tiny else SCENES
    gt, pred = fake_test_set(classes, scenes=scenes)
    t_ours, nds_ours = best_time(ours, gt, pred, classes, ev)
    t_dev, metrics = best_time(devkit_metrics, gt, pred, classes, ev)
    diff = abs(nds_ours - metrics.nd_score)
    assert diff <= 1e-6, f"NDS differs from nuscenes-devkit by {diff:.2e}"
    print(
        f"nuScenes metric on {scenes} scenes x {PER_SCENE} detections, {len(classes)} classes, "
        f"{torch.get_num_threads()} threads: NDS {nds_ours:.6f} vs devkit {metrics.nd_score:.6f} "
        f"(|diff| {diff:.1e}); ours {t_ours:.2f} s, devkit {t_dev:.2f} s, speed ratio {t_dev / t_ours:.1f}x"
    )


if __name__ == "__main__":
    main()
