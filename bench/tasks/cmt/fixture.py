"""cmt's paper-preset fixture: a two-scene nuScenes release in the published layout (the tables
nuscenes-devkit reads, LiDAR sweeps and front-camera JPEGs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from pyquaternion import Quaternion


def write_nuscenes(root: Path) -> dict:
    """A two-scene v1.0-mini release with every table nuscenes-devkit reads, one LiDAR sweep and one
    front camera per key frame, and one car per scene (global frame = ego frame = identity pose)."""
    from PIL import Image

    tables: dict[str, list] = {
        k: []
        for k in (
            "category",
            "attribute",
            "visibility",
            "instance",
            "sensor",
            "calibrated_sensor",
            "ego_pose",
            "log",
            "scene",
            "sample",
            "sample_data",
            "sample_annotation",
            "map",
        )
    }
    tables["category"] = [{"token": "cat_car", "name": "vehicle.car", "description": ""}]
    tables["attribute"] = [{"token": "att_mov", "name": "vehicle.moving", "description": ""}]
    tables["visibility"] = [{"token": "4", "level": "v80-100", "description": ""}]
    tables["sensor"] = [
        {"token": "sen_lidar", "channel": "LIDAR_TOP", "modality": "lidar"},
        {"token": "sen_cam", "channel": "CAM_FRONT", "modality": "camera"},
    ]
    lidar_rot = Quaternion(axis=[0, 0, 1], angle=-np.pi / 2)  # LIDAR_TOP is turned as on the car
    cam_rot = Quaternion(matrix=np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float))  # x right, y down
    k = [[80.0, 0.0, 80.0], [0.0, 80.0, 45.0], [0.0, 0.0, 1.0]]
    tables["calibrated_sensor"] = [
        {
            "token": "cs_lidar",
            "sensor_token": "sen_lidar",
            "translation": [0.9, 0.0, 1.8],
            "rotation": list(lidar_rot.elements),
            "camera_intrinsic": [],
        },
        {
            "token": "cs_cam",
            "sensor_token": "sen_cam",
            "translation": [1.7, 0.0, 1.5],
            "rotation": list(cam_rot.elements),
            "camera_intrinsic": k,
        },
    ]
    tables["log"] = [
        {
            "token": "log0",
            "logfile": "",
            "vehicle": "n015",
            "date_captured": "2018-07-24",
            "location": "singapore-onenorth",
        }
    ]
    tables["map"] = [{"token": "map0", "log_tokens": ["log0"], "category": "semantic_prior", "filename": ""}]
    for folder in ("samples/LIDAR_TOP", "samples/CAM_FRONT"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(["scene-0061", "scene-0103"]):  # mini_train, mini_val
        s, t = f"sample{i}", 1532402927647951 + i * 10**6
        tables["scene"].append(
            {
                "token": f"scene{i}",
                "log_token": "log0",
                "nbr_samples": 1,
                "first_sample_token": s,
                "last_sample_token": s,
                "name": name,
                "description": "",
            }
        )
        tables["sample"].append(
            {"token": s, "timestamp": t, "prev": "", "next": "", "scene_token": f"scene{i}"}
        )
        tables["ego_pose"].append(
            {"token": f"pose{i}", "timestamp": t, "rotation": [1.0, 0, 0, 0], "translation": [0.0, 0.0, 0.0]}
        )
        lidar_file = f"samples/LIDAR_TOP/{s}.pcd.bin"
        pts = np.zeros((50, 5), dtype=np.float32)
        pts[:, 0] = np.linspace(2, 12, 50)
        pts.tofile(root / lidar_file)
        cam_file = f"samples/CAM_FRONT/{s}.jpg"
        Image.fromarray(np.full((90, 160, 3), 100 + 50 * i, dtype=np.uint8)).save(root / cam_file)
        for chan, cs, f, fmt, (h, w) in (
            ("lidar", "cs_lidar", lidar_file, "pcd", (0, 0)),
            ("cam", "cs_cam", cam_file, "jpg", (90, 160)),
        ):
            tables["sample_data"].append(
                {
                    "token": f"sd_{chan}{i}",
                    "sample_token": s,
                    "ego_pose_token": f"pose{i}",
                    "calibrated_sensor_token": cs,
                    "timestamp": t,
                    "fileformat": fmt,
                    "is_key_frame": True,
                    "height": h,
                    "width": w,
                    "filename": f,
                    "prev": "",
                    "next": "",
                }
            )
        tables["instance"].append(
            {
                "token": f"inst{i}",
                "category_token": "cat_car",
                "nbr_annotations": 1,
                "first_annotation_token": f"ann{i}",
                "last_annotation_token": f"ann{i}",
            }
        )
        tables["sample_annotation"].append(
            {
                "token": f"ann{i}",
                "sample_token": s,
                "instance_token": f"inst{i}",
                "visibility_token": "4",
                "attribute_tokens": ["att_mov"],
                "translation": [10.0, 2.0, 0.8],
                "size": [1.9, 4.5, 1.6],
                "rotation": list(Quaternion(axis=[0, 0, 1], angle=0.3).elements),
                "prev": "",
                "next": "",
                "num_lidar_pts": 12,
                "num_radar_pts": 0,
            }
        )
    (root / "v1.0-mini").mkdir(parents=True)
    for name, records in tables.items():
        (root / "v1.0-mini" / f"{name}.json").write_text(json.dumps(records))
    return tables


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    write_nuscenes(root)
    shutil.move(root / "v1.0-mini", root / "v1.0-trainval")  # the paper's version, as the fixture
    return [f"data.root={root}", "data.cameras=[CAM_FRONT]", "data.batch_size=1", "data.sweeps=1"]
