"""cmt: Cross Modal Transformer, camera + LiDAR 3-D detection robust to a missing modality
(Yan et al., ICCV 2023)."""

from bench.task import Method, Task

CMT = "bench.tasks.cmt.method:CMTMethod"

TASK = Task(
    name="cmt",
    paper="Cross Modal Transformer: Towards Fast and Robust 3D Object Detection (ICCV 2023)",
    url="https://arxiv.org/abs/2301.01283",
    datamodule="bench.tasks.cmt.data:SceneDataModule",
    fixture="bench.tasks.cmt.fixture:fixture",
    ddp_batch="data.batch_size",
    primary="test/nds",
    higher_is_better=True,
    methods=(
        Method(
            "cmt",
            CMT,
            "CMT, camera + LiDAR tokens, masked-modal training (25% no images, 25% no points)",
            {"lidar": True, "camera": True, "masked": True},
        ),
        Method(
            "cmt_camera",
            CMT,
            "camera-only CMT (image tokens, camera-ray PE)",
            {"lidar": False, "camera": True, "masked": False},
        ),
        Method(
            "cmt_lidar",
            CMT,
            "LiDAR-only CMT (BEV tokens, BEV PE)",
            {"lidar": True, "camera": False, "masked": False},
        ),
        Method(
            "cmt_camera_norestart",
            CMT,
            "camera-only CMT in one schedule, without the stage-2 restart (the paper's CMT-C recipe)",
            {"lidar": False, "camera": True, "masked": False, "restart": False},
        ),
        Method(
            "cmt_lidar_norestart",
            CMT,
            "LiDAR-only CMT in one schedule, without the stage-2 restart (the paper's CMT-L recipe)",
            {"lidar": True, "camera": False, "masked": False, "restart": False},
        ),
        Method(
            "cmt_nomask",
            CMT,
            "CMT, camera + LiDAR, trained without masked-modal training (ablation)",
            {"lidar": True, "camera": True, "masked": False},
        ),
    ),
    headline=("test/map", "test/nds_no_lidar", "test/nds_no_camera"),
    seed_varies=("init", "order"),
    seed_fixed={
        "data": "the synthetic scenes are generated once (data.seed) and cached, standing for "
        "nuScenes' fixed train and val splits"
    },
    reported={
        "cmt": {"val_nds": 0.708, "val_nds_no_lidar": 0.447, "val_nds_no_camera": 0.681},
        "cmt_camera": {"val_nds": 0.460},
        "cmt_lidar": {"val_nds": 0.686},
    },
    reported_note=(
        "nuScenes val NDS (official README table): fusion R50 800x320 70.8 (VoV 1600x640: 72.9); "
        "camera-only CMT-C (VoV) 46.0, LiDAR-only CMT-L 68.6; the robustness figure (figs/cmt_robust.png), "
        "the VoV 1600x640 fusion: LiDAR dropped 44.7, cameras dropped 68.1; paper preset only"
    ),
)
