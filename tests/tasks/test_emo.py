"""emo data paths: the bundled Fashion-MNIST subset and the real ImageFolder format."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from bench.config import config_hash, resolve
from bench.errors import BenchError
from bench.tasks.emo.data import ImageDataModule
from bench.tasks.emo.fixture import imagefolder
from bench.tasks.emo.task import EMO


def test_bundled_subset_is_drawn_by_the_seed_resized_and_three_channel() -> None:
    def splits(seed: int) -> dict:
        dm = ImageDataModule(resolve("emo", ["preset=smoke", "data.image_size=40", f"seed={seed}"]))
        dm.setup()
        return dm

    dm = splits(0)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 40, 40) and y.max() < 10
    assert len(dm.splits["train"]) == 64 and len(dm.splits["test"]) == 64
    same, other = splits(0), splits(5)
    assert (same.splits["test"].tensors[1] == dm.splits["test"].tensors[1]).all()
    assert not (other.splits["test"].tensors[1] == dm.splits["test"].tensors[1]).all()


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
    """At the cpu input (64 px) stage 3 is a 4x4 map and stage 4 a 2x2 one, each one window of its
    own size: every key is image content, nothing padded."""
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
    assert shapes == {2: (4, 4), 3: (2, 2)}
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
    """The paper's lr for the EMOs and MobileViT-XXS; MobileNetV2 at the ratio the cpu grid chose
    (9x EMO-1M's)."""
    from bench.config import preset_claims

    cfg = resolve("emo", ["preset=paper", "method=emo_1m"])
    cpu = resolve("emo", ["preset=cpu", "method=emo_1m"])["methods"]
    assert cfg["model"]["pad_small_maps"] and cfg["optim"]["lr"] == 1.5e-3
    for name, section in cfg["methods"].items():
        if name.startswith("mobilenetv2"):
            ratio = cpu[name]["lr"] / cpu["emo_1m"]["lr"]
            assert section["lr"] == pytest.approx(cfg["optim"]["lr"] * ratio)
        else:
            assert section["lr"] is None, name
    assert "emo1m_ge_mobilenetv2_params" not in {c.id for c in preset_claims("emo", "paper")}


def test_every_emo_trains_with_its_official_drop_path_at_both_presets() -> None:
    """model/emo.py:219,230,241,252: 0.04036 for EMO-1M, 0.05 for the others; MobileNetV2 keeps
    torchvision's dropout (its official regularization)."""
    from bench.tasks.emo.method import ImageClassifier

    official = {"emo_1m": 0.04036, "emo_2m": 0.05, "emo_5m": 0.05, "emo_6m": 0.05}
    for preset in ("cpu", "paper"):
        methods = resolve("emo", [f"preset={preset}", "method=emo_1m"])["methods"]
        for name, rate in official.items():
            assert methods[name]["drop_path_rate"] == rate, (preset, name)
    cfg = resolve("emo", ["preset=smoke", "method=emo_1m"])
    model = ImageClassifier(cfg, "emo_1m", **cfg["methods"]["emo_1m"]).model
    assert max(getattr(m, "drop_prob", 0.0) for m in model.modules()) == pytest.approx(0.04036)
    head = ImageClassifier(cfg, "mobilenetv2", **cfg["methods"]["mobilenetv2"]).model.classifier
    assert head[0].p == 0.2


def test_precise_bn_recomputes_the_statistics_with_drop_path_off() -> None:
    """Two precise-BN passes over the same batches give the same statistics (with DropPath on, at
    0.5, they would not), every BN's statistics move, and mode and momentum are restored."""
    from bench.tasks.emo.method import ImageClassifier

    cfg = resolve("emo", ["preset=smoke", "method=emo_1m"])
    method = ImageClassifier(cfg, "emo_1m", drop_path_rate=0.5)
    torch.manual_seed(0)
    batches = [(torch.randn(4, 3, 32, 32), torch.zeros(4)) for _ in range(2)]
    bns = [m for m in method.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    passes = []
    for _ in range(2):
        method.precise_bn(batches)
        passes.append([bn.running_var.clone() for bn in bns])
    assert all(torch.equal(a, b) for a, b in zip(*passes, strict=True))
    assert not any(torch.equal(v, torch.ones_like(v)) for v in passes[0])
    assert method.training and {bn.momentum for bn in bns} == {0.1}


def test_the_run_seed_draws_the_subset_outside_the_config_hash() -> None:
    """The subset follows the run's seed without a config key, so seeds of one config share a hash."""
    cfgs = [resolve("emo", ["preset=cpu", "method=emo_1m", f"seed={s}"]) for s in (1, 3)]
    assert config_hash(cfgs[0]) == config_hash(cfgs[1]) and "subset_seed" not in cfgs[0]["data"]


def test_smoke_run_logs_what_the_board_shows(bench_run) -> None:
    code, record = bench_run(
        "emo", "preset=smoke", "method=emo_1m", "data.train_size=32", "data.test_size=16"
    )
    assert code == 0 and record["status"] == "ok", record["error"]
    m = record["metrics"]
    for key in ("test/acc", "test/val_acc", "test/lr", "test/img_s_32_b1", "test/img_s_32_b2"):
        assert key in m, key
    assert m["test/params_vs_log"] < 0.005 and m["test/macs_vs_paper"] < 0.05


def test_cpu_claims_read_the_cpu_sweep_and_the_paper_judges_the_size_ordering() -> None:
    """The cpu sweep trains what its claims read (EMO-1M and both matched MobileNetV2s); the size
    ordering, each step judged, and the larger models' size checks are the paper preset's
    (tests/tasks/test_emo_model.py checks every size's build)."""
    from bench.config import preset_claims, read_preset

    cpu = {c.id: c for c in preset_claims("emo", "cpu")}
    assert cpu["emo1m_ge_mobilenetv2_params"].than == "mobilenetv2"
    assert cpu["emo1m_ge_mobilenetv2_flops"].than == "mobilenetv2_flops"
    read = {c.method for c in cpu.values()} | {c.than for c in cpu.values() if isinstance(c.than, str)}
    assert read == set(read_preset("emo", "cpu")["sweep"]["methods"])
    paper = {c.id: c for c in preset_claims("emo", "paper")}
    ordering = {(c.than, c.method) for c in paper.values() if c.op == ">=" and c.than in EMO}
    assert ordering == set(itertools.pairwise(EMO))  # 1M <= 2M <= 5M <= 6M, each step judged
    assert {c.method for c in paper.values() if c.metric == "test/params_vs_log"} == set(EMO)
    assert set(EMO) <= set(read_preset("emo", "paper")["sweep"]["methods"])


def test_real_data_transforms_are_the_official_timm_ones(tmp_path: Path) -> None:
    """zhangzjn/EMO configs/mobile/cls_emo.py: timm's create_transform with rand-m9-mstd0.5-inc1,
    random (bilinear or bicubic) interpolation, flip 0.5, no color jitter (RandAugment disables it),
    no random erasing; eval resizes to int(224 / 0.875) bicubic and center-crops 224."""
    from PIL import Image
    from timm.data.auto_augment import RandAugment
    from timm.data.transforms import RandomResizedCropAndInterpolation
    from torchvision.transforms import CenterCrop, InterpolationMode, RandomHorizontalFlip, Resize

    root = imagefolder(tmp_path / "imagenet")
    args = [f"data.root={root}", "data.num_classes=2", "data.batch_size=2"]
    dm = ImageDataModule(resolve("emo", ["preset=paper", "method=emo_1m", *args]))
    dm.setup()
    crop, flip, rand, *tail = dm.splits["train"].transform.transforms
    assert isinstance(crop, RandomResizedCropAndInterpolation) and crop.size == (224, 224)
    assert crop.interpolation == (InterpolationMode.BILINEAR, InterpolationMode.BICUBIC)
    assert (crop.scale, crop.ratio) == ((0.08, 1.0), (3 / 4, 4 / 3))
    assert isinstance(flip, RandomHorizontalFlip) and flip.p == 0.5
    assert isinstance(rand, RandAugment) and rand.num_layers == 2 and len(rand.ops) == 15
    assert {(op.magnitude, op.magnitude_std, op.prob) for op in rand.ops} == {(9, 0.5, 0.5)}
    assert "PosterizeIncreasing" in {op.name for op in rand.ops}  # inc1
    posterize = next(op for op in rand.ops if op.name == "PosterizeIncreasing")
    bits = posterize.level_fn(10.0, posterize.hparams)  # m9 + noise reaches 10: keep 0 bits
    black = posterize.aug_fn(Image.new("RGB", (8, 8), (200, 100, 50)), *bits)
    assert bits == (0,) and black.getextrema() == ((0, 0),) * 3  # Pillow < 13's result, no error
    assert [type(t).__name__ for t in tail] == ["MaybeToTensor", "Normalize"]
    resize, center, *_ = dm.splits["val"].transform.transforms
    assert isinstance(resize, Resize) and resize.size == int(224 / 0.875) == 256
    assert resize.interpolation == InterpolationMode.BICUBIC
    assert isinstance(center, CenterCrop) and center.size == (224, 224)
    loader = dm.train_dataloader()
    assert loader.num_workers == 0 and not loader.pin_memory  # no CUDA here
    x, y = next(iter(loader))
    assert x.shape == (2, 3, 224, 224) and y.shape == (2,)


def test_auto_workers_are_the_runs_cores_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import torch

    from bench.tasks.emo.data import num_workers

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setenv("BENCH_THREADS", "64")  # the official node: 64 cores, 8 GPUs
    assert num_workers(None, on_cuda=True) == num_workers("auto", on_cuda=True) == 8
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("BENCH_THREADS", "8")  # a sweep's run on one of its GPUs: an 8th of the cores
    assert num_workers(None, on_cuda=True) == 8
    assert num_workers(None, on_cuda=False) == 0 and num_workers(3, on_cuda=True) == 3
    assert resolve("emo", ["preset=paper"])["data"]["num_workers"] is None
    with pytest.raises(BenchError, match="data.num_workers"):
        num_workers("many", on_cuda=True)
    dm = ImageDataModule(resolve("emo", ["preset=smoke", "data.num_workers=null"]))
    dm.setup()
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    monkeypatch.setenv("BENCH_THREADS", "2")
    loader = dm.train_dataloader()  # what a CUDA run gets (built, not iterated: no GPU here)
    assert loader.pin_memory and loader.num_workers == 2 and loader.persistent_workers


def test_perf_loader_ratio_compares_like_with_like(tmp_path: Path) -> None:
    """``make perf``'s loader figure: bench's loader and timm's on the same files, transform, batch
    and worker count, so their ratio is the loaders' own."""
    from bench.tasks.emo.perf import LOADER_BATCH, jpeg_folder, loaders

    ours, theirs = loaders(jpeg_folder(tmp_path))
    assert repr(ours.dataset.transform) == repr(theirs.dataset.transform)
    assert sorted(ours.dataset.samples) == sorted(map(tuple, theirs.dataset.reader.samples))
    assert ours.batch_size == theirs.batch_size == LOADER_BATCH
    assert ours.num_workers == theirs.num_workers == 1
