"""asyncfl: the exactness checks (K = 1 is FedAsync, one client is SGD), the evaluation grid and
the "reached" rule, the lr search and its grid edges (also on the committed records), the idle-
client sampling bias, and the real formats (LEAF FEMNIST JSON, CIFAR-10 python batches) on tiny
fixtures written in those formats."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench import config
from bench.datasets.formats import write_cifar10
from bench.errors import BenchError
from bench.tasks.asyncfl.algorithms import AsyncSimulation, Setting, Trace, simulation
from bench.tasks.asyncfl.data import FederatedDataModule, Federation, build, partition
from bench.tasks.asyncfl.fixture import write_leaf
from bench.tasks.asyncfl.local import LocalTrainer, RayTrainer, local_order
from bench.tasks.asyncfl.method import FederatedMethod, LrWalk, settings
from bench.tasks.asyncfl.model import FlatNet, build_net
from bench.tasks.asyncfl.simulator import EventClock, Fleet, device_durations, sync_round

ROOT = Path(__file__).resolve().parents[2]


def resolve(*args: str) -> dict:
    out = config.resolve("asyncfl", list(args))
    return out[1] if isinstance(out, tuple) else out


def net() -> FlatNet:
    return FlatNet(build_net("logreg", 784, 10, 0))


@pytest.fixture(scope="module")
def smoke():
    torch.set_num_threads(1)
    cfg = resolve("preset=smoke", "method=fedbuff")
    # the concurrencies the tests simulate, with horizons and a target that never stop them
    cfg["sim"].update(concurrency=[1, 4, 5, 8], horizon=[1e9] * 4, target_acc=2.0)
    fed = build(cfg["data"], cfg["seed"])
    torch.manual_seed(0)
    return cfg, fed, net().flatten()


def run(cfg, algorithm, fed, x0, setting, steps, lr=1.0, momentum=0.0):
    sim = simulation(cfg, algorithm, fed, net(), x0, setting, "sgd", lr, momentum)
    for _ in range(steps):
        if sim.step():
            break
    return sim


def test_fedbuff_with_k1_is_fedasync_bit_for_bit(smoke) -> None:
    cfg, fed, x0 = smoke
    a = run(cfg, "fedbuff", fed, x0, Setting(5, 1.0, 1), 30)
    b = run(cfg, "fedasync", fed, x0, Setting(5, 1.0, 10), 30)
    assert torch.equal(a.x, b.x) and a.updates == b.updates and a.trace.val == b.trace.val
    # The check can fail: FedBuff with K = 2 is not FedAsync.
    c = run(cfg, "fedbuff", fed, x0, Setting(5, 1.0, 2), 15)
    assert (c.x - b.x).abs().max() > 1e-4


def test_deferred_client_training_starts_from_the_model_each_client_received(smoke) -> None:
    cfg, fed, x0 = smoke
    deferred = run(cfg, "fedbuff", fed, x0, Setting(5, 1.0, 2), 30)

    class Eager(AsyncSimulation):  # trains every pending client before the model changes
        def absorb(self, weighted):
            if self.count == self.K - 1 and self.pending:
                self._flush()
            super().absorb(weighted)

    eager = simulation(cfg, "fedbuff", fed, net(), x0, Setting(5, 1.0, 2), "sgd", 1.0, 0.0)
    eager.__class__ = Eager
    for _ in range(30):
        eager.step()
    assert deferred.version == eager.version == 30
    assert torch.allclose(deferred.x, eager.x, atol=1e-5) and (deferred.x - x0).abs().max() > 1e-3


def sequential_vs_sgd(cfg: dict, fed: Federation, x0: torch.Tensor, n: int = 20, steps: int = 5) -> float:
    """Max |x_sim - x_sgd| after ``steps`` rounds of one client of ``n`` examples (C = K = 1, server
    lr 1, no momentum) against torch.optim.SGD over the same minibatches."""
    held_out = (fed.x_val, fed.y_val, fed.x_test, fed.y_test)
    one = Federation(fed.x[:n], fed.y[:n], np.arange(n), np.array([0, n]), *held_out, 10)
    sim = run(cfg, "fedasync", one, x0, Setting(1, 1.0, 1), steps)
    ref = net()
    ref.load(x0)
    cl = cfg["client"]
    opt = torch.optim.SGD(ref.net.parameters(), lr=cl["lr"])
    for r in range(steps):
        for row in local_order(cfg["seed"], 0, r, n, cl["epochs"], cl["batch_size"]):
            idx = torch.from_numpy(row[row >= 0])
            opt.zero_grad()
            F.cross_entropy(ref.net(one.x[idx]), one.y[idx]).backward()
            opt.step()
    return float((sim.x - ref.flatten()).abs().max())


def test_one_client_sequential_is_centralised_sgd(smoke) -> None:
    cfg, fed, x0 = smoke
    assert sequential_vs_sgd(cfg, fed, x0) <= 1e-5
    slower = copy.deepcopy(cfg)
    slower["client"]["lr"] = 0.04  # the reference then trains at 0.04 too: still equal
    assert sequential_vs_sgd(slower, fed, x0) <= 1e-5


def test_reached_means_staying_at_or_above_the_target() -> None:
    tr = Trace(dt=0.5, hold=2, val=[0.1, 0.8, 0.7, 0.8, 0.9, 0.85, 0.5])
    assert tr.reached_at("val", 0.8) == 3  # the first crossing at index 1 dips below at 2
    assert Trace(dt=0.5, hold=2, val=[0.1, 0.8, 0.9]).reached_at("val", 0.8) is None  # not yet
    done = Trace(dt=0.5, hold=2, val=[0.1, 0.8, 0.9, 0.8], complete=True)
    done.updates, done.trips = [0, 5, 9, 11], [0, 7, 12, 15]
    assert done.to_target("val", 0.8) == (0.5, 5, 7, True)
    assert done.to_target("val", 0.85) == (1.5, 11, 15, False)  # censored at the horizon


def test_every_method_is_evaluated_on_one_grid(smoke) -> None:
    cfg, fed, x0 = smoke
    c = copy.deepcopy(cfg)
    c["sim"].update(horizon=[4.0] * 4, eval_every=0.25)
    sims = [run(c, alg, fed, x0, Setting(8, 1.0, 2), 10_000) for alg in ("fedbuff", "fedasync", "sync")]
    for sim in sims:
        assert len(sim.trace.val) == 17 and sim.trace.complete  # grid 0, 0.25, ..., 4.0
    sync = sims[-1]
    # A round's model counts from the round's end: accuracy is constant within a round, the first
    # grid points hold the initial model's accuracy.
    assert sync.trace.updates[0] == 0 and len(set(sync.trace.val)) <= sync.version + 1
    assert sync.trace.val[0] == sims[0].trace.val[0]


def test_a_candidate_that_cannot_beat_the_best_stops_at_the_cap(smoke) -> None:
    cfg, fed, x0 = smoke
    c = copy.deepcopy(cfg)
    c["sim"].update(horizon=[50.0] * 4, eval_every=0.5, hold=1.0)
    sim = simulation(c, "sync", fed, net(), x0, Setting(4, 1.0, 10), "sgd", 1.0, 0.0, cap=2.0)
    while not sim.step():
        pass
    assert 3.0 <= sim.trace.last < 10.0 and not sim.trace.complete  # cap 2 + hold 1


def test_lr_walk_finds_the_interior_minimum_and_flags_an_edge() -> None:
    class Fake:  # a simulation that "reaches" at time |log2 lr - log2 best|
        def __init__(self, t):
            self.diverged = False
            self.trace = Trace(1.0, 0, updates=[0] * 11, trips=[0] * 11, val=[0.0] * t + [1.0] * (11 - t))

    grid = [2.0**e for e in range(-3, 4)]
    for best, edge in ((0.5, False), (8.0, True), (0.125, True)):
        walk, evaluated = LrWalk(0.0, grid), 0
        while (i := walk.next(0.9)) is not None:
            walk.done[i] = Fake(1 + round(abs(math.log2(grid[i] / best))))
            evaluated += 1
        assert grid[walk.best(0.9)] == best and walk.on_edge(0.9) == edge
        assert evaluated < len(grid) or edge

    # Nothing near the start reaches, and final accuracy peaks at the start: the walk goes on
    # through the grid, nearest first, until the one lr that reaches (1/8, at the edge) is found.
    class Censored(Fake):
        def __init__(self, lr):
            final = 0.5 if lr == 0.125 else 0.8 - 0.1 * abs(math.log2(lr))
            self.diverged = False
            self.trace = Trace(1.0, 0, updates=[0] * 11, trips=[0] * 11, val=[final] * 11)
            if lr == 0.125:
                self.trace.val[5:] = [1.0] * 6

    walk = LrWalk(0.0, grid)
    while (i := walk.next(0.9)) is not None:
        walk.done[i] = Censored(grid[i])
    assert grid[walk.best(0.9)] == 0.125 and walk.on_edge(0.9) and len(walk.done) < len(grid)
    with pytest.raises(BenchError, match="increasing"):
        LrWalk(0.0, [1.0, 0.5])
    warm = LrWalk(0.0, grid)
    warm.start = 1
    assert warm.next(0.9) == 1


def test_settings_share_simulations_and_sync_has_no_buffer() -> None:
    sim = {"concurrency": [10, 100], "speed_sigma": 1.0, "buffer": 10}
    sim |= {"sigmas": [0.0, 1.0], "buffers": [3, 10]}
    async_ = settings(sim, "fedbuff", ["concurrency", "sigma", "buffer"])
    assert async_["sigma1"] == async_["k10"] == async_["c100"] and async_["k3"] == Setting(100, 1.0, 3)
    assert len(set(async_.values())) == 4
    sync = settings(sim, "sync", ["concurrency", "sigma", "buffer"])
    assert sync["k3"] == sync["c100"] and len(set(sync.values())) == 3
    with pytest.raises(BenchError, match="studies"):
        settings(sim, "sync", ["sigma"])


def idle_launch_bias(clients: int, concurrency: int, events: int = 20_000) -> float:
    """Population mean device time over the launch-weighted mean under FedBuff's replacement rule."""
    rng = np.random.default_rng(0)
    fleet = Fleet(device_durations(np.full(clients, 30), 1, 1.0, rng), rng)
    clock, launched = EventClock(fleet), []
    clock.launch(fleet.pick_idle(concurrency), 0)
    for _ in range(events):
        clock.pop()
        launched.append(int(fleet.pick_idle(1)[0]))
        clock.launch(np.array(launched[-1:]), 0)
    return float(fleet.durations.mean() / fleet.durations[launched[events // 4 :]].mean())


def test_idle_sampling_favours_fast_devices_only_in_a_small_population() -> None:
    cpu = resolve("preset=cpu")
    hi = max(cpu["sim"]["concurrency"])
    small, large = idle_launch_bias(2 * hi, hi), idle_launch_bias(cpu["data"]["num_clients"], hi)
    assert small > 1.4 and large < 1.1  # 2C clients: ~1.6x throughput from fast devices


def records() -> list[dict]:
    folder = ROOT / "leaderboards" / "records" / "asyncfl"
    recs = [json.loads(p.read_text()) for p in sorted(folder.glob("**/*.json"))] if folder.is_dir() else []
    return [r for r in recs if r.get("preset") == "cpu" and "schema" in r]


@pytest.mark.skipif(not records(), reason="no committed cpu records of asyncfl")
def test_no_published_lr_sits_on_its_grid_edge() -> None:
    for rec in records():
        arms = rec["config"]["methods"][rec["method"]]["arms"]
        for key, lr in rec["metrics"].items():
            if key.startswith("test/lr_") and key != "test/lr_edges":
                label = key.removeprefix("test/lr_")
                momentum = rec["metrics"][f"test/momentum_{label}"]
                grid = next(a["lr_grid"] for a in arms if math.isclose(a["momentum"], momentum, rel_tol=1e-6))
                where = f"{rec['method']} seed {rec['seed']} {label}: lr {lr} of {grid}"
                assert len(grid) >= 3 and grid[0] < lr < grid[-1], where
        assert rec["metrics"]["test/lr_edges"] == 0


def test_local_training_does_not_depend_on_batching(smoke) -> None:
    cfg, fed, x0 = smoke
    trainer = LocalTrainer(fed, net(), cfg["client"], seed=3)
    clients, serials = np.array([4, 17, 9]), np.array([0, 2, 1])
    together = trainer.train(clients, serials, x0)
    alone = torch.cat([trainer.train(clients[i : i + 1], serials[i : i + 1], x0) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6) and together.abs().sum() > 0


def test_closed_form_logreg_sgd_matches_autograd(smoke) -> None:
    cfg, fed, x0 = smoke
    fast, slow = net(), net()
    slow.logreg = False  # the generic vmap(grad) path
    x, y, mask = LocalTrainer(fed, fast, cfg["client"], seed=1).batch_of(np.array([3, 8]), np.array([0, 4]))
    mask[1, -1] = 0.0  # a padded step changes nothing in either path
    a, b = fast.local_sgd(x0, x, y, mask, 0.05), slow.local_sgd(x0, x, y, mask, 0.05)
    assert fast.logreg and torch.allclose(a, b, atol=1e-6) and a.abs().max() > 1e-3


def test_dirichlet_partition_is_non_iid_csr() -> None:
    labels = np.repeat(np.arange(10), 100)
    d = {"num_clients": 50, "examples_per_client": 20, "partition": "dirichlet", "alpha": 0.1}
    index, offsets = partition(labels, d, np.random.default_rng(0))
    assert offsets[0] == 0 and (np.diff(offsets) == 20).all() and len(index) == 1000
    dominant = [
        np.bincount(labels[index[a:b]]).max() / 20 for a, b in zip(offsets, offsets[1:], strict=False)
    ]
    assert np.mean(dominant) > 0.6  # alpha 0.1: most of a client's examples share one label
    shards = {**d, "partition": "shards", "shards_per_client": 2}
    index, offsets = partition(labels, shards, np.random.default_rng(0))
    assert len(set(index.tolist())) == 1000  # every example once
    assert max(len(set(labels[index[a:b]])) for a, b in zip(offsets, offsets[1:], strict=False)) <= 2


def test_clock_orders_events_and_sync_round_waits_for_the_kth() -> None:
    fleet = Fleet(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), np.random.default_rng(0))
    clock = EventClock(fleet)
    clock.launch(np.array([0, 2, 3]), version=0)
    assert fleet.busy[[0, 2, 3]].all()
    finish = sorted((t, c) for t, _, c, _, _ in clock.heap)
    assert [clock.pop()[0] for _ in range(3)] == [c for _, c in finish] and clock.now == finish[-1][0]
    idle = fleet.pick_idle(5)
    assert sorted(idle.tolist()) == [0, 1, 2, 3, 4]
    done, duration = sync_round(np.array([0, 1, 2, 4]), np.array([5.0, 1.0, 3.0, 4.0]), goal=3)
    assert sorted(done.tolist()) == [1, 2, 4] and duration == 4.0


def test_every_participation_draws_its_own_duration_around_the_devices_mean() -> None:
    """As in FLSim, a device's duration is drawn anew for every participation (mean: the device's);
    with equal mean speeds (sigma 0) the reports of one launch wave still spread out in time."""
    rng = np.random.default_rng(0)
    means = device_durations(np.full(1000, 30), 1, 0.0, rng)
    fleet = Fleet(means, rng)
    assert np.allclose(means, 30.0)
    draws = np.stack([fleet.draw(np.arange(1000)) for _ in range(20)])
    assert abs(draws.mean() / 30.0 - 1) < 0.02 and 0.7 < draws.std() / draws.mean() < 0.82
    clock = EventClock(fleet)
    clock.launch(np.arange(1000), version=0)
    times = sorted(t for t, *_ in clock.heap)
    assert len(set(times)) == 1000 and times[-1] > 3 * times[len(times) // 2]
    one = EventClock(Fleet(np.full(3, 30.0), np.random.default_rng(1)))
    finishes = []
    for _ in range(50):  # the scalar hot path draws too
        one.launch(np.array([0]), version=0)
        start = one.now
        one.pop()
        finishes.append(one.now - start)
    assert len(set(finishes)) == 50 and 20 < np.mean(finishes) < 40


def test_device_speeds_vary_with_the_seed_and_are_shared_by_the_methods(smoke) -> None:
    cfg, fed, x0 = smoke
    setting = Setting(8, 1.0, 2)

    def speeds(algorithm: str, seed: int) -> np.ndarray:
        sim = simulation({**cfg, "seed": seed}, algorithm, fed, net(), x0, setting, "sgd", 1.0, 0.0)
        return sim.fleet.durations

    assert np.array_equal(speeds("fedbuff", 0), speeds("sync", 0))
    assert np.array_equal(speeds("fedbuff", 0), speeds("fedasync", 0))
    assert not np.array_equal(speeds("fedbuff", 0), speeds("fedbuff", 1))


def test_smoke_run_logs_every_study(bench_run) -> None:
    code, record = bench_run("asyncfl", "preset=smoke", "method=fedbuff")
    assert code == 0 and record["status"] == "ok", record["error"]
    m = record["metrics"]
    for key in ("time_c2", "time_c8", "time_sigma0", "time_sigma1", "time_k2", "idle_bias", "lr_edges"):
        assert f"test/{key}" in m, key
    assert m["test/time_sigma1"] == m["test/time_c8"] == m["test/time_k10"]  # one shared simulation
    assert 0 < m["test/fast_share"] < 1 and m["test/lr_c8"] in (0.5, 1.0, 2.0)
    assert math.isclose(m["test/log_time_c8"], math.log(m["test/time_c8"]), rel_tol=1e-6)
    assert math.isclose(m["test/log_scaling"], m["test/log_time_c2"] - m["test/log_time_c8"], rel_tol=1e-6)


def test_async_and_sync_search_the_same_momentum_arms_on_grids_of_one_width() -> None:
    """FedBuff and FedAsync get the momentum-0.9 arm sync_best has (FLSim's FedBuff example runs
    server momentum 0.9), and every arm's grid spans the same number of factor-2 steps."""
    methods = resolve("preset=cpu")["methods"]
    momenta = {name: sorted(a["momentum"] for a in spec["arms"]) for name, spec in methods.items()}
    assert momenta["fedbuff"] == momenta["fedasync"] == momenta["sync_best"] == [0.0, 0.9]
    grids = [a["lr_grid"] for spec in methods.values() for a in spec["arms"]]
    assert {len(g) for g in grids} == {10}
    assert all(np.allclose(np.diff(np.log2(g)), 1.0) for g in grids)


def test_a_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(smoke, tmp_path: Path) -> None:
    _, fed, _ = smoke  # the federation of the smoke preset's data and seed
    cfg = resolve("preset=smoke", "method=fedbuff")

    def method() -> FederatedMethod:
        torch.manual_seed(0)
        module = FederatedMethod(cfg, algorithm="fedbuff", **cfg["methods"]["fedbuff"])
        datamodule = FederatedDataModule(cfg)
        datamodule.fed = fed
        module.setup(datamodule)
        return module

    whole, steps = method(), 1
    while not whole.step():
        steps += 1
    part = method()
    for _ in range(steps // 2):
        assert not part.step()
    finished = sum(len(w.done) for walks in part.walks.values() for w in walks)
    assert finished and part.sim.version > 0 and part.sim.deltas  # mid-simulation, some done
    part.save(tmp_path / "loop.ckpt")
    resumed = method()
    resumed.restore(tmp_path / "loop.ckpt")
    left = 1
    while not resumed.step():
        left += 1
    assert left == steps - steps // 2
    assert resumed.results() == whole.results() and torch.equal(resumed.flat.flatten(), whole.flat.flatten())


def test_impossible_sync_over_selection_is_refused(bench_run, capsys) -> None:
    args = ("preset=smoke", "method=fedavg", "sim.concurrency=[80]", "sim.horizon=[6.0]")
    code, _ = bench_run("asyncfl", *args)
    assert code == 2 and "raise data.num_clients" in capsys.readouterr().err


def test_missing_real_root_is_one_clear_error(tmp_path: Path) -> None:
    cfg = resolve("preset=smoke", "data.source=real", f"data.root={tmp_path}")
    with pytest.raises(BenchError, match="LEAF"):
        FederatedDataModule(cfg).setup()
    cfg = resolve("preset=smoke", "data.source=real", "data.dataset=cifar10", f"data.root={tmp_path}")
    with pytest.raises(BenchError, match="CIFAR-10 not found"):
        FederatedDataModule(cfg).setup()


def test_ray_engine_without_ray_says_so(bench_run, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # importing it then raises ImportError
    code, _ = bench_run("asyncfl", "preset=smoke", "method=fedbuff", "sim.engine=ray")
    assert code == 2 and "pip install ray" in capsys.readouterr().err


def test_ray_workers_give_the_local_result(smoke) -> None:
    ray = pytest.importorskip("ray")
    cfg, fed, x0 = smoke
    client = cfg["client"] | {"ray_workers": 1, "ray_chunk": 2}
    clients, serials = np.array([4, 17, 9]), np.array([0, 2, 1])
    try:
        remote = RayTrainer(fed, net(), client, seed=3).train(clients, serials, x0)
    finally:
        ray.shutdown()
    local = LocalTrainer(fed, net(), client, seed=3).train(clients, serials, x0)
    assert remote.abs().sum() > 0 and torch.equal(remote, local)


REAL_SMALL = ["preset=smoke", "data.source=real", "data.val_size=5", "sim.concurrency=[2, 4]"]


def test_femnist_leaf_json_runs_end_to_end(bench_run, tmp_path: Path) -> None:
    root = write_leaf(tmp_path / "femnist")
    args = [f"data.root={root}", "data.num_classes=62", "data.num_clients=6"]
    code, record = bench_run("asyncfl", "method=fedbuff", *REAL_SMALL, *args)
    assert code == 0 and record["status"] == "ok", record["error"]
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0 and record["cost"]["params"] == 784 * 62 + 62
    cfg = resolve(*REAL_SMALL, *args, "data.num_clients=7")
    with pytest.raises(BenchError, match="has 6 writers"):
        FederatedDataModule(cfg).setup()


def test_cifar10_batches_run_end_to_end(bench_run, tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "cifar", per_batch=20)
    args = [f"data.root={root}", "data.dataset=cifar10", "data.input_dim=3072", "data.num_clients=20"]
    code, record = bench_run("asyncfl", "method=fedavg", *REAL_SMALL, *args, "data.examples_per_client=5")
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["cost"]["params"] == 3072 * 10 + 10
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    cfg = resolve(*REAL_SMALL, *args)
    with pytest.raises(BenchError, match="not a CIFAR-10 python batch"):
        FederatedDataModule(cfg).setup()


def test_batched_accuracies_equal_one_at_a_time(smoke) -> None:
    _, fed, x0 = smoke
    flats = torch.stack([x0, x0 * 2 + 0.01, -x0])
    one = net()
    assert one.accuracies(flats, fed.x_test, fed.y_test, chunk=150) == pytest.approx(
        [one.accuracy(f, fed.x_test, fed.y_test) for f in flats], abs=1e-9
    )
