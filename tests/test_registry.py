from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import bench
from bench import registry
from bench.config import presets
from bench.errors import BenchError, lookup
from bench.registry import get_task, tasks


def test_tasks_are_discovered_with_their_methods() -> None:
    assert "emo" in tasks()
    assert get_task("emo").method("emo_1m").kwargs == {"arch": "emo_1m"}


def test_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(BenchError, match="did you mean emo"):
        get_task("emoo")
    with pytest.raises(BenchError, match="did you mean emo_1m"):
        get_task("emo").method("emo_1mm")
    with pytest.raises(BenchError, match="choose from a, b"):
        lookup("zzz", {"a": 1, "b": 2}, "thing")


def test_listing_tasks_imports_no_torch() -> None:
    code = "import sys; from bench.registry import tasks; tasks(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_presets_ship_inside_the_package() -> None:
    assert (
        registry.configs("emo")
        == registry.CONFIGS_DIR / "emo"
        == Path(bench.__file__).parent / "configs" / "emo"
    )
    assert (registry.CONFIGS_DIR / "base.yaml").is_file()
    assert {"smoke", "cpu", "paper"} <= set(presets("emo"))


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch):
    """Fake installed entry points: ``declare(group, name, value)``; the registry rescans."""
    declared: list[EntryPoint] = []
    monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in declared if e.group == group])
    registry.found.cache_clear()
    yield lambda group, name, value: declared.append(EntryPoint(name, value, group))
    registry.found.cache_clear()


def test_an_entry_point_method_joins_its_task(entry_points) -> None:
    entry_points("bench.methods", "emo.mine", "my_pkg.nets:Mine")
    assert get_task("emo").method("mine").target == "my_pkg.nets:Mine"
    assert registry.folder("emo") == registry.TASKS_DIR / "emo"


@pytest.mark.parametrize(
    ("group", "name", "value", "message"),
    [
        ("bench.methods", "emo.emo_1m", "my_pkg:Net", "task 'emo' already has a method 'emo_1m'"),
        ("bench.methods", "nope.net", "my_pkg:Net", "no task 'nope' is registered"),
        ("bench.methods", "emo.Net", "my_pkg:Net", "write <task>.<method>"),
        ("bench.tasks", "toy", "bench.tasks.emo.task", "task 'emo' must be named 'toy'"),
        ("bench.tasks", "emo", "json", "defines no TASK"),
    ],
)
def test_a_bad_entry_point_is_one_clear_error(entry_points, group, name, value, message) -> None:
    entry_points(group, name, value)
    with pytest.raises(BenchError, match=re.escape(message)):
        tasks()
