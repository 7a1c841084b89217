"""nngraph: the weight graph of hand-built layers, scipy vs networkx, feature assembly, the real
CIFAR-10 format on a tiny fixture, and the errors of bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from bench.config import resolve
from bench.datasets.formats import write_cifar10, write_mnist
from bench.errors import BenchError
from bench.tasks.nngraph import features, graphs, images, perf


def tiny_net() -> list[np.ndarray]:
    """1 input channel -> conv 2 filters (2x2) -> FC of 3 neurons over 2 channels x 2 positions
    -> FC of 2 outputs."""
    conv = np.array([[[[3.0, 4.0], [0.0, 0.0]]], [[[1.0, 0.0], [0.0, 0.0]]]])  # norms 5, 1
    # Flatten order is channel-major: columns 0-1 are channel 0, columns 2-3 channel 1.
    fc1 = np.array([[3.0, -4.0, 0.0, 0.0], [0.0, 0.0, 6.0, 8.0], [1.0, 0.0, 0.0, -1.0]])
    fc2 = np.array([[1.0, -2.0, 0.0], [0.0, 0.5, -3.0]])
    return [conv, fc1, fc2]


def test_blocks_follow_the_papers_edge_weights() -> None:
    bs = graphs.blocks(tiny_net(), in_channels=1)
    np.testing.assert_allclose(bs[0], [[5.0], [1.0]])
    np.testing.assert_allclose(bs[1], [[5.0, 0.0], [0.0, 10.0], [1.0, 1.0]])
    np.testing.assert_allclose(bs[2], [[1.0, 2.0, 0.0], [0.0, 0.5, 3.0]])
    assert graphs.layer_sizes(bs) == [1, 2, 3, 2]


def test_weighted_degree_of_a_hand_built_network() -> None:
    a = graphs.adjacency(graphs.blocks(tiny_net(), in_channels=1))
    assert a.shape == (8, 8) and (a != a.T).nnz == 0
    # by hand: node = its edges to the layer before + its edges to the layer after
    expected = [5 + 1, 5 + (5 + 0 + 1), 1 + (0 + 10 + 1), 5 + 1, 10 + (2 + 0.5), 2 + 3, 1 + 2, 0.5 + 3]
    np.testing.assert_allclose(graphs.degree(a), expected)
    # an edge of weight exactly zero is no edge: 2 conv, 4 of 6 fc1 and 4 of 6 fc2 edges remain
    assert a.nnz // 2 == 2 + 4 + 4


def test_scipy_centrality_equals_networkx() -> None:
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(4, 3, 3, 3)), rng.normal(size=(5, 4 * 4)), rng.normal(size=(3, 5))]
    a = graphs.adjacency(graphs.blocks(weights, in_channels=3))
    deg, cen = perf.networkx_stats(perf.to_networkx(a))
    np.testing.assert_allclose(graphs.degree(a), deg, rtol=1e-12)
    np.testing.assert_allclose(graphs.eigenvector_centrality(a), cen, atol=1e-5)
    assert np.linalg.norm(cen) == pytest.approx(1.0)


def test_layer_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="does not follow"):
        graphs.blocks([np.ones((2, 1, 3, 3)), np.ones((4, 5))], in_channels=1)


def test_design_holds_levels_and_changes_since_epoch_one() -> None:
    n, s = 3, 4
    rng = np.random.default_rng(1)
    tables = {
        "final_acc": np.array([0.1, 0.5, 0.9]),
        "degree": rng.normal(size=(n, s, 2)),
        "curve": rng.normal(size=(n, s, 3)),
        "hparams": rng.normal(size=(n, 1, 6)),
    }
    x = features.design(tables, ("degree",), k=3, delta_from=1)
    assert x.shape == (n, 3 * 2 + 2 * 2)
    np.testing.assert_allclose(x[:, 6:8], tables["degree"][:, 1] - tables["degree"][:, 0])
    assert features.design(tables, ("degree",), k=1, delta_from=1).shape == (n, 2)
    np.testing.assert_allclose(features.design(tables, ("epoch_acc",), 2, 1)[:, 0], tables["curve"][:, 1, 0])
    h = features.design(tables, ("hparams",), 1, 1)
    np.testing.assert_array_equal(h, features.design(tables, ("hparams",), 4, 1))
    assert list(features.labels(tables["final_acc"])) == [0, 0, 1]


def test_the_max_features_grid_is_chosen_out_of_bag_on_the_training_folds_only(monkeypatch) -> None:
    """Every method gets the same grid; each outer fold picks from it on its training folds (the
    rows it is judged on never reach the choice), and a signal hidden among noise features picks
    more features per split than one."""
    from bench.tasks.nngraph import predict

    grid = [1, "sqrt", 0.3, 1.0]
    assert predict.candidates(grid, 6) == [1, 2, 6] and predict.candidates(grid, 378) == [1, 19, 113, 378]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 30))
    x[:, 0] = np.arange(120)  # a row id, and the one informative feature
    acc = (x[:, 0] >= 60) + 0.01 * rng.normal(size=120)
    good = features.labels(acc)
    seen: list[np.ndarray] = []
    tuned = predict.tuned

    def spy(p: dict, seed: int, xf: np.ndarray, y: np.ndarray) -> tuple:
        seen.append(xf[:, 0])
        return tuned(p, seed, xf, y)

    monkeypatch.setattr(predict, "tuned", spy)
    p = {"kind": "forest", "trees": 30, "folds": 4, "max_features": grid}
    prob, _, _, chosen = predict.out_of_fold(x, good, acc, p, 0)
    folds = StratifiedKFold(4, shuffle=True, random_state=0).split(x, good)
    for (_, held), rows in zip(folds, seen, strict=True):
        assert not set(held) & set(rows.astype(int))
    assert chosen["max_features"] > 1 / 30 and chosen["max_features_open_edge"] == 0.0
    assert ((prob >= 0.5) == good).mean() > 0.9


def test_a_predictor_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:

    from bench.tasks.nngraph.method import Predictor

    n_snaps = 3
    cfg = resolve("nngraph", ["preset=smoke", "population.epochs=3", f"population.snapshots={n_snaps}"])
    rng = np.random.default_rng(0)
    acc = rng.uniform(0.1, 0.9, 16)
    tables = {"final_acc": acc, "diverged": np.zeros(16, bool), "redraws": np.zeros(1)}
    for family in ("degree", "centrality"):
        tables[family] = rng.normal(size=(16, n_snaps, 7)) + acc[:, None, None] * np.arange(n_snaps)[:, None]
    datamodule = SimpleNamespace(tables=tables)

    def predictor() -> Predictor:
        method = Predictor(cfg, families=["degree", "centrality"])
        method.setup(datamodule)
        return method

    whole = predictor()
    assert [whole.step() for _ in range(n_snaps)] == [False, False, True]
    part = predictor()
    assert not part.step()
    part.save(tmp_path / "loop.ckpt")
    resumed = predictor()
    resumed.restore(tmp_path / "loop.ckpt")
    assert [resumed.step() for _ in range(n_snaps - 1)] == [False, True]  # k = 2, 3: not from k = 1
    assert resumed.results() == whole.results() and resumed.cost() == whole.cost()
    assert whole.results()["acc_k3"] > 0.5


def test_real_cifar_runs_end_to_end(bench_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    root = write_cifar10(tmp_path / "data")
    code, record = bench_run(
        "nngraph",
        "preset=smoke",
        "method=degree",
        "data.source=cifar10",
        f"data.root={root}",
        "data.val_size=12",
        "data.test_size=12",
        "data.train_size=0",
        "population.arch=lenet5",
    )
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert record["config"]["data"]["source"] == "cifar10"
    assert set(record["artifacts"]) == {"nngraph/population", "nngraph/summaries"}
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0


@pytest.mark.parametrize("arch", ["lenet5", "vgg", "alexnet", "resnet"])
def test_every_architecture_is_a_layered_graph(arch: str) -> None:
    import torch

    from bench.tasks.nngraph import nets

    spec = resolve("nngraph", ["preset=paper"])["archs"][arch]
    torch.manual_seed(0)
    net = nets.build(spec, (3, 32, 32), 10, width=0.25 if arch != "lenet5" else 1.0, dropout=0.5)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    weights = [layer.weight.detach().numpy() for layer in net.layers()]
    sizes = graphs.layer_sizes(graphs.blocks(weights, in_channels=3))
    assert sizes[0] == 3 and sizes[-1] == 10
    if arch == "lenet5":  # LeNet-5 as the paper trains it: 62,006 parameters
        assert sizes == [3, 6, 16, 120, 84, 10] and sum(p.numel() for p in net.parameters()) == 62006
    if arch == "resnet":  # stem + 9 blocks x 2 convs + classifier; shortcuts are not graph layers
        assert len(sizes) == 1 + 1 + 18 + 1


def test_mnist_resnet_population_runs_end_to_end(bench_run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    root = write_mnist(tmp_path / "mnist")
    x, y = images._mnist(str(root), "test")
    assert x.shape == (40, 1, 28, 28) and y.dtype == np.int64 and 0.0 <= x.min() <= x.max() <= 1.0
    code, record = bench_run(
        "nngraph",
        "preset=smoke",
        "method=degree",
        "data.source=mnist",
        f"data.root={root}",
        "data.val_size=8",
        "data.test_size=16",
        "population.arch=resnet",
        "archs.resnet.stages=[2,4]",
        "archs.resnet.blocks=1",
    )
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0


def test_missing_mnist_and_unknown_arch_are_one_clear_error(tmp_path: Path) -> None:
    cfg = resolve("nngraph", ["preset=smoke", "data.source=mnist", f"data.root={tmp_path}"])
    with pytest.raises(BenchError, match="no MNIST train IDX files"):
        images.load(cfg["data"])
    from bench.tasks.nngraph import population

    cfg = resolve("nngraph", ["preset=smoke", "population.arch=vgg16"])
    with pytest.raises(BenchError, match="not in archs: choose one of lenet, lenet5, vgg"):
        population.folder(cfg)


def test_impossible_population_is_refused(bench_run, capsys: pytest.CaptureFixture) -> None:
    code, record = bench_run("nngraph", "preset=smoke", "population.snapshots=5")
    assert code == 2 and record is None
    assert "population.snapshots=5" in capsys.readouterr().err


def test_population_trains_where_the_trainer_would() -> None:
    import torch

    from bench.tasks.nngraph import population

    assert population.device("cpu").type == "cpu"
    assert population.device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def _tiny_splits(n: int = 32):
    """Random 1x8x8 images of 4 classes, the same for train, val and test."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 1, 8, 8)).astype(np.float32), rng.integers(0, 4, n)
    return images.Splits(train=(x, y), val=(x, y), test=(x, y), black=np.array([-1.0], np.float32))


