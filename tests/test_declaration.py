"""The Task is the one declaration: everything bench knows about a task (its methods and their
arguments, fixture, system datasets, DDP batch key, sweep, README row) comes from its folder and
its presets. Checked on every registered task, and proved on a toy task that exists only as a
folder and presets outside the repository (``BENCH_TASK_PATH``)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest
import yaml

from bench import config, provenance, registry
from bench.cli import main, task_table
from bench.datasets import system
from bench.paper_preset import paper_args
from bench.sweep import axes, expand
from tests.test_launch import make

REPO = Path(__file__).resolve().parent.parent
OWN = sorted(registry.tasks())
# the one task bench's core names: gpu-check's DDP run, a choice of what to check
CORE_NAMES = {("gpu_check.py", "emo")}


def _value(cfg: dict, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("name", OWN)
def test_fixture_datasets_and_ddp_batch_come_from_the_task(name: str) -> None:
    task = registry.get_task(name)
    if task.fixture:
        module, _, function = task.fixture.partition(":")
        assert callable(registry.load(task.fixture)), task.fixture
        where = Path(importlib.import_module(module).__file__).resolve().parent
        assert where == registry.folder(name), f"{task.fixture} lies outside the task's folder"
    assert set(task.datasets) <= set(system.DATASETS), f"unknown system datasets: {task.datasets}"
    if task.ddp_batch:
        batch = _value(config.resolve(name, ["preset=smoke"]), task.ddp_batch)
        assert isinstance(batch, int) and batch >= 1, (task.ddp_batch, batch)


@pytest.mark.parametrize("name", OWN)
def test_a_method_argument_lives_in_one_place(name: str) -> None:
    """``Method.kwargs`` say what a method is; the preset's ``methods.<name>`` section holds what a
    preset tunes. A key in both would be two answers to one question."""
    task = registry.get_task(name)
    methods = {m.name: m for m in task.methods}
    for preset in config.presets(name):
        sections = config.read_preset(name, preset).get("methods") or {}
        assert set(sections) <= set(methods), (
            f"{preset}: methods: names no method {set(sections) - set(methods)}"
        )
        for method, section in sections.items():
            both = set(methods[method].kwargs) & set(section or {})
            assert not both, f"{name}/{method}: {both} in Method.kwargs and in {preset}.yaml's methods:"
        assert config.preset_methods(name, preset)  # its sweep: names methods of the task


def test_the_readme_table_is_the_registry() -> None:
    own = [entry.task for entry in registry.found().values() if entry.origin == "bench"]
    assert task_table(own) in (REPO / "README.md").read_text(), "run `bench list --markdown` into README"


def test_bench_core_and_the_makefile_name_no_task() -> None:
    core = [p for p in (REPO / "bench").rglob("*.py") if "tasks" not in p.relative_to(REPO / "bench").parts]
    named = {
        (path.name, node.value)
        for path in core
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in OWN
    }
    assert named <= CORE_NAMES, named - CORE_NAMES
    lines = (REPO / "Makefile").read_text().splitlines()
    code = [ln for ln in lines if not ln.startswith(("#", "TASK ?=")) and "##" not in ln]
    assert not [ln for ln in code if set(ln.replace("=", " ").split()) & set(OWN)]


TOY = {
    "task.py": """
from bench.task import Method, Task

TASK = Task(
    name="toy_line",
    paper="A line through noisy points (a task that is only its folder and presets)",
    url="https://example.org/toy-line",
    datamodule="toy_line.data:Points",
    primary="test/mse",
    higher_is_better=False,
    methods=(
        Method("fit", "toy_line.method:Fit", "a linear model fitted by SGD", {"bias": True}),
        Method("mean", "toy_line.method:Mean", "the training targets' mean"),
    ),
    fixture="toy_line.fixture:fixture",
    datasets=("fashion-mnist",),
    ddp_batch="data.batch_size",
)
""",
    "data.py": """
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


class Points(L.LightningDataModule):
    def __init__(self, cfg):
        super().__init__()
        self.data = cfg["data"]

    def setup(self, stage=None):
        if self.data["source"] == "real":
            xy = torch.tensor(np.loadtxt(Path(self.data["root"]) / "points.csv", delimiter=","))
        else:
            x = torch.randn(2 * self.data["n"], 1, generator=torch.Generator().manual_seed(0))
            xy = torch.cat([x, 3 * x + 1], 1)
        xy, half = xy.float(), len(xy) // 2
        self.train = TensorDataset(xy[:half, :1], xy[:half, 1:])
        self.test = TensorDataset(xy[half:, :1], xy[half:, 1:])

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.data["batch_size"], shuffle=True)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.data["batch_size"])
""",
    "method.py": """
