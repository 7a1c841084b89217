"""doorping: the distillation losses (DM, DC, DD), the trigger, the defenses, the clean-distillation
control, config errors, resuming from the checkpointed state, and the paper preset on a tiny
CIFAR-10 fixture written as python pickle batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.config import resolve
from bench.datasets.formats import write_cifar10
from bench.errors import BenchError
from bench.tasks.doorping import attacks, control, distill
from bench.tasks.doorping.data import DistillDataModule, load
from bench.tasks.doorping.method import DistillAttack
from bench.tasks.doorping.model import ConvNet


@pytest.fixture(autouse=True)
def one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))  # the clean-distillation stage


def test_batched_dm_equals_the_per_class_loop() -> None:
    net = ConvNet(1, 3, 12, 8, 2, 16)
    real, syn = torch.randn(3, 5, 1, 12, 12), torch.randn(3, 2, 1, 12, 12)
    a, b = distill.dm_loss(net, real, syn), distill.dm_loss_loop(net, real, syn)
    assert torch.allclose(a, b, rtol=1e-5)
    assert distill.dm_loss(net, real, real) < 1e-8  # the real batch itself matches exactly
    assert abs(distill.dm_loss(net, real, syn + 1).item() - a.item()) > 1e-3


def test_dc_loss_is_lowest_when_gradients_align() -> None:
    net = ConvNet(1, 2, 8, 4, 1, 8)
    real = torch.randn(2, 4, 1, 8, 8)
    # Rows of dead units have zero gradients and count 1 each (as in DC's metric), so compare.
    same = distill.dc_loss(net, real, real).item()
    assert same < distill.dc_loss(net, real, torch.randn(2, 4, 1, 8, 8)).item() - 1.0


def test_dd_unroll_differentiates_through_the_steps_and_learns() -> None:
    net = ConvNet(1, 2, 8, 4, 1, 8)
    real_x, real_y = torch.randn(16, 1, 8, 8), torch.arange(2).repeat(8)
    syn = torch.randn(2, 1, 8, 8, requires_grad=True)
    raw = torch.full((3,), -3.0, requires_grad=True)
    opt = torch.optim.Adam([syn, raw], lr=0.05)
    losses = []
    for _ in range(30):
        w = distill.dd_unroll(net, [(syn, torch.arange(2))] * 3, torch.nn.functional.softplus(raw), True)
        loss = distill.dd_loss(net, w, real_x, real_y)
        opt.zero_grad()
        loss.backward()
        assert syn.grad.abs().sum() > 0 and raw.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05  # the same fresh net, trained on the images, fits better
    w = distill.dd_unroll(net, [(syn, torch.arange(2))], torch.ones(1), False)
    assert all(not v.grad_fn for v in w.values())  # evaluation replays without a graph


def test_fine_pruning_prunes_dormant_channels_first_and_keeps_them_pruned() -> None:
    from bench.tasks.doorping import defenses

    net = ConvNet(1, 2, 8, 6, 1, 8)
    conv = net.features[0]
    with torch.no_grad():  # channels 0 and 3 never fire
        conv.weight[[0, 3]] = 0
        conv.bias[[0, 3]] = -1
    x, y = torch.randn(32, 1, 8, 8), torch.arange(2).repeat(16)
    train = {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "batch": 16, "decay_half": False}
    d = {"fp_max_drop": 0.0, "fp_epochs": 3, "fp_train": train}
    before = (net(x).argmax(1) == y).float().mean()
    frac = defenses.fine_prune(net, x, y, d, torch.Generator().manual_seed(0))
    assert 2 / 6 <= frac < 1  # the dead channels cost nothing, so they go first
    assert conv.weight[[0, 3]].abs().sum() == 0 and conv.bias[[0, 3]].abs().sum() == 0
    assert not hasattr(conv, "weight_orig")  # pruning made permanent
    assert (net(x).argmax(1) == y).float().mean() >= before - 0.2


def test_patch_sits_one_pixel_from_the_bottom_right() -> None:
    mask = attacks.patch_mask(1, 28, 2, 1)
    assert mask.sum() == 4 and mask[0, 25:27, 25:27].all() and mask[0, 27].sum() == 0
    with pytest.raises(ValueError):
        attacks.patch_mask(1, 4, 4, 1)


def _trigger_setup(bias: float):
    """A net whose most connected hidden unit gets ``bias``, a patch mask, the valid range, and a
    random initial trigger; the same net on every call."""
    torch.manual_seed(0)
    net = ConvNet(1, 3, 12, 8, 2, 16)
    unit = attacks.top_units(net, 1)
    with torch.no_grad():
        net.hidden.bias[unit] = bias
    mask = attacks.patch_mask(1, 12, 2, 1)
    lo, hi = torch.tensor([[[-0.8]]]), torch.tensor([[[2.0]]])
    start = attacks.random_trigger(mask, lo, hi, torch.Generator().manual_seed(0))
    return net, unit, mask, lo, hi, start


def _unit_on_black(net, unit, trigger, mask) -> float:
    """The unit's activation after its ReLU on the trigger stamped on a black image."""
    image = attacks.stamp(torch.full((1, 12, 12), -0.8), trigger, mask)
    return torch.relu(net.hidden_units(image[None]))[0, unit].item()