def _tiny(lr: float, diverged: str = "replace") -> tuple:
    """(a tiny LeNet, its hyperparameters, the population section) for population.train_one."""
    import torch

    from bench.tasks.nngraph import population

    cfg = resolve("nngraph", ["preset=smoke", f"population.diverged={diverged}"])
    h = {"lr": lr, "width": 1.0, "init_scale": 1.0, "batch_size": 8, "weight_decay": 0.0, "dropout": 0.0}
    torch.manual_seed(0)
    return population.make_net(cfg["archs"]["lenet"], (1, 8, 8), 4, h), h, cfg["population"]


def test_snapshot_k_holds_the_weights_after_epoch_k() -> None:
    """The paper's "k epochs" start at the end of epoch 1 (the official GenGraph driver's [1:]
    slice drops the FINAL checkpoint, which sorts first, not epoch 1): no offset by one."""
    from bench.tasks.nngraph import population

    net, h, p = _tiny(0.05)
    init = [layer.weight.detach().numpy().copy() for layer in net.layers()]
    out = population.train_one(net, h, {**p, "epochs": 1, "snapshots": 1}, _tiny_splits(), 0, aug=False)
    after = [layer.weight.detach().numpy() for layer in net.layers()]
    assert len(out["snaps"]) == 1 and not out["diverged"]
    for snap, w, w0 in zip(out["snaps"][0], after, init, strict=True):
        np.testing.assert_array_equal(snap, w)
        assert not np.allclose(snap, w0)