import torch
from torchmetrics import MeanSquaredError

from bench.method import LoopMethod, TrainedMethod


class Fit(TrainedMethod):
    def __init__(self, cfg, bias, lr):
        super().__init__(cfg)
        self.net, self.lr, self.mse = torch.nn.Linear(1, 1, bias=bias), lr, MeanSquaredError()

    def training_step(self, batch, _):
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def test_step(self, batch, _):
        self.mse(self.net(batch[0]), batch[1])
        self.log("test/mse", self.mse)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Mean(LoopMethod):
    def setup(self, datamodule):
        self.train, self.test = datamodule.train, datamodule.test

    def step(self):
        self.mean = self.train.tensors[1].mean()
        return True

    def results(self):
        return {"mse": float(((self.test.tensors[1] - self.mean) ** 2).mean())}
""",
    "fixture.py": """
import numpy as np


def fixture(root):
    x = np.linspace(-1, 1, 20)
    np.savetxt(root / "points.csv", np.stack([x, 2 * x], 1), delimiter=",")
    return [f"data.root={root}"]
""",
    "configs/cpu.yaml": """
data: {source: bundled, root: null, n: 32, batch_size: 8}
methods:
  fit: {lr: 0.1}
trainer: {max_epochs: 3}
sweep: {methods: [mean, fit]}     # the baseline first
seeds: [0, 1]
""",
    "configs/smoke.yaml": "inherit: cpu\ndata: {n: 16}\ntrainer: {max_epochs: 1}\n",
    "configs/paper.yaml": "inherit: cpu\ndata: {source: real, n: 64}\ntrainer: {max_epochs: 5}\n",
}


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy task as a folder under ``BENCH_TASK_PATH``; nothing it imports outlives the test."""
    folder = tmp_path / "tasks" / "toy_line"
    for name, text in TOY.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip())
    monkeypatch.setenv("BENCH_TASK_PATH", str(folder.parent))
    monkeypatch.setattr(sys, "path", list(sys.path))
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()
    yield folder
    for module in [m for m in sys.modules if m.split(".")[0] == "toy_line"]:
        del sys.modules[module]
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()


def test_a_new_task_is_its_folder_and_presets(toy: Path, tmp_path: Path, bench_run, capsys) -> None:
    task = registry.get_task("toy_line")
    # the README's row
    assert main(["list", "--markdown"]) == 0
    assert task_table([task]).splitlines()[-1] in capsys.readouterr().out
    # the sweep: the preset's methods in its order, its seeds; the W&B spec from the Task
    assert axes("toy_line", []) == {"preset": ["cpu"], "method": ["mean", "fit"], "seed": [0, 1]}
    assert len(expand("toy_line", ["preset=smoke"])) == 4
    assert main(["sweep", "toy_line", "--wandb-spec"]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)
    assert spec["metric"] == {"name": "test/mse", "goal": "minimize"}
    assert spec["command"] == ["bench", "run", "toy_line", "${args_no_hyphens}"]
    # the Makefile asks the registry which system datasets to install
    assert system.main(["toy_line"]) == 0
    assert capsys.readouterr().out.split() == system.missing(["fashion-mnist"])
    out = make("bench", "TASK=toy_line", "APT=", f"BENCH_FASHION_MNIST={tmp_path / 'none'}", dry=False)
    assert out.returncode != 0 and "apt-get install dataset-fashion-mnist" in out.stdout, out.stdout
    # the DDP batch key is a key of its presets
    assert _value(config.resolve("toy_line", ["preset=smoke"]), task.ddp_batch) == 8
    # a method's identity (Method.kwargs) and its tuned hyper-parameter (methods.fit) both reach it
    code, record = bench_run("toy_line", "preset=smoke", "method=fit", "logger=none")
    assert code == 0 and record["status"] == "ok", record["error"]
    # the paper preset on its fixture, as the slow tests and `make gpu-check` run every task
    args = paper_args("toy_line", tmp_path / "data")
    assert f"data.root={tmp_path / 'data'}" in args and "trainer.max_epochs=1" in args
    code, record = bench_run("toy_line", "method=fit", *args)
    assert code == 0 and record["status"] == "ok" and record["preset"] == "paper", record["error"]
    assert record["config"]["data"]["source"] == "real"
