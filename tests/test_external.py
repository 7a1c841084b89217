"""Bench from outside its checkout: a task that lives in another folder (``BENCH_TASK_PATH``) or
another installed distribution (entry points), a method added to a task by an entry point, and
bench itself installed from its wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import config, provenance, registry
from bench.cli import main
from bench.errors import BenchError
from tests.toy_task import write_toy

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch):
    """Each test sees the tasks of its own environment; nothing it imports outlives it."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0].startswith("toy"):
            del sys.modules[name]
    registry.found.cache_clear()
    provenance.fingerprint.cache_clear()


def board(boards: Path) -> dict:
    return json.loads((boards / "toy.json").read_text())


def test_a_task_path_folder_runs_sweeps_and_publishes_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bench_run, runs_dir: Path
) -> None:
    toy = write_toy(tmp_path / "tasks", "toy")
    monkeypatch.setenv("BENCH_TASK_PATH", str(tmp_path / "tasks"))
    assert registry.folder("toy") == toy.resolve()
    assert config.presets("toy") == ["cpu", "paper", "smoke"]
    assert config.resolve("toy", ["preset=smoke"])["trainer"]["max_epochs"] == 1  # inherit:
    assert config.resolve("toy", ["preset=smoke"])["trainer"]["accelerator"] == "cpu"  # base.yaml
    assert [c.id for c in config.preset_claims("toy", "cpu")] == ["fit_beats_mean"]

    code, record = bench_run("toy", "preset=smoke", "method=fit", "logger=none")
    assert code == 0 and record["status"] == "ok" and record["metrics"]["test/mse"] < 10
    assert record["provenance"]["fingerprint"] == provenance.fingerprint("toy")
    (toy / "method.py").write_text((toy / "method.py").read_text().replace("median()", "median() + 1"))
    provenance.fingerprint.cache_clear()
    assert provenance.fingerprint("toy") != record["provenance"]["fingerprint"]  # its own folder counts

    assert main(["sweep", "toy", "preset=cpu", "logger=none", "--jobs", "2"]) == 0
    assert len(list((runs_dir / "toy").glob("*/cpu/*/record.json"))) == 4
    boards = tmp_path / "boards"
    assert main(["publish", "toy", "--out", str(boards), "--allow-dirty"]) == 0
    published = board(boards)
    assert published["task"] == "toy"
    assert "toy" in (boards / "index.md").read_text()
    assert sorted(published["presets"]["cpu"]) == ["fit", "mean"]
    assert not (REPO / "leaderboards" / "toy.json").exists()


def test_task_path_mistakes_are_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clash = write_toy(tmp_path / "clash", "emo")
    (clash / "task.py").write_text((clash / "task.py").read_text().replace('name="toy"', 'name="emo"'))
    monkeypatch.setenv("BENCH_TASK_PATH", str(tmp_path / "clash"))
    with pytest.raises(BenchError, match="task 'emo' is already registered from bench"):
        registry.tasks()
    registry.found.cache_clear()
    monkeypatch.setenv("BENCH_TASK_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(BenchError, match="BENCH_TASK_PATH lists .*nowhere, which is not a folder"):
        registry.tasks()
    registry.found.cache_clear()
    write_toy(tmp_path / "taken", "json")
    monkeypatch.setenv("BENCH_TASK_PATH", str(tmp_path / "taken"))
    with pytest.raises(BenchError, match="the name 'json' is taken by .*rename the folder"):
        registry.tasks()


def test_an_installed_distribution_adds_a_task_and_methods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs_dir: Path
) -> None:
    source = tmp_path / "source"
    write_toy(source, "toy_pkg")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "toy-bench"\nversion = "0.1"\n'
        '[project.entry-points."bench.tasks"]\ntoy = "toy_pkg.task"\n'
        '[project.entry-points."bench.methods"]\n'
        '"toy.median" = "toy_pkg.method:Median"\n"emo.median" = "toy_pkg.method:Median"\n'
        '[tool.setuptools]\npackages = ["toy_pkg"]\n'
        '[tool.setuptools.package-data]\ntoy_pkg = ["configs/*.yaml"]\n'
    )
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(site), str(source)], check=True, capture_output=True)
    shutil.rmtree(source)  # what runs is the installed copy
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))

    assert registry.folder("toy") == (site / "toy_pkg").resolve()
    assert [m.name for m in registry.get_task("toy").methods] == ["fit", "mean", "median"]
    assert registry.get_task("emo").method("median").target == "toy_pkg.method:Median"
    assert config.resolve("emo", ["preset=smoke", "method=median"])["method"] == "median"
    assert main(["sweep", "toy", "preset=cpu", "logger=none", "--methods", "median"]) == 0
    boards = tmp_path / "boards"
    assert main(["publish", "toy", "--out", str(boards), "--allow-dirty"]) == 0
    rows = board(boards)["presets"]["cpu"]
    assert list(rows) == ["median"]


@pytest.mark.slow
def test_the_wheel_runs_bench_from_any_folder(tmp_path: Path) -> None:
    """``pip install`` of bench's wheel (not editable) carries the presets: a run from another
    folder uses the installed package, not the checkout."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "bench", source / "bench", symlinks=True, ignore=ignore)
    shutil.copytree(REPO / "configs", source / "configs", ignore=ignore)
    pip = [sys.executable, "-m", "pip", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "wheel", "."]
    subprocess.run(build, cwd=source, check=True)
    (wheel,) = (tmp_path / "wheel").glob("bench-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", tmp_path / "site", wheel], cwd=source, check=True
    )
    shutil.rmtree(source)
    site = tmp_path / "site" / "bench"
    assert (site / "configs" / "base.yaml").is_file() and (site / "configs" / "emo" / "smoke.yaml").is_file()

    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "BENCH_RUNS": str(tmp_path / "runs")}
    code = "import bench.config; print(bench.__file__, bench.config.CONFIGS_DIR)"
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert where.stdout.split() == [str(site / "__init__.py"), str(site / "configs")], where.stderr
    run = [sys.executable, "-m", "bench", "run", "emo", "preset=smoke", "method=emo_1m", "logger=none"]
    out = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (path,) = (tmp_path / "runs").glob("emo/emo_1m/smoke/*/record.json")
    assert json.loads(path.read_text())["status"] == "ok"
