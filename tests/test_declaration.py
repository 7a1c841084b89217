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
from tests.toy_task import write_toy

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


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy task as a folder under ``BENCH_TASK_PATH``; nothing it imports outlives the test."""
    folder = write_toy(tmp_path / "tasks")
    monkeypatch.setenv("BENCH_TASK_PATH", str(folder.parent))
    monkeypatch.setattr(sys, "path", list(sys.path))
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()
    yield folder
    for module in [m for m in sys.modules if m.split(".")[0] == "toy"]:
        del sys.modules[module]
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()


def test_a_new_task_is_its_folder_and_presets(toy: Path, tmp_path: Path, bench_run, capsys) -> None:
    task = registry.get_task("toy")
    # the README's row
    assert main(["list", "--markdown"]) == 0
    assert task_table([task]).splitlines()[-1] in capsys.readouterr().out
    # the sweep: the preset's methods in its order, its seeds; the W&B spec from the Task
    assert axes("toy", []) == {"preset": ["cpu"], "method": ["mean", "fit"], "seed": [0, 1]}
    assert len(expand("toy", ["preset=smoke"])) == 4
    assert main(["sweep", "toy", "--wandb-spec"]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)
    assert spec["metric"] == {"name": "test/mse", "goal": "minimize"}
    assert spec["command"] == ["bench", "run", "toy", "${args_no_hyphens}"]
    # the Makefile asks the registry which system datasets to install
    assert system.main(["toy"]) == 0
    assert capsys.readouterr().out.split() == system.missing(["fashion-mnist"])
    out = make("bench", "TASK=toy", "APT=", f"BENCH_FASHION_MNIST={tmp_path / 'none'}", dry=False)
    assert out.returncode != 0 and "apt-get install dataset-fashion-mnist" in out.stdout, out.stdout
    # the DDP batch key is a key of its presets
    assert _value(config.resolve("toy", ["preset=smoke"]), task.ddp_batch) == 8
    # a method's identity (Method.kwargs) and its tuned hyper-parameter (methods.fit) both reach it
    code, record = bench_run("toy", "preset=smoke", "method=fit", "logger=none")
    assert code == 0 and record["status"] == "ok", record["error"]
    # the paper preset on its fixture, as the slow tests and `make gpu-check` run every task
    args = paper_args("toy", tmp_path / "data")
    assert f"data.root={tmp_path / 'data'}" in args and "trainer.max_epochs=1" in args
    code, record = bench_run("toy", "method=fit", *args)
    assert code == 0 and record["status"] == "ok" and record["preset"] == "paper", record["error"]
    assert record["config"]["data"]["source"] == "real"
