"""asyncfl: the exactness checks, the partition and clock units, and the real formats (LEAF
FEMNIST JSON, CIFAR-10 python batches) on tiny fixtures written in those formats."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.asyncfl import checks
from bench.tasks.asyncfl.data import FederatedDataModule, build, partition
from bench.tasks.asyncfl.local import LocalTrainer, RayTrainer
from bench.tasks.asyncfl.method import simulation
from bench.tasks.asyncfl.model import FlatNet, build_net
from bench.tasks.asyncfl.simulator import EventClock, Fleet, sync_round
from tests.formats import write_cifar10


@pytest.fixture(scope="module")
def smoke():
    torch.set_num_threads(1)
    cfg = resolve("asyncfl", ["preset=smoke", "method=fedbuff"])
    fed = build(cfg["data"], cfg["seed"])
    torch.manual_seed(0)
    x0 = FlatNet(build_net("logreg", 784, 10, 0)).flatten()
    return cfg, fed, x0


def test_fedbuff_with_k1_is_fedasync_bit_for_bit(smoke) -> None:
    cfg, fed, x0 = smoke
    assert checks.k1_vs_fedasync(cfg, fed, x0) == 0.0
    other = copy.deepcopy(cfg)
    other["checks"]["steps"] = 3

    # The check can fail: FedBuff with K = 2 is not FedAsync.
    def k2(c, *a, **kw):
        c = copy.deepcopy(c)
        c["sim"]["buffer"] = 2
        return simulation(c, *a, **kw)

    sims = [k2(other, "fedbuff", fed, FlatNet(build_net("logreg", 784, 10, 0)), x0, 5, 1.0)]
    sims.append(simulation(other, "fedasync", fed, FlatNet(build_net("logreg", 784, 10, 0)), x0, 5, 1.0))
    for sim in sims:
        for _ in range(6):
            sim.step()
    assert (sims[0].x - sims[1].x).abs().max() > 1e-4


def test_one_client_sequential_is_centralised_sgd(smoke) -> None:
    cfg, fed, x0 = smoke
    assert checks.sequential_vs_sgd(cfg, fed, x0) <= 1e-5
    slower = copy.deepcopy(cfg)
    slower["client"]["lr"] = 0.04  # the reference then trains at 0.04 too: still equal
    assert checks.sequential_vs_sgd(slower, fed, x0) <= 1e-5


def test_local_training_does_not_depend_on_batching(smoke) -> None:
    cfg, fed, x0 = smoke
    trainer = LocalTrainer(fed, FlatNet(build_net("logreg", 784, 10, 0)), cfg["client"], seed=3)
    clients, serials = np.array([4, 17, 9]), np.array([0, 2, 1])
    together = trainer.train(clients, serials, x0)
    alone = torch.cat([trainer.train(clients[i : i + 1], serials[i : i + 1], x0) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6) and together.abs().sum() > 0


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
    assert [clock.pop()[0] for _ in range(3)] == [3, 2, 0] and clock.now == 5.0
    idle = fleet.pick_idle(5)
    assert sorted(idle.tolist()) == [0, 1, 2, 3, 4]
    done, duration = sync_round(fleet, np.array([0, 1, 2, 4]), goal=3)
    assert sorted(done.tolist()) == [1, 2, 4] and duration == 4.0


def test_impossible_sync_over_selection_is_refused(bench_run, capsys) -> None:
    code, _ = bench_run("asyncfl", "preset=smoke", "method=fedavg", "sim.concurrency=[80]")
    assert code == 2 and "raise data.num_clients" in capsys.readouterr().err


def test_missing_real_root_is_one_clear_error(tmp_path: Path) -> None:
    cfg = resolve("asyncfl", ["preset=smoke", "data.source=real", f"data.root={tmp_path}"])
    with pytest.raises(BenchError, match="LEAF"):
        FederatedDataModule(cfg).setup()
    cfg = resolve(
        "asyncfl", ["preset=smoke", "data.source=real", "data.dataset=cifar10", f"data.root={tmp_path}"]
    )
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
    net = FlatNet(build_net("logreg", 784, 10, 0))
    clients, serials = np.array([4, 17, 9]), np.array([0, 2, 1])
    try:
        remote = RayTrainer(fed, net, client, seed=3).train(clients, serials, x0)
    finally:
        ray.shutdown()
    local = LocalTrainer(fed, net, client, seed=3).train(clients, serials, x0)
    assert remote.abs().sum() > 0 and torch.equal(remote, local)


def write_leaf(root: Path, users: int = 6, per_user: int = 12) -> Path:
    """LEAF FEMNIST layout: root/{train,test}/*.json with users, num_samples, user_data."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_user), ("test", per_user // 2)):
        (root / split).mkdir(parents=True)
        names = [f"f{i:04d}_{i:02d}" for i in range(users)]
        blob = {
            "users": names,
            "num_samples": [n] * users,
            "user_data": {
                u: {"x": rng.random((n, 784)).round(3).tolist(), "y": rng.integers(0, 62, n).tolist()}
                for u in names
            },
        }
        (root / split / f"all_data_0_niid_0_keep_0_{split}_9.json").write_text(json.dumps(blob))
    return root


REAL_SMALL = [
    "preset=smoke",
    "data.source=real",
    "data.val_size=5",
    "sim.concurrency=[2,4]",
    "checks.examples=10",
]


def test_femnist_leaf_json_runs_end_to_end(bench_run, tmp_path: Path) -> None:
    root = write_leaf(tmp_path / "femnist")
    args = [f"data.root={root}", "data.num_classes=62", "data.num_clients=6"]
    code, record = bench_run("asyncfl", "method=fedbuff", *REAL_SMALL, *args)
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["claims"]["k1_equals_fedasync"]["holds"]
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0 and record["cost"]["params"] == 784 * 62 + 62
    cfg = resolve("asyncfl", REAL_SMALL + args + ["data.num_clients=7"])
    with pytest.raises(BenchError, match="has 6 writers"):
        FederatedDataModule(cfg).setup()


def test_cifar10_batches_run_end_to_end(bench_run, tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "cifar", per_batch=20)
    args = [f"data.root={root}", "data.dataset=cifar10", "data.input_dim=3072", "data.num_clients=20"]
    code, record = bench_run("asyncfl", "method=fedavg", *REAL_SMALL, *args, "data.examples_per_client=5")
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["cost"]["params"] == 3072 * 10 + 10
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    cfg = resolve("asyncfl", REAL_SMALL + args)
    with pytest.raises(BenchError, match="not a CIFAR-10 python batch"):
        FederatedDataModule(cfg).setup()
