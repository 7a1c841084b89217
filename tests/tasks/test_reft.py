"""reft: the real format (COCO + TFA's cocosplit files) on a tiny fixture, end to end; the
synthetic writer's TFA sampling; the references, the bank, the distillation and nAP/bAP units;
resuming from the checkpointed state; and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.reft.data import FewShotCocoDataModule, ann_mask
from bench.tasks.reft.evaluate import draw, split_ap
from bench.tasks.reft.fixture import write_coco
from bench.tasks.reft.scenes import tfa_kshot


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    """COCO 2014 with TFA's splits in TFA's layout, two novel classes (one name with a space)."""
    return write_coco(tmp_path)


def _budget(cfg: dict) -> dict:
    """The run's method's fine-tuning lr and steps (the preset's ``methods.<name>``)."""
    return cfg["methods"][cfg["method"]]


def _real_cfg(root: Path) -> list[str]:
    return ["preset=smoke", "data.source=real", f"data.root={root}", "data.novel=[cat,dining table]"]


def test_real_format_reader(coco_root: Path) -> None:
    cfg = resolve("reft", _real_cfg(coco_root))
    dm = FewShotCocoDataModule(cfg)
    dm.setup()
    assert dm.class_names == ["person", "car", "cat", "dining table"] and dm.num_base == 2
    item = dm.test[0]
    assert item["image"].shape == (3, 64, 64) and item["masks"].shape[1:] == (64, 64)
    # 40 x 56 scaled to 46 x 64 and padded: the polygon's 14 x 20 box becomes ~16 x 23 pixels.
    box = item["masks"][0].nonzero()
    assert 15 <= box[:, 1].max() - box[:, 1].min() + 1 <= 18 and box[:, 0].max() < 46
    assert all(int(lab) < 2 for i in range(len(dm.base_train)) for lab in dm.base_train[i]["labels"])
    novel = dm.kshot(10, 0, novel_only=True)
    labels = torch.cat([novel[i]["labels"] for i in range(len(novel))])
    assert set(labels.tolist()) == {2, 3}
    every = dm.kshot(10, 0, novel_only=False)
    assert {int(x) for i in range(len(every)) for x in every[i]["labels"]} == {0, 1, 2, 3}


def test_real_format_end_to_end(bench_run, coco_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    code, record = bench_run("reft", "method=reft", "logger=none", *_real_cfg(coco_root))
    assert code == 0 and record["status"] == "ok", record and record["error"]
    m = record["metrics"]
    assert {"test/fsis_k10_nap_segm", "test/gfsis_k10_bap_segm", "test/ifsis_k10_nap_bbox"} <= set(m)
    assert set(record["artifacts"]) == {"reft/base"}
    assert (Path(record["config"]["data"]["root"]) / "cocosplit").exists()
    assert list(tmp_path.glob("runs/**/predictions.png"))


def test_bad_inputs(coco_root: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="data.root is not set"):
        FewShotCocoDataModule(resolve("reft", ["preset=smoke", "data.source=real", "data.root=null"])).setup()
    with pytest.raises(BenchError, match="not found"):
        FewShotCocoDataModule(resolve("reft", _real_cfg(tmp_path / "nowhere"))).setup()
    with pytest.raises(BenchError, match="not categories"):
        FewShotCocoDataModule(resolve("reft", [*_real_cfg(coco_root)[:-1], "data.novel=[unicorn]"])).setup()
    (coco_root / "cocosplit" / "datasplit" / "5k.json").write_text("[1, 2]")
    with pytest.raises(BenchError, match="not a COCO instances JSON"):
        FewShotCocoDataModule(resolve("reft", _real_cfg(coco_root))).setup()
    from bench.tasks.reft.method import FewShotMethod

    cfg = resolve("reft", ["preset=smoke"])
    cfg["finetune"]["shots"]["fsiss"] = [5]
    with pytest.raises(BenchError, match="unknown protocols"):
        FewShotMethod(cfg, **_budget(cfg))
    cfg = resolve("reft", ["preset=smoke"])
    cfg["finetune"]["freeze"]["gfsiss"] = ["backbone"]
    with pytest.raises(BenchError, match="finetune.freeze has unknown protocols"):
        FewShotMethod(cfg, **_budget(cfg))
    none = [f"finetune.shots.{p}=[]" for p in ("fsis", "gfsis", "ifsis")]
    cfg = resolve("reft", ["preset=smoke", *none])
    with pytest.raises(BenchError, match="no K for any protocol"):
        FewShotMethod(cfg, **_budget(cfg))
    cfg = resolve("reft", ["preset=smoke", "figure.phase=gfsis_k3"])
    with pytest.raises(BenchError, match="figure.phase"):
        FewShotMethod(cfg, **_budget(cfg))
    cfg = resolve("reft", ["preset=smoke", "methods.mask2former_ft.steps=0"])
    with pytest.raises(BenchError, match="steps must be positive"):
        FewShotMethod(cfg, **_budget(cfg))


def test_tfa_sampling_keeps_exactly_k_instances_of_one_class() -> None:
    anns = [{"id": i, "image_id": i // 2, "category_id": 1 + i % 3} for i in range(60)]
    cats = [{"id": c, "name": str(c)} for c in (1, 2, 3)]
    coco = {"images": [{"id": i} for i in range(30)], "annotations": anns, "categories": cats}
    for (k, name), sub in tfa_kshot(coco, [1, 5], seed=0).items():
        assert len(sub["annotations"]) == k and {a["category_id"] for a in sub["annotations"]} == {int(name)}


def test_masks_from_polygons_and_rle() -> None:
    from pycocotools import mask as mask_utils

    m = ann_mask([[2, 2, 8, 2, 8, 6, 2, 6]], 10, 12)
    assert m.shape == (10, 12) and 20 <= m.sum() <= 40
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    assert (ann_mask({"size": rle["size"], "counts": rle["counts"].decode()}, 10, 12) == m).all()


def test_split_ap_averages_per_class_ap_over_each_split() -> None:
    r = {
        "classes": torch.tensor([0, 1, 3, 4]),
        "segm_map_per_class": torch.tensor([0.5, -1.0, 0.2, 0.4]),
        "bbox_map_per_class": torch.tensor([1.0, 0.0, -1.0, -1.0]),
    }
    out = split_ap(r, num_base=3, num_classes=5)
    assert out["bap_segm"] == pytest.approx(50.0) and out["nap_segm"] == pytest.approx(30.0)
    assert out["bap_bbox"] == pytest.approx(50.0) and np.isnan(out["nap_bbox"])


def test_figure_draws_confident_masks(tmp_path: Path) -> None:
    """A prediction above ``figure.score`` is overlaid and labelled (the weak smoke model has none)."""
    d = resolve("reft", ["preset=smoke"])["data"]
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 4:20, 4:20], masks[1, 30:60, 10:40] = True, True
    pred = {"masks": masks, "labels": torch.tensor([0, 1]), "scores": torch.tensor([0.9, 0.1])}
    draw(tmp_path / "p.png", torch.zeros(1, 3, 64, 64), [pred], ["a", "b"], d, thr=0.3)
    assert (tmp_path / "p.png").stat().st_size > 0


@pytest.fixture(scope="module")
def tiny():
    from bench.tasks.reft.model import FewShotMask2Former

    torch.manual_seed(0)
    cfg = resolve("reft", ["preset=smoke"])
    return cfg, FewShotMask2Former(cfg["model"], 5, ("feature", "instance")).eval()


def _targets() -> list[dict]:
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 4:20, 4:20] = True
    masks[1, 30:60, 10:40] = True
    return [
        {"labels": torch.tensor([1, 3]), "masks": masks},
        {"labels": torch.tensor([3]), "masks": masks[1:]},
    ]


def test_references_start_as_identity_and_then_act(tiny) -> None:
    cfg, model = tiny
    images = torch.randn(2, 3, 64, 64)
    model.set_bank(model.bank_from(*model.encode_support(images, _targets())))
    assert model.filled.tolist() == [False, True, False, True, False]
    plain, refd = model(images, refs=()), model(images)
    assert torch.allclose(plain[0][-1], refd[0][-1], atol=1e-6)
    for ref in (model.feature_ref, model.instance_ref):
        torch.nn.init.normal_(ref.attn.out_proj.weight, std=0.5)
    assert not torch.allclose(plain[0][-1], model(images)[0][-1], atol=1e-3)
    # an explicit bank (a training episode's) replaces the buffers; an empty one turns refs off
    empty = (model.centres, model.squeries, torch.zeros_like(model.filled))
    assert torch.allclose(plain[0][-1], model(images, bank=empty)[0][-1], atol=1e-6)
    for ref in (model.feature_ref, model.instance_ref):
        ref.reset()
    model.filled.zero_()


def test_support_encoding_pools_features_and_counts_instances(tiny) -> None:
    cfg, model = tiny
    images = torch.randn(2, 3, 64, 64)
    centres, squeries, count = model.encode_support(images, _targets())
    assert count.tolist() == [0, 1, 0, 2, 0]
    feats = model(images, refs=())[3]
    # Class 1's centre is the mean of image 0's mask features over its (stride-4) mask.
    expected = feats[0][:, 1:5, 1:5].mean((1, 2))
    assert torch.allclose(centres[1], expected, atol=1e-4)
    assert squeries[3].abs().sum() > 0 and squeries[0].abs().sum() == 0
    means, q, filled = model.bank_from(centres, squeries, count)
    assert filled.tolist() == [False, True, False, True, False]
    assert torch.allclose(means[3], centres[3] / 2) and torch.allclose(q[3], squeries[3] / 2)


def _fixture_dm(coco_root: Path):
    cfg = resolve("reft", _real_cfg(coco_root))
    dm = FewShotCocoDataModule(cfg)
    dm.setup()
    return cfg, dm


def test_bn_statistics_and_references_train_in_base_training(coco_root: Path) -> None:
    """The backbone's BN layers are in train mode under train() (mmdet's norm_eval=True would
    keep them in eval mode) and their running statistics move in a few base-training steps; the
    references' zero-initialised output projections move too (every step uses both here)."""
    from bench.tasks.reft.base import train_steps
    from bench.tasks.reft.model import REFS, FewShotMask2Former

    cfg, dm = _fixture_dm(coco_root)
    torch.manual_seed(0)
    model = FewShotMask2Former(cfg["model"], dm.num_classes, REFS)
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in bns], [m.running_var.clone() for m in bns]
    train_steps(model, dm.base_train, 3, cfg["base"] | {"ref_drop": 0.0}, torch.Generator().manual_seed(0))
    assert all(m.training for m in bns)
    assert all(not torch.allclose(m.running_mean, b) for m, b in zip(bns, before[0], strict=True))
    assert all(not torch.allclose(m.running_var, b) for m, b in zip(bns, before[1], strict=True))
    for ref in (model.feature_ref, model.instance_ref):
        assert ref.attn.out_proj.weight.abs().sum() > 0


def test_a_killed_base_stage_resumes_from_its_checkpoint(
    coco_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """Base training killed after two of four steps (its state saved every step), then rerun in a
    process of another global random state: it continues from step two and ends with the weights
    of a run never stopped."""
    from bench.tasks.reft import base
    from bench.tasks.reft.model import REFS, FewShotMask2Former

    cfg, dm = _fixture_dm(coco_root)
    o = cfg["base"] | {"steps": 4}

    def train(seed: int, state: Path | None) -> FewShotMask2Former:
        torch.manual_seed(seed)
        model = FewShotMask2Former(cfg["model"], dm.num_classes, REFS)
        base.train_steps(model, dm.base_train, 4, o, torch.Generator().manual_seed(seed), state, every_s=0.0)
        return model

    whole = train(0, None)
    calls, episode = [], base.episode

    def dies_in_step_three(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return episode(*args, **kwargs)

    monkeypatch.setattr(base, "episode", dies_in_step_three)
    state = tmp_path / "train.pt"
    with pytest.raises(KeyboardInterrupt):
        train(0, state)
    assert torch.load(state, weights_only=False)["step"] == 2
    monkeypatch.setattr(base, "episode", episode)
    resumed = train(1, state)
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_support_and_query_images_are_disjoint(coco_root: Path, monkeypatch) -> None:
    """Every episode's support images differ from its query images, in base training and in
    fine-tuning (read off the images each step loads); the test's support is the K-shot set,
    which shares no image with the test set; the support covers the query's classes."""
    import bench.tasks.reft.base as base
    from bench.tasks.reft.method import finetune_step
    from bench.tasks.reft.model import REFS, FewShotMask2Former

    cfg, dm = _fixture_dm(coco_root)
    kshot = dm.kshot(10, 0, novel_only=False)
    gen = torch.Generator().manual_seed(0)
    for ds in (dm.base_train, kshot):
        episodes = base.Episodes(ds)
        for _ in range(50):
            query, support = episodes.draw(4, 3, gen)
            assert len(query) == 4 and len(support) == 3 and not set(query) & set(support)
            held = {c for i in support for c in episodes.classes[i]}
            wanted = {c for i in query for c in episodes.classes[i] if set(episodes.holders[c]) - set(query)}
            assert len(held & wanted) >= min(3, len(wanted))
    assert not {im["id"] for im in kshot.images} & {im["id"] for im in dm.test.images}

    loaded: list[set] = []
    real = base.fetch

    def fetch(ds, idx, device):
        loaded.append({ds.images[i]["id"] for i in idx})
        return real(ds, idx, device)

    monkeypatch.setattr(base, "fetch", fetch)
    model = FewShotMask2Former(cfg["model"], dm.num_classes, REFS)
    f = cfg["finetune"] | cfg["methods"]["reft"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=f["lr"])
    for _ in range(3):
        loaded.clear()
        finetune_step(model, kshot, base.Episodes(kshot), f, gen, opt, params, None, dm.num_base)
        assert len(loaded) == 2 and loaded[0] and loaded[1] and not loaded[0] & loaded[1]
    loaded.clear()
    base.train_steps(model, dm.base_train, 1, cfg["base"] | {"ref_drop": 0.0}, gen)
    assert len(loaded) == 2 and not loaded[0] & loaded[1]


def test_reference_weights_move_in_finetuning(coco_root: Path) -> None:
    """With the preset's fine-tuning lr, the references' weights move (``ref_move``, logged per
    phase as ``test/<phase>_ref_move``)."""
    from bench.tasks.reft.base import Episodes
    from bench.tasks.reft.method import finetune_step, ref_move
    from bench.tasks.reft.model import REFS, FewShotMask2Former

    cfg, dm = _fixture_dm(coco_root)
    torch.manual_seed(0)
    model = FewShotMask2Former(cfg["model"], dm.num_classes, REFS)
    for ref in (model.feature_ref, model.instance_ref):  # as after base training
        torch.nn.init.normal_(ref.attn.out_proj.weight, std=0.05)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    f = cfg["finetune"] | cfg["methods"]["reft"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=f["lr"], weight_decay=f["weight_decay"])
    kshot, gen = dm.kshot(10, 0, novel_only=True), torch.Generator().manual_seed(0)
    for _ in range(5):
        finetune_step(model, kshot, Episodes(kshot), f, gen, opt, params, None, dm.num_base)
    assert ref_move(model, start) > 1e-3
    for ref in ("feature_ref", "instance_ref"):
        w = f"{ref}.attn.in_proj_weight"
        assert not torch.equal(model.state_dict()[w], start[w])


def test_a_run_resumed_from_its_state_ends_as_an_uninterrupted_run(
    coco_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """RefT stopped inside its iFSIS phase (teacher, optimiser, episode generator mid-way), its
    state through torch.save/load into a fresh instance of another process's global random state,
    then finished: the same weights per phase and the same results as a run never stopped (the
    flips draw from the global generator, which the state carries)."""
    from bench.tasks.reft.method import FewShotMethod

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg, dm = _fixture_dm(coco_root)

    def fresh() -> FewShotMethod:  # the first builds the base stage: on a random state of its own
        run = FewShotMethod(cfg, refs=("feature", "instance"), distill=True, **_budget(cfg))
        run.out_dir = tmp_path
        run.setup(dm)
        return run

    torch.manual_seed(0)
    whole = fresh()
    while not whole.step():
        pass
    torch.manual_seed(0)
    first = fresh()
    steps = cfg["methods"][cfg["method"]]["steps"]
    for _ in range(2 * steps + 1):  # fsis and gfsis done, one step into ifsis
        assert not first.step()
    assert first.phase["name"] == "ifsis_k10" and first.phase["teacher"] is not None
    first.save(tmp_path / "loop.ckpt")
    torch.manual_seed(1)
    resumed = fresh()
    resumed.restore(tmp_path / "loop.ckpt")
    while not resumed.step():
        pass
    assert resumed.states.keys() == whole.states.keys()
    for name, state in whole.states.items():
        assert all(torch.equal(v, resumed.states[name][k]) for k, v in state.items()), name
    np.testing.assert_equal(resumed.results(), whole.results())
    assert (tmp_path / "predictions.png").is_file()


def test_methods_with_and_without_references_fine_tune_on_the_same_batches(
    coco_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """Plain fine-tuning and RefT on one seed load the same query images at every step of every
    phase, flips included: the support passes (and the test references filled after a phase)
    draw from the supports' own streams, so the runs' paired difference is the method's. The
    iFSIS distillation control, which runs iFSIS alone, loads RefT's iFSIS query images and
    starts from RefT's fresh classifier rows."""
    import bench.tasks.reft.method as method

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg, dm = _fixture_dm(coco_root)
    real = method.episode

    def queries(**kwargs) -> list[torch.Tensor]:
        seen, rows = [], []

        def episode(*args, **kw):
            out = real(*args, **kw)
            seen.append(out[0].clone())
            return out

        monkeypatch.setattr(method, "episode", episode)
        torch.manual_seed(0)
        run = method.FewShotMethod(cfg, **kwargs, **_budget(cfg))
        run.out_dir = tmp_path
        run.setup(dm)
        while True:
            if run.phase is None:
                run._start(*run.todo[len(run.states) - 1])
                rows.append(run.model.head.cls_embed.weight.detach().clone())
            if run.step():
                return seen, rows

    (plain, plain_rows), (reft, reft_rows) = queries(), queries(refs=("feature", "instance"), distill=True)
    assert len(plain) == len(reft) == 3 * cfg["methods"]["mask2former_ft"]["steps"]
    assert all(torch.equal(a, b) for a, b in zip(plain, reft, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(plain_rows, reft_rows, strict=True))
    control, control_rows = queries(distill=True, protocols=("ifsis",))
    assert len(control) == cfg["methods"]["mask2former_ft"]["steps"]
    assert all(torch.equal(a, b) for a, b in zip(control, reft[-len(control) :], strict=True))
    assert torch.equal(control_rows[0], reft_rows[-1])


def test_base_distillation_vanishes_only_at_the_teacher() -> None:
    from bench.tasks.reft.method import base_distillation

    cls, masks = torch.randn(1, 2, 4, 6), torch.randn(1, 2, 4, 8, 8)
    cls[..., 0] += 5  # the teacher is sure about base class 0: the mask term is active
    teacher = (list(cls), list(masks))
    same = base_distillation(teacher, teacher, num_base=3)
    masks_term = torch.nn.functional.binary_cross_entropy_with_logits(masks[-1], masks[-1].sigmoid())
    assert same == pytest.approx(float(masks_term), rel=1e-4)  # KL part is zero
    other = (list(torch.randn(1, 2, 4, 6)), list(masks))
    assert base_distillation(other, teacher, num_base=3) > same


def test_the_frozen_backbone_keeps_its_bn_statistics_in_reft_fine_tuning(
    coco_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """RefT's fine-tuning steps run support passes (``encode_support`` puts the model in eval
    mode and back): the frozen backbone's BatchNorm stays in eval mode, so its running statistics
    after a phase are the base model's, as plain fine-tuning leaves them."""
    from bench.tasks.reft.method import FewShotMethod

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg, dm = _fixture_dm(coco_root)
    for refs in ((), ("feature", "instance")):
        run = FewShotMethod(cfg, refs=refs, distill=True, **_budget(cfg))
        run.out_dir = tmp_path
        run.setup(dm)
        while "fsis_k10" not in run.states:
            run.step()
            bns = [m for m in run.model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
            assert bns and not any(m.training for m in bns)
        stats = [k for k in run.base_state if k.startswith("backbone.") and "running_" in k]
        assert stats and all(torch.equal(run.states["fsis_k10"][k], run.base_state[k]) for k in stats)


def test_the_teacher_uses_references_only_when_asked(coco_root: Path, tmp_path: Path, monkeypatch) -> None:
    """RefT's iFSIS teacher is plain Mask2Former, or (``finetune.teacher_refs``) the base model
    with RefT's references over the stored base references."""
    from bench.tasks.reft.method import FewShotMethod

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg, dm = _fixture_dm(coco_root)
    for flag in (False, True):
        cfg["finetune"]["teacher_refs"] = flag
        both = ("feature", "instance")
        run = FewShotMethod(cfg, refs=both, distill=True, protocols=("ifsis",), **_budget(cfg))
        run.out_dir = tmp_path
        run.setup(dm)
        run.step()
        teacher = run.phase["teacher"]
        assert teacher.refs == (("feature", "instance") if flag else ())
        assert bool(teacher.filled.any()) == flag


def test_the_heldout_split_is_training_images_in_no_kshot_file(coco_root: Path) -> None:
    """``data.eval_split=heldout`` evaluates on training images that no K-shot file holds, with
    every class annotated; the test images are not among them."""
    test = FewShotCocoDataModule(resolve("reft", _real_cfg(coco_root)))
    held = FewShotCocoDataModule(resolve("reft", [*_real_cfg(coco_root), "data.eval_split=heldout"]))
    test.setup()
    held.setup()
    ids = {im["id"] for im in held.test.images}
    shots = {im["id"] for p in (True, False) for im in held.kshot(10, 0, novel_only=p).images}
    train = json.loads((coco_root / "cocosplit/datasplit/trainvalno5k.json").read_text())
    train = {im["id"] for im in train["images"]}
    assert ids and ids <= train - shots and not ids & {im["id"] for im in test.test.images}
    labels = {int(x) for i in range(len(held.test)) for x in held.test[i]["labels"]}
    assert labels & {2, 3} and labels & {0, 1}