def test_trigger_update_excites_the_unit_inside_the_patch_only() -> None:
    net, unit, mask, lo, hi, start = _trigger_setup(0.5)
    cfg = {"lr": 0.08, "alpha": 10, "stop_loss": 0.0, "max_steps": 100, "topk": 1}
    black = torch.tensor([[[-0.8]]])
    free, steps = attacks.optimise_trigger(net, start, mask, cfg, black, None)
    assert steps == 100
    assert (free * (1 - mask)).abs().max() == 0  # nothing leaks outside the patch
    before, after = (_unit_on_black(net, unit, t, mask) for t in (start, free))
    assert before > 0 and after > before + 0.05
    clamped, _ = attacks.optimise_trigger(net, start, mask, cfg, black, (lo, hi))
    assert _unit_on_black(net, unit, clamped, mask) < after  # valid pixels excite less
    patch = clamped[mask.bool()]
    assert patch.min() >= -0.8 - 1e-6 and patch.max() <= 2.0 + 1e-6
    assert free[mask.bool()].abs().max() > 2.0  # unclamped, it leaves the valid range


def test_trigger_update_reads_the_unit_after_its_relu_as_baadd() -> None:
    """baadd's hook sees the in-place ReLU's output: a unit the patch leaves inactive reads 0, its
    target alpha x 0 is met at once, and the update stops at step 0 with the trigger unchanged."""
    net, unit, mask, _, _, start = _trigger_setup(-100.0)
    black = torch.tensor([[[-0.8]]])
    assert net.hidden_units(attacks.stamp(torch.full((1, 12, 12), -0.8), start, mask)[None])[0, unit] < 0
    cfg = {"lr": 0.08, "alpha": 10, "stop_loss": 0.5, "max_steps": 1000, "topk": 1}
    trigger, steps = attacks.optimise_trigger(net, start, mask, cfg, black, None)
    assert steps == 0 and torch.equal(trigger, start)
    net, unit, mask, _, _, start = _trigger_setup(0.25)  # active: driven to alpha x its value
    before = _unit_on_black(net, unit, start, mask)
    trigger, steps = attacks.optimise_trigger(net, start, mask, cfg, black, None)
    assert 0 < steps < 1000  # stopped by the MSE threshold
    assert abs(_unit_on_black(net, unit, trigger, mask) - 10 * before) < 0.5**0.5


def test_impossible_configs_give_one_line_errors() -> None:
    for override in (
        ("distill.algorithm=ddd",),
        ("distill.algorithm=dd", "distill.dd_steps=3"),
        ("attack.target=10",),
        ("attack.portion=0",),
        ("distill.batch_real=500",),
    ):
        cfg = resolve("doorping", ["preset=smoke", "method=doorping", *override])
        with pytest.raises(BenchError):
            DistillAttack(cfg, "doorping")
    cfg = resolve("doorping", ["preset=smoke", "method=doorping"])
    with pytest.raises(BenchError):
        DistillAttack(cfg, "blend")


def test_cifar10_pickles_are_read(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_batch=30)
    cfg = resolve("doorping", ["preset=paper", f"data.root={tmp_path}", "data.train_per_class=12"])
    im = load(cfg["data"])
    assert im.x.shape == (120, 3, 32, 32) and im.x_test.shape == (30, 3, 32, 32)
    assert torch.bincount(im.y).tolist() == [12] * 10
    assert im.lo.shape == (3, 1, 1) and (im.x >= im.lo - 1e-5).all() and (im.x <= im.hi + 1e-5).all()
    with pytest.raises(BenchError, match="per_class"):
        load({**cfg["data"], "train_per_class": 16})
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(BenchError, match="not a CIFAR-10"):
        load(cfg["data"])
    with pytest.raises(BenchError, match="CIFAR-10 not found"):
        load({**cfg["data"], "root": str(tmp_path / "missing")})