def test_a_diverged_network_is_replaced_or_kept_as_the_official_driver_keeps_it() -> None:
    from bench.tasks.nngraph import population

    splits = _tiny_splits()
    net, h, p = _tiny(1e9)
    assert population.train_one(net, h, p, splits, 0, aug=False) is None
    net, h, p = _tiny(1e9, diverged="keep")
    init = [layer.weight.detach().numpy().copy() for layer in net.layers()]
    out = population.train_one(net, h, p, splits, 0, aug=False)
    assert out["diverged"] and len(out["snaps"]) == p["snapshots"]
    for snap in out["snaps"]:  # it diverged in epoch 1: every snapshot is its last finite weights
        for w, w0 in zip(snap, init, strict=True):
            np.testing.assert_array_equal(w, w0)
    assert np.isfinite(out["val_loss"]).all() and np.isfinite(out["train_loss"]).all()
    assert out["final_acc"] < 0.5  # non-finite logits answer one class


def test_weights_gone_non_finite_at_an_epochs_last_step_are_a_divergence() -> None:
    """One step per epoch at an infinite lr: the epoch's loss (of the weights before the step) is
    finite, the weights after it are not."""
    from bench.tasks.nngraph import population

    splits = _tiny_splits()
    net, h, p = _tiny(float("inf"))
    h["batch_size"] = len(splits.train[0])
    assert population.train_one(net, h, {**p, "epochs": 1, "snapshots": 1}, splits, 0, aug=False) is None
    net, h, p = _tiny(float("inf"), diverged="keep")
    h["batch_size"] = len(splits.train[0])
    init = [layer.weight.detach().numpy().copy() for layer in net.layers()]
    out = population.train_one(net, h, p, splits, 0, aug=False)
    assert out["diverged"] and np.isfinite(out["train_loss"]).all()
    for snap in out["snaps"]:
        for w, w0 in zip(snap, init, strict=True):
            np.testing.assert_array_equal(w, w0)


