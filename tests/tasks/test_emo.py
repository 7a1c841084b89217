"""emo data paths: the bundled Fashion-MNIST subset and the real ImageFolder format."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.emo.data import ImageDataModule


def imagefolder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    """A tiny ImageNet-layout tree: root/{train,val}/<class>/<n>.JPEG."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"n0{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (40 + i, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.JPEG")
    return root


def test_bundled_subset_is_fixed_resized_and_three_channel() -> None:
    cfg = resolve("emo", ["preset=smoke", "data.image_size=40"])
    dm = ImageDataModule(cfg)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 40, 40) and y.max() < 10
    assert len(dm.splits["train"]) == 64 and len(dm.splits["test"]) == 64
    again = ImageDataModule(resolve("emo", ["preset=smoke", "data.image_size=40", "seed=5"]))
    again.setup()
    assert (again.splits["test"].tensors[1] == dm.splits["test"].tensors[1]).all()


def test_real_imagefolder_runs_end_to_end(bench_run, tmp_path: Path) -> None:
    root = imagefolder(tmp_path / "imagenet")
    code, record = bench_run(
        "emo",
        "preset=smoke",
        "method=emo_1m",
        "data.source=real",
        f"data.root={root}",
        "data.num_classes=2",
        "data.batch_size=2",
    )
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["config"]["data"]["source"] == "real"
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0


def test_real_imagefolder_with_other_class_count_is_refused(tmp_path: Path) -> None:
    root = imagefolder(tmp_path / "imagenet", classes=3)
    dm = ImageDataModule(resolve("emo", ["preset=smoke", "data.source=real", f"data.root={root}"]))
    with pytest.raises(BenchError, match="data.num_classes=3"):
        dm.setup()


def test_cpu_preset_attention_sees_real_maps() -> None:
    """At the cpu input stage 3 is one whole 7x7 window and stage 4 a 4x4 map, nothing padded."""
    import torch

    from bench.tasks.emo.model import build_model

    cfg = resolve("emo", ["preset=cpu"])
    size = cfg["data"]["image_size"]
    model = build_model("emo_1m", 10, pad_small_maps=cfg["model"]["pad_small_maps"]).eval()
    shapes = {}
    hooks = [
        model.stages[i][1].register_forward_hook(
            lambda m, a, o, i=i: shapes.__setitem__(i, tuple(o.shape[-2:]))
        )
        for i in (2, 3)
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    assert shapes == {2: (7, 7), 3: (4, 4)}
    assert not cfg["model"]["pad_small_maps"]


def test_methods_section_sets_lr_and_width() -> None:
    from bench.tasks.emo.method import ImageClassifier

    cfg = resolve("emo", ["preset=smoke", "method=mobilenetv2_flops"])
    section = cfg["methods"]["mobilenetv2_flops"]
    module = ImageClassifier(cfg, "mobilenetv2", **section)
    assert module.base_lr == section["lr"]
    params = {
        m: ImageClassifier(cfg, "mobilenetv2", **cfg["methods"][m]).cost()["params"]
        for m in cfg["methods"]
        if m.startswith("mobilenetv2")
    }
    assert params["mobilenetv2_flops"] > params["mobilenetv2"]
    assert ImageClassifier(cfg, "emo_1m", lr=None).base_lr == cfg["optim"]["lr"]


def test_paper_preset_uses_the_papers_lr_and_official_padding() -> None:
    cfg = resolve("emo", ["preset=paper", "method=emo_1m"])
    assert cfg["model"]["pad_small_maps"] and cfg["optim"]["lr"] == 1.5e-3
    assert all(section["lr"] is None for section in cfg["methods"].values())


def test_smoke_run_logs_what_the_board_shows(bench_run) -> None:
    code, record = bench_run(
        "emo", "preset=smoke", "method=emo_1m", "data.train_size=32", "data.test_size=16"
    )
    assert code == 0 and record["status"] == "ok", record["error"]
    m = record["metrics"]
    for key in ("test/acc", "test/val_acc", "test/lr", "test/img_s_32_b1", "test/img_s_32_b2"):
        assert key in m, key
    assert m["test/params_vs_log"] < 0.005 and m["test/macs_vs_paper"] < 0.05


def test_cpu_claims_cover_both_matched_baselines_and_the_size_ordering() -> None:
    from bench.config import preset_claims, read_preset
    from bench.tasks.emo.task import EMO

    claims = {c.id: c for c in preset_claims("emo", "cpu")}
    assert claims["emo1m_ge_mobilenetv2_params"].than == "mobilenetv2"
    assert claims["emo1m_ge_mobilenetv2_flops"].than == "mobilenetv2_flops"
    ordering = {(c.than, c.method) for c in claims.values() if c.op == ">=" and c.than in EMO}
    assert ordering == set(itertools.pairwise(EMO))  # 1M <= 2M <= 5M <= 6M, each step judged
    assert set(EMO) <= set(read_preset("emo", "cpu")["methods"])