def test_paper_preset_runs_dc_on_the_fixture(tmp_path: Path, bench_run) -> None:
    write_cifar10(tmp_path, per_batch=30)
    small = [
        f"data.root={tmp_path}",
        "data.train_per_class=12",
        "model.width=8",
        "model.hidden=16",
        "attack.portion=0.1",
        "attack.max_steps=5",
        "attack.stop_loss=0.0",
        "distill.iterations=1",
        "distill.outer_loop=2",
        "distill.inner_loop=1",
        "distill.batch_real=4",
        "eval.nets=1",
        "eval.epochs=2",
        "trainer.accelerator=cpu",
    ]
    code, record = bench_run("doorping", "method=doorping", "preset=paper", *small)
    assert code == 0 and record["status"] == "ok", record["error"]
    keys = {"test/cta", "test/asr", "test/asr_all", "test/asr_clean", "test/trigger_min"}
    assert set(record["metrics"]) >= keys
    assert record["cost"]["trigger_adam_steps"] > 0
    assert (Path(record["config"]["data"]["root"]) / "cifar-10-batches-py").is_dir()


def test_neural_cleanse_flags_a_small_mask_and_reverses_a_real_trigger() -> None:
    from bench.tasks.doorping import defenses

    norms = torch.tensor([1.0, 10.0, 11.0, 9.5, 10.5, 10.2, 9.8, 10.1, 9.9, 10.4])
    assert defenses.anomaly_index(norms, 0) > 2 and defenses.anomaly_index(norms, 1) < 2

    class Backdoored(torch.nn.Module):  # class 2 by default; class 0 via one bright corner pixel,
        def forward(self, x):  # class 1 only when the whole image is bright
            corner, whole = x[:, 0, -1, -1], x[:, 0].mean((1, 2))
            return torch.stack([10 * (corner - 0.5), 10 * (whole - 0.5), torch.zeros_like(corner)], 1)

    x = torch.zeros(8, 1, 6, 6)
    cfg = {"lr": 0.1, "steps": 60, "l1": 0.01}
    lo, hi = torch.tensor([[[0.0]]]), torch.tensor([[[1.0]]])
    norms = defenses.reverse_mask_norms(Backdoored(), x, 3, lo, hi, (lo + hi) / 2, cfg)
    assert norms[0] < norms[1]  # the backdoor class needs the smaller mask


def test_neural_cleanse_searches_a_range_covering_the_trigger() -> None:
    cfg = resolve("doorping", ["preset=smoke", "method=doorping"])
    run = DistillAttack(cfg, "doorping")
    run.lo, run.hi = torch.tensor([[[-0.8]]]), torch.tensor([[[2.0]]])
    run.mask = attacks.patch_mask(1, 16, 2, 1)
    run.trigger = torch.zeros(1, 16, 16)
    run.trigger[run.mask.bool()] = torch.tensor([-900.0, 1.0, 5.0, 0.0])
    lo, hi = run._nc_bounds("trigger")
    assert lo.item() == -900.0 and hi.item() == 5.0  # the background zeros do not count
    assert run._nc_bounds("valid") == (run.lo, run.hi)


def test_real_batches_advance_the_stream_alike_whatever_the_class_sizes() -> None:
    """Poisoning moves images into the target class; the clean run's classes keep their sizes.
    Both draw the same number of values, so the nets drawn after stay paired."""
    x = torch.arange(40.0).view(40, 1)
    even = [torch.arange(c * 10, c * 10 + 10) for c in range(4)]
    skewed = [torch.arange(0, 16), torch.arange(16, 24), torch.arange(24, 32), torch.arange(32, 40)]
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    distill.sample_real(x, even, 4, a)
    distill.sample_real(x, skewed, 4, b)
    assert torch.equal(a.get_state(), b.get_state())


def test_the_clean_stage_key_names_the_code(monkeypatch) -> None:
    cfg = resolve("doorping", ["preset=smoke", "method=clean"])
    before = control.sub_config(cfg)
    monkeypatch.setattr(control.provenance, "fingerprint", lambda task: "changed")
    assert control.sub_config(cfg) != before and control.sub_config(cfg)["code"] == "changed"