def test_the_reduced_presets_read_no_system_dataset() -> None:
    """``make bench`` installs Task.datasets for cpu and smoke: both read sklearn's bundled digits."""
    from bench.tasks.nngraph.task import TASK

    assert TASK.datasets == ()
    for preset in ("smoke", "cpu"):
        assert resolve("nngraph", [f"preset={preset}"])["data"]["source"] == "digits"


def test_the_grid_population_takes_every_cell_and_reports_its_diverged(
    bench_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.tasks.nngraph import population, summaries

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    grid = {"lr": [0.05, 1.0e9], "dropout": [0.0, 0.5]}
    cells = population.grid_cells(grid)
    assert cells[1] == {"lr": 0.05, "dropout": 0.5} and len(cells) == 4
    cfg = resolve("nngraph", ["preset=smoke", "population.diverged=keep"])
    cfg["population"]["grid"] = grid
    tables = summaries.get(cfg)
    hp = tables["hparams"][:, 0]
    np.testing.assert_allclose(10 ** hp[:, 0], [c["lr"] for c in cells * 2])
    np.testing.assert_allclose(hp[:, 5], [c["dropout"] for c in cells * 2])
    assert not tables["diverged"][hp[:, 0] < 0].any() and tables["diverged"].any()
    assert tables["redraws"][0] == 0 and all(np.isfinite(t).all() for t in tables.values())
    cfg["population"]["size"] = 6
    with pytest.raises(BenchError, match="not a multiple of the grid's 4 cells"):
        population.folder(cfg)


def test_a_run_reports_the_base_rate_and_the_diverged_draws(bench_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    lr = "population.grid.lr=[0.05,1000000000.0]"  # half the networks diverge
    code, record = bench_run("nngraph", "preset=smoke", "method=hparams", lr, "population.diverged=keep")
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert record["metrics"]["test/base_rate"] == 0.5 and record["metrics"]["test/diverged"] > 0


def test_augmentation_crops_a_padded_image_and_flips_it() -> None:
    import torch

    from bench.tasks.nngraph import population

    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3).repeat(64, 1, 1, 1)
    out = population.augment(x, torch.tensor([-1.0]), torch.Generator().manual_seed(0), pad=1)
    assert out.shape == x.shape
    for img in out[:, 0]:
        inside = img[img > 0]  # a crop keeps a 2x2 to 3x3 block of the image, the rest is border
        assert len(inside) >= 4 and set((img[img <= 0]).tolist()) <= {-1.0}
    flipped = (out[:, 0, 1, 1] == 5.0) & (out[:, 0, 1, 0] == 6.0)
    assert 0 < int(flipped.sum()) < 64  # centred crops, flipped and not
    assert int((out[:, 0, 1, 1] == 5.0).sum()) < 64  # and shifted ones
