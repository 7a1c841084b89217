"""nuScenes through nuscenes-devkit (the paper preset): key frames of the split's scenes, LiDAR
sweeps aggregated in the key frame's LiDAR frame, the preset's cameras resized with their
lidar2img matrices, and the annotations as detection boxes in the LiDAR frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.errors import BenchError
from bench.tasks.cmt.metric import attr_index

SPLITS = {"v1.0-mini": ("mini_train", "mini_val"), "v1.0-trainval": ("train", "val")}


def open_nuscenes(d: dict):
    """The NuScenes tables of ``data.version`` under ``data.root``, or one clear error."""
    from nuscenes.nuscenes import NuScenes

    root = d["root"]
    if not root:
        raise BenchError("data.source=real needs data.root (or BENCH_DATA): the nuScenes folder")
    tables = Path(root) / d["version"]
    if not (tables / "sample.json").exists():
        raise BenchError(
            f"no nuScenes tables at {tables}: download nuScenes ({d['version']}) from nuscenes.org "
            "and point data.root at the folder holding it"
        )
    if d["version"] not in SPLITS:
        raise BenchError(f"data.version must be one of {', '.join(SPLITS)}, got {d['version']!r}")
    try:
        return NuScenes(version=d["version"], dataroot=str(root), verbose=False)
    except (KeyError, AssertionError, ValueError) as e:
        raise BenchError(f"{tables} is not a readable nuScenes release: {type(e).__name__}: {e}") from None


class NuScenesScenes(Dataset):
    """Key frames of one split, read lazily (the paper's data does not fit in memory)."""

    def __init__(self, d: dict, classes: list[str], split: str) -> None:
        from nuscenes.utils.splits import create_splits_scenes

        self.d, self.classes = d, classes
        self.nusc = open_nuscenes(d)
        names = set(create_splits_scenes()[SPLITS[d["version"]][split == "val"]])
        scenes = {s["token"] for s in self.nusc.scene if s["name"] in names}
        self.samples = [s["token"] for s in self.nusc.sample if s["scene_token"] in scenes]
        if not self.samples:
            raise BenchError(
                f"no {split} samples in {d['root']}/{d['version']} (scene names of the official split)"
            )
        r, (z0, z1) = d["range"], d["z_range"]
        self.pc_range = np.array([-r, -r, z0, r, r, z1])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        from nuscenes.utils.data_classes import LidarPointCloud

        nusc, d = self.nusc, self.d
        sample = nusc.get("sample", self.samples[i])
        pc, times = LidarPointCloud.from_file_multisweep(
            nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=d["sweeps"]
        )
        points = np.concatenate([pc.points[:3].T, times.T], 1).astype(np.float32)
        lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        images, l2i = zip(*(self.camera(lidar_sd, sample["data"][c]) for c in d["cameras"]), strict=True)
        boxes, labels, attrs = self.annotations(lidar_sd)
        return {
            "points": torch.from_numpy(points).half(),
            "images": torch.from_numpy(np.stack(images)),
            "lidar2img": torch.from_numpy(np.stack(l2i)).float(),
            "boxes": torch.from_numpy(boxes).float(),
            "labels": torch.from_numpy(labels).long(),
            "attrs": torch.from_numpy(attrs).long(),
        }

    def _sensor_to_global(self, sd: dict) -> np.ndarray:
        from nuscenes.utils.geometry_utils import transform_matrix
        from pyquaternion import Quaternion

        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        pose = self.nusc.get("ego_pose", sd["ego_pose_token"])
        car = transform_matrix(cs["translation"], Quaternion(cs["rotation"]))
        world = transform_matrix(pose["translation"], Quaternion(pose["rotation"]))
        return world @ car

    def camera(self, lidar_sd: dict, token: str) -> tuple[np.ndarray, np.ndarray]:
        """The camera's image resized to ``data.image_size`` (uint8, 3 x H x W) and its lidar2img."""
        from PIL import Image

        sd = self.nusc.get("sample_data", token)
        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        h, w = self.d["image_size"]
        img = Image.open(Path(self.nusc.dataroot) / sd["filename"]).convert("RGB")
        sx, sy = w / img.width, h / img.height
        k = np.eye(4)
        k[:3, :3] = np.diag([sx, sy, 1.0]) @ np.array(cs["camera_intrinsic"])
        lidar2cam = np.linalg.inv(self._sensor_to_global(sd)) @ self._sensor_to_global(lidar_sd)
        pixels = np.asarray(img.resize((w, h), Image.BILINEAR)).transpose(2, 0, 1)
        return np.ascontiguousarray(pixels), k @ lidar2cam

    def annotations(self, lidar_sd: dict):
        """Boxes (x, y, z, w, l, h, yaw, vx, vy) in the LiDAR frame of the preset's classes, inside
        the range and seen by at least one LiDAR or radar point (as the devkit's evaluation keeps)."""
        from nuscenes.eval.detection.utils import category_to_detection_name
        from pyquaternion import Quaternion

        nusc = self.nusc
        _, boxes, _ = nusc.get_sample_data(lidar_sd["token"])
        to_lidar = np.linalg.inv(self._sensor_to_global(lidar_sd))[:3, :3]
        rows, labels, attrs = [], [], []
        for box in boxes:
            ann = nusc.get("sample_annotation", box.token)
            name = category_to_detection_name(ann["category_name"])
            if name not in self.classes or ann["num_lidar_pts"] + ann["num_radar_pts"] == 0:
                continue
            if not ((box.center >= self.pc_range[:3]) & (box.center <= self.pc_range[3:])).all():
                continue
            vel = to_lidar @ nusc.box_velocity(box.token)
            yaw = Quaternion(box.orientation).yaw_pitch_roll[0]
            rows.append([*box.center, *box.wlh, yaw, vel[0], vel[1]])
            labels.append(self.classes.index(name))
            names = [nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]]
            attrs.append(attr_index(names[0]) if names else -1)
        return (
            np.array(rows, dtype=np.float32).reshape(-1, 9),
            np.array(labels, dtype=np.int64),
            np.array(attrs, dtype=np.int64),
        )