def test_the_nc_claims_are_not_judged_when_the_positive_control_is_missed() -> None:
    from bench.claims import judge
    from bench.config import preset_claims

    claims = {c.id: c for c in preset_claims("doorping", "cpu")}
    missed = {"test/nc_detected": 0.0, "test/nc_control_detected": 0.0, "test/nc_detected_trigger": 0.0}
    missed["test/nc_control_detected_trigger"] = 0.0
    runs = {"doorping": {s: dict(missed) for s in range(3)}}
    for cid in ("doorping_evades_nc", "doorping_evades_nc_trigger"):
        assert judge(claims[cid], runs)["verdict"] == "not judged"
    caught = {k: (1.0 if "control" in k else 0.0) for k in missed}
    runs = {"doorping": {s: dict(caught) for s in range(3)}}
    assert judge(claims["doorping_evades_nc"], runs)["verdict"] == "holds"


def test_doorping_logs_nc_at_both_ranges_its_positive_control_and_the_fp_control(bench_run) -> None:
    overrides = ("defense.control_portion=0.5", "defense.control_epochs=8")
    code, record = bench_run("doorping", "method=doorping", "preset=smoke", *overrides)
    assert code == 0 and record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert m["test/asr_excess"] == pytest.approx(m["test/asr"] - m["test/asr_clean"])
    logged = {"test/nc_detected", "test/nc_detected_trigger", "test/nc_anomaly_trigger", "test/fp_asr_clean"}
    assert logged | {"test/nc_control_detected", "test/nc_control_detected_trigger"} <= set(m)
    assert m["test/nc_control_asr"] > 0.5  # the control net carries its white-patch backdoor
    code, record = bench_run("doorping", "method=naive", "preset=smoke")
    m = record["metrics"]
    assert "test/nc_control_asr" not in m and "test/fp_asr_clean" in m
    # an in-range trigger: the widened search is the valid one
    assert m["test/nc_anomaly_trigger"] == m["test/nc_anomaly"]


def test_clean_stage_is_the_clean_run_and_asr_clean_is_logged(bench_run, tmp_path, monkeypatch) -> None:
    code, record = bench_run("doorping", "method=clean", "preset=smoke")
    assert code == 0 and record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert m["test/asr_clean"] == m["test/asr"]  # the clean run's own nets are its controls
    assert m["test/fp_asr_clean"] == m["test/fp_asr"] and m["test/asr_excess"] == 0
    cfg = record["config"]
    offered = torch.load(next((tmp_path / "cache").glob(f"doorping/clean/*/{control.FILE}")))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "fresh"))
    built = control.clean_set(cfg, load(cfg["data"]), torch.device("cpu"))  # built from scratch
    assert torch.equal(built["syn"], offered["syn"])
    code, record = bench_run("doorping", "method=doorping", "preset=smoke")
    assert code == 0 and 0 <= record["metrics"]["test/asr_clean"] <= 1
    assert record["artifacts"]["doorping/clean"]
    # NAIVEATTACK's control nets are the clean run's own evaluation nets (both measured with the
    # white patch): the attack's poisoned pool leaves the random stream where the clean run's is
    code, record = bench_run("doorping", "method=naive", "preset=smoke")
    assert code == 0 and record["metrics"]["test/asr_clean"] == m["test/asr"]


def test_a_run_resumed_from_its_state_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    """Two distillation iterations, the state through torch.save/load into a fresh instance (its
    own setup done, as on resume), then the rest: the same results as a run never stopped."""
    cfg = resolve("doorping", ["preset=smoke", "method=doorping"])
    dm = DistillDataModule(cfg)
    dm.setup("fit")

    def fresh() -> DistillAttack:
        run = DistillAttack(cfg, "doorping")
        run.out_dir = tmp_path
        run.setup(dm)
        return run

    whole = fresh()
    while not whole.step():
        pass
    first = fresh()
    assert not first.step() and not first.step()
    first.save(tmp_path / "loop.ckpt")
    resumed = fresh()
    resumed.restore(tmp_path / "loop.ckpt")
    steps = 0
    while not resumed.step():
        steps += 1
    assert steps == cfg["distill"]["iterations"] - 2
    assert torch.equal(resumed.syn, whole.syn) and torch.equal(resumed.trigger, whole.trigger)
    assert resumed.results() == whole.results()
    assert (tmp_path / "distilled.png").is_file()


def test_dd_doorping_runs_at_smoke_with_both_defenses(bench_run) -> None:
    code, record = bench_run("doorping", "method=doorping", "preset=smoke", "distill.algorithm=dd")
    assert code == 0 and record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert {"test/fp_cta", "test/fp_asr", "test/fp_pruned", "test/nc_anomaly", "test/asr_clean"} <= set(m)
    assert 0 <= m["test/fp_pruned"] < 1 and record["cost"]["trigger_adam_steps"] > 0
