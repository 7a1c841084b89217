"""Deterministic synthetic driving scenes: 3-D boxes of a few nuScenes classes on a ground plane, a
spinning LiDAR (two sweeps, points only on the faces a beam reaches first, plus clutter) and pinhole
cameras rendering the same world with occlusion, calibrated like nuScenes (lidar2img = K @ lidar2cam).

Each modality carries something the other lacks, as on nuScenes: bicycles and motorcycles share one
shape and differ only in colour (the camera tells them apart, LiDAR cannot); cars and pedestrians
have overlapping colours (the camera tells them by shape as much as by colour); unlabelled clutter
(bushes, poles) has object-like shapes but its own colour; the camera has no depth, LiDAR is sparse
at range.
Vehicles are two boxes (a low body and a taller cabin or rider set back from the front), so their
heading is visible to both sensors, not only up to a half turn. Frames: x forward, y left, z up, the
LiDAR at the origin, the ground at -lidar_height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# class: (w, l, h) in metres, mean RGB colour (each object's is jittered by data.colour_jitter),
# max speed (m/s), P(parked). Cars and pedestrians are 0.2 apart in colour, so with the cpu
# preset's jitter colour separates them only in part; the cycles are far apart.
CLASSES = {
    "car": ((1.9, 4.5, 1.6), (0.75, 0.3, 0.25), 8.0, 0.4),
    "pedestrian": ((0.7, 0.7, 1.8), (0.65, 0.45, 0.35), 1.5, 0.4),
    "bicycle": ((0.7, 1.9, 1.3), (0.15, 0.7, 0.2), 5.0, 0.4),
    "motorcycle": ((0.7, 1.9, 1.3), (0.2, 0.3, 0.9), 6.0, 0.4),
}
# class: parts as fractions of the box (offset along the length from the centre, length, height);
# each part spans the full width and stands on the ground. A car: body over the whole length at
# 55% of the height, cabin set back; a (motor)cycle: frame at 60%, rider behind the middle.
PARTS = {
    "car": ((0.0, 1.0, 0.55), (-0.15, 0.5, 1.0)),
    "pedestrian": ((0.0, 1.0, 1.0),),
    "bicycle": ((0.0, 1.0, 0.6), (-0.2, 0.3, 1.0)),
    "motorcycle": ((0.0, 1.0, 0.6), (-0.2, 0.3, 1.0)),
}
CLUTTER = (((0.4, 1.4), (0.4, 1.4), (0.8, 2.0)), (0.35, 0.45, 0.3))  # size ranges (w, l, h), colour
SKY, GROUND = np.array([0.6, 0.75, 0.9]), np.array([0.4, 0.4, 0.4])


@dataclass
class Scene:
    """One frame: ``boxes`` (n, 9) = x, y, z (centre), w, l, h, yaw, vx, vy; ``labels`` (n,) class
    indices; ``attrs`` (n,) nuScenes attribute names; ``points`` (m, 4) = x, y, z, time lag (s);
    ``images`` (cams, 3, H, W) in [0, 1]; ``lidar2img`` (cams, 4, 4)."""

    boxes: np.ndarray
    labels: np.ndarray
    attrs: list[str]
    points: np.ndarray
    images: np.ndarray
    lidar2img: np.ndarray


def attribute(name: str, speed: float, parked: bool) -> str:
    """The nuScenes attribute of a box: moving/stopped/parked, with/without rider, moving/standing."""
    moving = speed > 0.2
    if name == "car":
        return "vehicle.moving" if moving else ("vehicle.parked" if parked else "vehicle.stopped")
    if name == "pedestrian":
        return "pedestrian.moving" if moving else "pedestrian.standing"
    return "cycle.with_rider" if moving else "cycle.without_rider"


def cameras(cfg: dict) -> np.ndarray:
    """lidar2img (cams, 4, 4) of ``cams`` pinhole cameras evenly spaced in yaw, each covering
    ``fov`` degrees horizontally, mounted ``cam_height`` above the LiDAR."""
    n, h, w = cfg["cams"], *cfg["image_size"]
    f = (w / 2) / np.tan(np.radians(cfg["fov"]) / 2)
    k = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    mats = []
    for i in range(n):
        yaw = 2 * np.pi * i / n
        fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        rot = np.stack([right, down, fwd])  # rows: camera x (right), y (down), z (forward)
        cam = np.eye(4)
        cam[:3, :3] = rot
        cam[:3, 3] = -rot @ np.array([0.0, 0.0, cfg["cam_height"]])
        mats.append(k @ cam)
    return np.stack(mats)


def raycast(origins: np.ndarray, dirs: np.ndarray, boxes: np.ndarray, ground: float):
    """First hit of each ray among oriented boxes (n, 7: centre, w, l, h, yaw) and the ground plane:
    (depth along the ray, index of the box hit or -1 ground or -2 nothing, face normal's axis)."""
    r = len(dirs)
    origins, dirs, boxes = (a.astype(np.float32) for a in (origins, dirs, boxes))
    t_best = np.full(r, np.inf)
    hit = np.full(r, -2)
    axis = np.zeros(r, dtype=int)
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = (ground - origins[:, 2]) / dirs[:, 2]
    ok = tg > 0
    t_best[ok], hit[ok] = tg[ok], -1
    if len(boxes):
        c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
        zero, one = np.zeros_like(c), np.ones_like(c)
        # world -> box frame (x along the length), one matrix per box: (n, 3, 3)
        rot = np.stack(
            [np.stack([c, s, zero], -1), np.stack([-s, c, zero], -1), np.stack([zero, zero, one], -1)], 1
        )
        rot_t = rot.transpose(0, 2, 1)
        o = (origins[None] - boxes[:, None, :3]) @ rot_t
        d = dirs[None] @ rot_t
        d = np.where(np.abs(d) < 1e-9, 1e-9, d)  # rays parallel to a face: no division by zero
        half = boxes[:, None, [4, 3, 5]] / 2
        inv = 1.0 / d
        t1, t2 = (-half - o) * inv, (half - o) * inv
        tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
        near, far = tmin.max(2), tmax.min(2)
        near = np.where((near <= far) & (near > 0), near, np.inf)
        first = near.argmin(0)
        t_box = near[first, np.arange(r)]
        better = t_box < t_best
        t_best[better], hit[better] = t_box[better], first[better]
        axis[better] = tmin[first[better], np.flatnonzero(better)].argmax(1)
    return t_best, hit, axis


def parts(names: list[str], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The solid parts (m, 7: centre, w, l, h, yaw) of labelled boxes (n, >= 7) of classes ``names``,
    and the index of each part's box."""
    out, owner = [], []
    for i, (name, b) in enumerate(zip(names, boxes, strict=True)):
        x, y, z, w, ln, h, yaw = b[:7]
        bottom = z - h / 2
        for off, fl, fh in PARTS[name]:
            cx, cy = x + off * ln * np.cos(yaw), y + off * ln * np.sin(yaw)
            out.append([cx, cy, bottom + fh * h / 2, w, fl * ln, fh * h, yaw])
            owner.append(i)
    return np.array(out, dtype=np.float64).reshape(-1, 7), np.array(owner, dtype=int)


def lidar_sweep(cfg: dict, boxes: np.ndarray, names: list[str], clutter: np.ndarray, rng, lag: float):
    """Points of one sweep, objects moved back by ``lag`` seconds along their velocity."""
    moved = boxes.copy()
    moved[:, :2] -= lag * boxes[:, 7:9]
    world = np.concatenate([parts(names, moved)[0], clutter])
    az = np.linspace(-np.pi, np.pi, cfg["lidar_azimuths"], endpoint=False) + rng.uniform(0, 0.01)
    el = np.radians(np.linspace(*cfg["lidar_elevation"], cfg["lidar_beams"]))
    a, e = np.meshgrid(az, el)
    dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    t, hit, _ = raycast(np.zeros_like(dirs), dirs, world, -cfg["lidar_height"])
    keep = (hit > -2) & (t < cfg["lidar_range"])
    # beams returning from far away are lost more often (sparse at range)
    keep &= rng.random(len(t)) > cfg["lidar_dropout"] * np.clip(t / cfg["lidar_range"], 0, 1)
    keep &= rng.random(len(t)) < cfg["lidar_keep"]  # point dropout: a random share of the returns
    t = t[keep] + rng.normal(0, cfg["lidar_noise"], keep.sum())
    pts = dirs[keep] * t[:, None]
    return np.concatenate([pts, np.full((len(pts), 1), lag)], 1)


def render(cfg: dict, lidar2img: np.ndarray, world: np.ndarray, colours: np.ndarray, rng) -> np.ndarray:
    """Images (cams, 3, H, W): the colour of the first surface each pixel's ray hits, shaded by face."""
    h, w = cfg["image_size"]
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    pix = np.stack([u.ravel(), v.ravel(), np.ones(h * w), np.ones(h * w)], 1)
    shade = np.array([1.0, 0.75, 0.9])  # faces normal to the box's length, width, height axes
    images = []
    for m in lidar2img:
        inv = np.linalg.inv(m)
        origin = inv @ np.array([0.0, 0.0, 0.0, 1.0])  # camera centre (depth 0)
        far = (pix @ inv.T)[:, :3]  # pixel at depth 1
        dirs = far - origin[:3]
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        origins = np.broadcast_to(origin[:3], dirs.shape)
        t, hit, axis = raycast(origins, dirs, world, -cfg["lidar_height"])
        img = np.where(
            (hit == -2)[:, None],
            SKY,
            GROUND * (1 + 0.15 * np.sin(0.8 * np.where(np.isfinite(t), t, 0)))[:, None],
        )
        obj = hit >= 0
        img[obj] = colours[hit[obj]] * shade[axis[obj]][:, None]
        img = img + rng.normal(0, cfg["image_noise"], img.shape)
        images.append(np.clip(img, 0, 1).T.reshape(3, h, w))
    return np.stack(images).astype(np.float32)


def place(cfg: dict, rng: np.random.Generator, radius: float, placed: list) -> np.ndarray | None:
    """A random BEV position inside the range, away from the ego and from the earlier objects
    ``placed`` ((position, radius) pairs, extended by this one), or None when none is found."""
    lim = cfg["range"] - 1.5
    for _ in range(50):
        p = rng.uniform(-lim, lim, 2)
        if np.linalg.norm(p) < cfg["min_dist"]:
            continue
        if all(np.linalg.norm(p - q) > r + radius + 0.3 for q, r in placed):
            placed.append((p, radius))
            return p
    return None


def scene(cfg: dict, index: int) -> Scene:
    """Scene number ``index`` of the generator seeded by ``cfg['seed']`` (deterministic)."""
    rng = np.random.default_rng([cfg["seed"], index])
    names = list(CLASSES)
    ground = -cfg["lidar_height"]
    boxes, labels, attrs, colours, placed, names_in = [], [], [], [], [], []
    for _ in range(rng.integers(cfg["objects"][0], cfg["objects"][1] + 1)):
        k = rng.choice(len(names), p=cfg["class_probs"])
        size, colour, vmax, p_parked = CLASSES[names[k]]
        w, ln, h = np.array(size) * rng.uniform(1 - cfg["size_jitter"], 1 + cfg["size_jitter"], 3)
        p = place(cfg, rng, np.hypot(w, ln) / 2, placed)
        if p is None:
            continue
        yaw = rng.uniform(-np.pi, np.pi)
        parked = rng.random() < p_parked
        speed = 0.0 if parked else rng.uniform(0.5, vmax)
        boxes.append([*p, ground + h / 2, w, ln, h, yaw, speed * np.cos(yaw), speed * np.sin(yaw)])
        labels.append(k)
        attrs.append(attribute(names[k], speed, parked))
        colours.append(np.clip(np.array(colour) + rng.normal(0, cfg["colour_jitter"], 3), 0, 1))
        names_in.append(names[k])
    clutter, clutter_colours = [], []
    (wr, lr, hr), colour = CLUTTER
    for _ in range(rng.integers(cfg["clutter"][0], cfg["clutter"][1] + 1)):
        w, ln, h = rng.uniform(*wr), rng.uniform(*lr), rng.uniform(*hr)
        p = place(cfg, rng, np.hypot(w, ln) / 2, placed)
        if p is None:
            continue
        clutter.append([*p, ground + h / 2, w, ln, h, rng.uniform(-np.pi, np.pi)])
        clutter_colours.append(np.clip(np.array(colour) + rng.normal(0, cfg["colour_jitter"], 3), 0, 1))
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 9)
    clutter = np.array(clutter, dtype=np.float64).reshape(-1, 7)
    sweeps = [
        lidar_sweep(cfg, boxes, names_in, clutter, rng, i * cfg["sweep_lag"]) for i in range(cfg["sweeps"])
    ]
    noise = rng.uniform(-1, 1, (cfg["noise_points"], 4)) * [cfg["range"], cfg["range"], 1.0, 0.0]
    noise[:, 2] += ground + 1.0
    points = np.concatenate([*sweeps, noise]).astype(np.float32)
    l2i = cameras(cfg)
    solid, owner = parts(names_in, boxes)
    world = np.concatenate([solid, clutter])
    cols = np.concatenate([np.array(colours).reshape(-1, 3)[owner], np.array(clutter_colours).reshape(-1, 3)])
    images = render(cfg, l2i, world, cols, rng)
    return Scene(boxes.astype(np.float32), np.array(labels, dtype=np.int64), attrs, points, images, l2i)
