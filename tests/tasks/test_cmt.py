"""cmt: the nuScenes metric against nuscenes-devkit, the nuScenes format on a hand-written fixture,
the synthetic scenes' geometry, CMT's box code, denoising queries and modality dropping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pyquaternion import Quaternion

from bench.artifacts import cached
from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.cmt.data import SceneDataModule
from bench.tasks.cmt.devkit import devkit_metrics
from bench.tasks.cmt.fixture import write_nuscenes
from bench.tasks.cmt.losses import DetectionLoss, denormalize_bbox, normalize_bbox
from bench.tasks.cmt.method import WARM, CMTMethod, drop
from bench.tasks.cmt.metric import SHORT, NuScenesDetection, arrays, evaluate
from bench.tasks.cmt.scenes import CLASSES as SCENE_CLASSES
from bench.tasks.cmt.scenes import cameras, parts, scene

EVAL = {
    "dist_ths": [0.5, 1.0, 2.0, 4.0],
    "dist_th_tp": 2.0,
    "min_recall": 0.1,
    "min_precision": 0.1,
    "mean_ap_weight": 5,
    "class_range": None,
}
CLASSES = ["car", "pedestrian", "barrier", "traffic_cone"]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))


def row(sample, label, attr, score, box):
    return [sample, label, attr, score, *box]


def random_rows(rng, samples: int, per: int, scored: bool) -> np.ndarray:
    out = []
    for s in range(samples):
        k = int(rng.integers(0, per))
        r = np.zeros((k, 13))
        r[:, 0], r[:, 1], r[:, 2] = s, rng.integers(0, len(CLASSES), k), rng.integers(-1, 8, k)
        r[:, 3] = rng.random(k).round(2) if scored else 0  # rounded: ties in score happen
        r[:, 4:7], r[:, 7:10] = rng.uniform(-10, 10, (k, 3)), rng.uniform(0.5, 3, (k, 3))
        r[:, 10], r[:, 11:13] = rng.uniform(-4, 4, k), rng.normal(0, 2, (k, 2))
        out.append(r)
    return np.concatenate(out)


def assert_matches_devkit(gt: np.ndarray, pred: np.ndarray, classes=CLASSES) -> dict:
    ours = evaluate(arrays(gt), arrays(pred), classes, EVAL)
    ref = devkit_metrics(gt, pred, classes, EVAL)
    assert ours["nds"] == pytest.approx(ref.nd_score, abs=1e-6)
    assert ours["map"] == pytest.approx(ref.mean_ap, abs=1e-6)
    for name, short in SHORT.items():
        assert ours[short] == pytest.approx(ref.tp_errors[name], abs=1e-6, nan_ok=True)
    for c in classes:
        assert ours[f"ap_{c}"] == pytest.approx(ref.mean_dist_aps[c], abs=1e-6)
    return ours


def test_hand_built_boxes_give_known_values_and_match_the_devkit() -> None:
    car = [0, 0, 0, 2, 4.5, 1.6, 0.3, 1.0, 0.0]
    gt = np.array([row(0, 0, 5, 0, car)])  # a moving car
    exact = np.array([row(0, 0, 5, 0.9, car)])
    out = assert_matches_devkit(gt, exact, ["car"])
    assert out["nds"] == pytest.approx(1.0) and out["map"] == pytest.approx(1.0)
    # 0.7 m off: a match at 1, 2 and 4 m but not at 0.5 m; size, yaw, velocity and attribute wrong
    off = [0.7, 0, 0, 2, 4.5, 3.2, 0.3 + np.pi / 2, 0.0, 0.0]
    out = assert_matches_devkit(gt, np.array([row(0, 0, 6, 0.9, off)]), ["car"])
    assert out["map"] == pytest.approx(0.75)
    assert out["ate"] == pytest.approx(0.7) and out["ase"] == pytest.approx(0.5)
    assert out["aoe"] == pytest.approx(np.pi / 2) and out["ave"] == pytest.approx(1.0)
    assert out["aae"] == pytest.approx(1.0)
    # a false positive of higher score first: precision runs 0 -> 0.5 linearly over recall 0 -> 1,
    # AP = mean over recall 0.11..1 of max(0, r / 2 - 0.1) / 0.9 = 0.2
    fp = np.array([row(1, 0, 5, 0.95, car), row(0, 0, 5, 0.9, car)])
    out = assert_matches_devkit(gt, fp, ["car"])
    assert out["map"] == pytest.approx(0.2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_boxes_match_the_devkit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = random_rows(rng, 30, 12, False)
    pred = gt.copy()
    pred[:, 3] = rng.random(len(pred)).round(2)
    pred[:, 4:6] += rng.normal(0, 1.0, (len(pred), 2))
    pred[:, 7:10] *= rng.uniform(0.8, 1.2, (len(pred), 3))
    pred[:, 10] += rng.normal(0, 0.5, len(pred))
    pred = np.concatenate([pred, random_rows(rng, 30, 8, True)])
    pred = pred[np.argsort(pred[:, 0], kind="stable")]
    assert_matches_devkit(gt, pred)


def test_metric_accumulates_batches_like_one_evaluation() -> None:
    rng = np.random.default_rng(5)
    gt, pred = random_rows(rng, 6, 6, False), random_rows(rng, 6, 6, True)

    def as_dicts(rows: np.ndarray, s: int) -> dict:
        r = torch.from_numpy(rows[rows[:, 0] == s])
        return {"labels": r[:, 1].long(), "attrs": r[:, 2].long(), "scores": r[:, 3], "boxes": r[:, 4:]}

    metric = NuScenesDetection(CLASSES, EVAL)
    for batch in ([0, 1, 2], [3, 4, 5]):
        metric.update([as_dicts(pred, s) for s in batch], [as_dicts(gt, s) for s in batch])
    got = metric.compute()
    want = evaluate(arrays(gt), arrays(pred), CLASSES, EVAL)
    assert got["nds"].item() == pytest.approx(want["nds"], abs=1e-9)


def test_class_range_drops_far_boxes_of_each_class_as_the_devkit_filter() -> None:
    rng = np.random.default_rng(7)
    gt, pred = random_rows(rng, 6, 6, False), random_rows(rng, 6, 6, True)
    ranges = {"car": 8.0, "pedestrian": 9.0}  # the other classes: no limit

    def as_dicts(rows: np.ndarray, s: int) -> dict:
        r = torch.from_numpy(rows[rows[:, 0] == s])
        return {"labels": r[:, 1].long(), "attrs": r[:, 2].long(), "scores": r[:, 3], "boxes": r[:, 4:]}

    def near(rows: np.ndarray) -> np.ndarray:
        limit = np.array([ranges.get(CLASSES[int(c)], np.inf) for c in rows[:, 1]])
        return rows[np.hypot(rows[:, 4], rows[:, 5]) < limit]

    metric = NuScenesDetection(CLASSES, {**EVAL, "class_range": ranges})
    metric.update([as_dicts(pred, s) for s in range(6)], [as_dicts(gt, s) for s in range(6)])
    got = metric.compute()
    want = evaluate(arrays(near(gt)), arrays(near(pred)), CLASSES, EVAL)
    assert len(near(gt)) < len(gt) and got["nds"].item() == pytest.approx(want["nds"], abs=1e-9)
    assert got["ap_car"].item() == pytest.approx(want["ap_car"], abs=1e-9)


def test_box_code_round_trips() -> None:
    boxes = torch.tensor([[1.0, -2.0, -1.0, 1.9, 4.5, 1.6, 0.4, 3.0, -1.0]])
    code = normalize_bbox(boxes)
    assert code[0, 2].item() == pytest.approx(np.log(1.9)) and code[0, 4].item() == -1.0
    assert torch.allclose(denormalize_bbox(code), boxes, atol=1e-6)


def test_denoising_groups_cannot_see_each_other() -> None:
    cfg = resolve("cmt", ["preset=smoke"])
    loss = DetectionLoss(cfg["loss"], [-20, -20, -3, 20, 20, 1], 4)
    targets = [
        {"boxes": torch.tensor([[1.0, 2, -1, 2, 4, 1.5, 0, 0, 0]] * 2), "labels": torch.tensor([0, 1])},
        {"boxes": torch.tensor([[5.0, 5, -1, 1, 1, 1.5, 0, 0, 0]]), "labels": torch.tensor([1])},
    ]
    ref, mask, labels, _ = loss.dn_queries(targets, 20, "cpu")
    groups = min(cfg["loss"]["dn_groups"], 20 // 2)
    pad = 2 * groups
    assert ref.shape == (2, pad, 3) and mask.shape == (pad + 20, pad + 20)
    assert mask[pad:, :pad].all() and not mask[pad:, pad:].any()  # matching queries see no dn query
    assert not mask[:2, :2].any() and mask[:2, 2:pad].all()  # group 0 sees itself only among dn
    assert (labels[1, 1::2] == -1).all()  # the second scene's padding slots carry no target


def test_dropping_a_modality_zeroes_only_that_input() -> None:
    batch = {
        "points": torch.tensor([[0.0, 1, 2, 3, 0], [1.0, 4, 5, 6, 0]]),
        "images": torch.ones(2, 3, 3, 4, 4),
    }
    out = drop(batch, lidar=torch.tensor([True, False]), camera=torch.tensor([False, True]))
    assert out["points"][0, 1:].abs().sum() == 0 and out["points"][1, 1:].tolist() == [4, 5, 6, 0]
    assert out["images"][0].min() == 1 and out["images"][1].max() == 0


def test_scenes_are_deterministic_and_consistent_across_sensors() -> None:
    cfg = resolve("cmt", [])["data"]
    a, b = scene(cfg, 3), scene(cfg, 3)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.images, b.images)
    assert len(a.boxes) >= cfg["objects"][0] - 1
    # LiDAR returns of the current sweep inside the nearest box lie on the surface of its parts
    # (a vehicle: body and cabin), not inside them
    near = int(np.argmin(np.linalg.norm(a.boxes[:, :2], axis=1)))
    box = a.boxes[near]
    pts = a.points[a.points[:, 3] == 0, :3]

    def local(b):
        c, s = np.cos(b[6]), np.sin(b[6])
        return (pts - b[:3]) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]), np.array([b[4], b[3], b[5]]) / 2

    pos, half = local(box)
    inside = (np.abs(pos) <= half + 0.1).all(1)
    assert inside.sum() > 0
    names = [list(SCENE_CLASSES)[k] for k in a.labels]
    solid, owner = parts(names, a.boxes)
    gap = np.full(len(pts), np.inf)  # distance to the nearest face of a part, for points within a part
    for b in solid[owner == near]:
        p, h = local(b)
        within = (np.abs(p) <= h + 0.1).all(1)
        gap[within] = np.minimum(gap[within], np.abs(np.abs(p[within]) - h).min(1))
    assert (gap[inside] < 0.1).mean() >= 0.9  # (uniform clutter points may fall inside)
    # a box centre projects onto a pixel of that box's colour in some camera (if not occluded)
    l2i = cameras(cfg)
    hits = 0
    for box in a.boxes:
        uvz = l2i @ np.array([*box[:3], 1.0])
        for cam, (u, v, z, _) in enumerate(uvz):
            if z > 0 and 0 <= u / z < cfg["image_size"][1] and 0 <= v / z < cfg["image_size"][0]:
                px = a.images[cam, :, int(v / z), int(u / z)]
                hits += not np.allclose(px, [0.4, 0.4, 0.4], atol=0.15)  # not ground
    assert hits >= len(a.boxes) // 2


# --- nuScenes format (paper preset) -----------------------------------------------------------
REAL = [
    "data.source=real",
    "data.version=v1.0-mini",
    "data.cameras=[CAM_FRONT]",
    "data.range=20.0",
    "data.classes=[car, pedestrian]",
    "data.image_size=[24, 64]",
]


def test_nuscenes_format_is_read_as_written(tmp_path: Path) -> None:
    write_nuscenes(tmp_path / "nus")
    dm = SceneDataModule(resolve("cmt", ["preset=smoke", *REAL, f"data.root={tmp_path / 'nus'}"]))
    dm.setup()
    assert len(dm.train_set) == 1 and len(dm.test_set) == 1
    item = dm.train_set[0]
    # the car in the LiDAR frame: lidar = Rz(-90deg) placed at (0.9, 0, 1.8) in the ego frame
    centre = Quaternion(axis=[0, 0, 1], angle=np.pi / 2).rotate(np.array([10.0 - 0.9, 2.0, 0.8 - 1.8]))
    box = item["boxes"][0].numpy()
    assert np.allclose(box[:3], centre, atol=1e-4) and np.allclose(box[3:6], [1.9, 4.5, 1.6])
    assert box[6] == pytest.approx(0.3 + np.pi / 2, abs=1e-5)
    assert item["labels"].tolist() == [0] and item["attrs"].tolist() == [5]  # car, vehicle.moving
    assert item["images"].shape == (1, 3, 24, 64) and item["points"].shape == (50, 4)
    # lidar2img maps the car centre where the front camera's intrinsics (scaled 64/160) put it
    uvz = item["lidar2img"][0].double().numpy() @ np.array([*box[:3], 1.0])
    x_cam, y_cam, z_cam = -2.0, 1.5 - 0.8, 10.0 - 1.7
    assert uvz[0] / uvz[2] == pytest.approx((80 * x_cam / z_cam + 80) * 64 / 160, abs=1e-3)
    assert uvz[1] / uvz[2] == pytest.approx((80 * y_cam / z_cam + 45) * 24 / 90, abs=1e-3)


def test_fusion_warm_starts_from_the_same_seeds_single_modality_models(bench_run, capsys) -> None:
    warm = ("preset=smoke", "optim.warm_steps=1", "trainer.max_steps=3")
    code, _ = bench_run("cmt", *warm, "method=cmt", "seed=5")
    assert code == 2 and "run cmt_lidar and cmt_camera first" in capsys.readouterr().err
    for method in ("cmt_lidar", "cmt_camera"):
        code, record = bench_run("cmt", *warm, f"method={method}", "seed=5")
        assert code == 0 and f"cmt/{method[4:]}_model" in record["artifacts"]
    code, record = bench_run("cmt", *warm, "method=cmt", "seed=5")
    assert code == 0 and {"cmt/lidar_model", "cmt/camera_model"} <= set(record["artifacts"])
    # the fusion model takes each branch's backbone and token encoding from the step-1 states;
    # decoder, heads and anchors start fresh
    cfg = resolve("cmt", [*warm, "method=cmt", "seed=5"])
    fusion = CMTMethod(cfg, lidar=True, camera=True, masked=True)
    fresh = {k: v.clone() for k, v in fusion.model.state_dict().items()}
    fusion.on_fit_start()
    state = fusion.model.state_dict()
    trained = {
        m: torch.load(cached("cmt", f"{m}_model", fusion.single_config(m), None) / "model.pt")
        for m in ("lidar", "camera")
    }
    for key, value in state.items():
        source = "lidar" if key.startswith(("bev_backbone.", "bev_embedding.")) else None
        source = "camera" if key.startswith(("img_backbone.", "rv_embedding.")) else source
        assert torch.equal(value, trained[source][key] if source else fresh[key]), key
    assert not torch.equal(state["layers.0.ffn.0.weight"], trained["lidar"]["layers.0.ffn.0.weight"])
    # the stored states are trained ones (step 1), not the initial weights
    lidar = CMTMethod(resolve("cmt", [*warm, "method=cmt_lidar", "seed=5"]), lidar=True, camera=False)
    key = "bev_backbone.0.0.weight"
    assert not torch.equal(trained["lidar"][key], lidar.model.state_dict()[key])
    assert fusion.steps == 2 and lidar.steps == 3


@pytest.mark.parametrize("modality", ["lidar", "camera"])
def test_single_modality_models_restart_as_fusion_starts(bench_run, monkeypatch, modality: str) -> None:
    # at warm_steps a single-modality model stores its state, keeps its backbone and token
    # encoding and starts its decoder, heads, anchors, optimizer state and one-cycle schedule
    # fresh, as a fusion run does; the no-restart control stores the same state and trains on
    seen = {}
    restart = CMTMethod.restart

    def spy(self) -> None:
        seen["before"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        seen["step"] = self.global_step
        seen["stored"] = torch.load(
            cached("cmt", f"{modality}_model", self.single_config(modality), None) / "model.pt"
        )
        restart(self)
        opt = self.trainer.optimizers[0]
        seen["after"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        seen["adam_state"], seen["lr"] = len(opt.state), opt.param_groups[0]["lr"]
        seen["beta1"] = opt.param_groups[0]["betas"][0]
        seen["cycle"] = self.trainer.lr_scheduler_configs[0].scheduler.total_steps

    monkeypatch.setattr(CMTMethod, "restart", spy)
    warm = ("preset=smoke", "optim.warm_steps=2", "trainer.max_steps=22", "seed=8")
    code, record = bench_run("cmt", *warm, f"method=cmt_{modality}")
    assert code == 0 and record["cost"]["train_steps"] == 22
    assert seen["step"] == 2 and seen["adam_state"] == 0 and seen["cycle"] == 20
    o = resolve("cmt", [*warm, f"method=cmt_{modality}"])["optim"]
    assert seen["lr"] == pytest.approx(o["lr"] / o["div_factor"])
    assert seen["beta1"] == pytest.approx(o["momentum"][1])
    assert all(torch.equal(seen["stored"][k], v) for k, v in seen["before"].items())
    for key, value in seen["after"].items():
        if key.startswith(WARM[modality]):
            assert torch.equal(value, seen["before"][key]), key
    for key in ("layers.0.ffn.0.weight", "reference_points.weight"):
        assert not torch.equal(seen["after"][key], seen["before"][key]), key
    seen.clear()
    code, record = bench_run("cmt", *warm, "seed=9", f"method=cmt_{modality}_norestart")
    assert code == 0 and record["cost"]["train_steps"] == 22 and not seen
    assert f"cmt/{modality}_model" in record["artifacts"]


def test_each_model_trains_its_share_of_the_steps(bench_run) -> None:
    warm = ("preset=smoke", "optim.warm_steps=2", "trainer.max_steps=5", "seed=6")
    for method, steps in (("cmt_lidar", 5), ("cmt_camera", 5), ("cmt", 3)):
        code, record = bench_run("cmt", *warm, f"method={method}")
        assert code == 0 and record["cost"]["train_steps"] == steps, method
    code, _ = bench_run("cmt", "preset=smoke", "optim.warm_steps=3", "trainer.max_steps=3", "method=cmt")
    assert code == 2


def test_nuscenes_format_runs_end_to_end(bench_run, tmp_path: Path) -> None:
    write_nuscenes(tmp_path / "nus")
    code, record = bench_run(
        "cmt",
        "preset=smoke",
        "method=cmt",
        *REAL,
        f"data.root={tmp_path / 'nus'}",
        "data.batch_size=1",
        "data.sweeps=1",
    )
    assert code == 0 and record["status"] == "ok", record["error"]
    assert 0.0 <= record["metrics"]["test/nds"] <= 1.0 and "test/nds_no_lidar" in record["metrics"]


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no nuScenes tables"):
        SceneDataModule(resolve("cmt", ["preset=smoke", *REAL, f"data.root={tmp_path}"])).setup()
    with pytest.raises(BenchError, match="data.root"):
        SceneDataModule(resolve("cmt", ["preset=smoke", *REAL, "data.root=null"])).setup()
    with pytest.raises(BenchError, match="synthetic scenes have the classes"):
        SceneDataModule(resolve("cmt", ["preset=smoke", "data.classes=[truck]"])).setup()
